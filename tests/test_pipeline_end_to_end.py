"""The whole pipeline on tiny data, on the real LocalDagRunner: blessed, pushed, and servable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2

import local_runner
from modules import model as model_lib
from pipeline import configs

SERVE_IN_FRESH_PROCESS = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the preprocessor's ops)
model = tf.saved_model.load(sys.argv[1])
texts = ["A wonderful, moving and brilliant film. I loved it.", "Awful. Boring, dull and painful to watch."]
by_text = model.signatures["predict_text"](text=tf.constant(texts))
examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
    bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
by_example = model.signatures["serving_default"](examples=tf.constant(examples))
print(json.dumps({
    "text_probability": by_text["probability"].numpy().ravel().tolist(),
    "text_label": [l.decode() for l in by_text["label"].numpy().ravel()],
    "example_probability": by_example["probability"].numpy().ravel().tolist(),
    "project_modules_loaded": sorted(m for m in ("modules", "tensorflow_hub", "tfx", "pipeline") if m in sys.modules),
}))
"""


def assert_warmup_requests_are_served(model_dir: Path) -> None:
    """The warm-up file parses as PredictionLogs whose requests the named signature accepts."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    loaded = tf.saved_model.load(str(model_dir))
    records = list(tf.data.TFRecordDataset(str(model_dir / model_lib.WARMUP_FILE)))
    assert len(records) == 1
    request = prediction_log_pb2.PredictionLog.FromString(records[0].numpy()).predict_log.request
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
    assert outputs[model_lib.PROBABILITY_OUTPUT].shape == (len(model_lib.WARMUP_TEXTS), 1)


def blessings(metadata_path: str) -> list[bool]:
    """The gating Evaluator's verdicts (the test-split Evaluator validates nothing, so its blessing has none)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = mlmd.MetadataStore(config)
    return [a.custom_properties["blessed"].int_value == 1 for a in store.get_artifacts_by_type("ModelBlessing")
            if "blessed" in a.custom_properties]


def test_pipeline_blesses_pushes_and_serves_raw_text(tiny_corpus, tiny_bert, tmp_path, capsys):
    output_dir = tmp_path / "output"
    local_runner.main([
        "--output-dir", str(output_dir),
        "--data", str(tiny_corpus),
        "--preprocess-handle", str(tiny_bert.preprocess),
        "--encoder-handle", str(tiny_bert.encoder),
        "--seq-length", "64",
        "--epochs", "4",
        "--train-steps", "240",
        "--learning-rate", "1e-3",
    ])

    assert blessings(configs.metadata_path(str(output_dir))) == [True]
    serving_dir = Path(configs.serving_model_dir(str(output_dir)))
    versions = sorted(serving_dir.iterdir())
    assert len(versions) == 1 and versions[0].name.isdigit()
    assert (versions[0] / "saved_model.pb").exists()
    assert f"Pushed model: {versions[0]}" in capsys.readouterr().out

    trainer_runs = list((output_dir / "pipelines" / configs.PIPELINE_NAME / "Trainer" / "model_run").iterdir())
    assert (trainer_runs[0] / "training_history.png").stat().st_size > 0
    assert list((trainer_runs[0] / "train").glob("events.out.tfevents.*"))

    assert_warmup_requests_are_served(versions[0])

    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    served = subprocess.run([sys.executable, "-c", SERVE_IN_FRESH_PROCESS, str(versions[0])],
                            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert served.returncode == 0, served.stderr[-3000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert result["project_modules_loaded"] == []
    positive, negative = result["text_probability"]
    assert positive > 0.5 > negative
    assert result["text_label"] == ["positive", "negative"]
    assert all(abs(a - b) < 1e-6 for a, b in zip(result["text_probability"], result["example_probability"]))


def test_anomalies_stop_the_pipeline_before_training(tiny_corpus, tiny_bert, tmp_path):
    strict_schema = tmp_path / "schema.pbtxt"
    strict_schema.write_text(Path(configs.SCHEMA_FILE).read_text().replace("int_domain { min: 1 max: 10 }",
                                                                           "int_domain { min: 1 max: 4 }"))
    output_dir = tmp_path / "output"
    with pytest.raises(Exception) as failure:
        local_runner.main([
            "--output-dir", str(output_dir), "--data", str(tiny_corpus), "--schema-file", str(strict_schema),
            "--preprocess-handle", str(tiny_bert.preprocess), "--encoder-handle", str(tiny_bert.encoder),
        ])
    message = str(failure.value)
    assert "Data validation failed" in message
    assert "split 'train', feature 'rating'" in message and "Out-of-range" in message
    assert not (output_dir / "pipelines" / configs.PIPELINE_NAME / "Trainer").exists()
    assert not Path(configs.serving_model_dir(str(output_dir))).exists()
