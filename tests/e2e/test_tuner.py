"""`--tune`: TFX's Tuner searches before the Trainer, on LocalDagRunner, and the Trainer trains with its best
values; the report and the model's training record name them. Also compiled for Kubeflow."""

import contextlib
import io
import json
from pathlib import Path

import ml_metadata as mlmd
import pytest
from tfx.orchestration import metadata

import kubeflow_runner
import local_runner
from components.training import trainer_component
from config import pipeline as configs
from config.settings import ConfigError
from config.training import TrainingConfig, TuningConfig
from modules import serving_versions
from runners import kubeflow_spec


def test_the_best_values_replace_the_configurations():
    config = TrainingConfig(preprocess_handle="p", encoder_handle="e", learning_rate=3e-5, seq_length=128)
    best = {"space": [], "values": {"learning_rate": 5e-5, "warmup_fraction": 0.2, "seq_length": 256}}
    tuned = config.tuned(best)
    assert (tuned.learning_rate, tuned.warmup_fraction, tuned.seq_length) == (5e-5, 0.2, 256)
    assert config.tuned(None) == config
    with pytest.raises(ConfigError, match="--tune-trials 0"):
        TuningConfig(trials=0)
    with pytest.raises(ConfigError, match="--tune-seq-lengths 1024"):
        TuningConfig(values=(("seq_length", (1024,)),))


@pytest.mark.slow
def test_tune_finds_the_learning_rate_that_learns_and_the_trainer_uses_it(tiny_corpus, tiny_bert, tmp_path):
    output_dir = tmp_path / "output"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        local_runner.main(
            [
                "--output-dir",
                str(output_dir),
                "--data",
                str(tiny_corpus),
                "--preprocess-handle",
                str(tiny_bert.preprocess),
                "--encoder-handle",
                str(tiny_bert.encoder),
                "--seq-length",
                "64",
                "--epochs",
                "2",
                "--train-steps",
                "120",
                "--tune",
                "--tune-trials",
                "2",
                "--tune-steps",
                "120",
                "--tune-eval-steps",
                "4",
                "--tune-learning-rates",
                "1e-3,1e-12",
                "--tune-warmup-fractions",
                "0.1",
            ]
        )
    root = Path(configs.pipeline_root(str(output_dir)))
    (best_file,) = (root / "Tuner" / "best_hyperparameters").rglob("best_hyperparameters.txt")
    best = json.loads(best_file.read_text())["values"]
    assert best == {"learning_rate": 1e-3, "warmup_fraction": 0.1, "seq_length": 64}
    (results_file,) = (root / "Tuner" / "tuner_results").rglob("*.json")
    assert len(json.loads(results_file.read_text())) == 2  # both trials ran
    # The Trainer took the Tuner's output, and the model records what it was tuned to.
    store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(configs.metadata_path(str(output_dir))))
    types = {t.id: t.name for t in store.get_execution_types()}
    (trainer,) = [e for e in store.get_executions() if types[e.type_id].endswith(".Trainer")]
    inputs = {
        a.uri
        for a in store.get_artifacts_by_id(
            [ev.artifact_id for ev in store.get_events_by_execution_ids([trainer.id]) if ev.type == ev.INPUT]
        )
    }
    assert str(best_file.parent) in inputs
    served = serving_versions.served_model(configs.serving_model_dir(str(output_dir)))
    record = trainer_component.read_provenance(served)
    assert record["tuned"] == best
    assert "tuned: learning_rate 0.001, seq_length 64, warmup_fraction 0.1" in trainer_component.describe_provenance(
        record
    )
    report = printed.getvalue().split("Evaluation report: ")[1].split()[0]
    assert "tuned: learning_rate 0.001" in Path(report).read_text()


def test_tune_compiles_for_kubeflow(tmp_path):
    args = kubeflow_runner.parse_args(
        [
            "--pipeline-root",
            "gs://b/r",
            "--data",
            "gs://b/d",
            "--serving-model-dir",
            "gs://b/s",
            "--image",
            "registry.example/team/imdb-bert-tfx:1",
            "--output-file",
            str(tmp_path / "spec.json"),
            "--tune",
            "--tune-seq-lengths",
            "128,256",
        ]
    )
    spec_path = kubeflow_spec.compile_pipeline(args, *kubeflow_spec.build_pipeline(args))
    spec = json.loads(Path(spec_path).read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    hyperparameters = tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"]["taskOutputArtifact"]
    assert hyperparameters == {"producerTask": "Tuner", "outputArtifactKey": "best_hyperparameters"}
    tuner_config = json.loads(tasks["Tuner"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert tuner_config["tuning"]["seq_lengths"] == [128, 256]
    executor = spec["deploymentSpec"]["executors"]["Tuner_executor"]["container"]
    assert "tfx.components.tuner.executor.Executor" in executor["args"]
