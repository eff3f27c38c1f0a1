"""Checks of a pushed model that more than one test makes."""

import hashlib
from pathlib import Path

from modules import model as model_lib

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


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path) with its SHA-256, and every folder (as '<dir>')."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(folder.rglob("*"))
    }
