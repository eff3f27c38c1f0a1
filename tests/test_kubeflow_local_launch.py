"""The compiled KFP v2 spec runs, not only compiles: every task's container command, on tiny offline data.

tests/kfp_local_launcher.py plays the KFP v2 driver and launcher, with this project's virtual environment
standing in for the component image (the Dockerfile gives the image the same `python`, working directory
and PYTHONPATH). The spec is compiled with the image's project root set to this checkout, the only
difference from a cluster spec; tests/test_dockerfile.py checks the cluster spec's paths against the image.
"""

import json
import os
import sys
from pathlib import Path

import pytest

import kubeflow_runner
from pipeline import configs
from tests import kfp_local_launcher

pytestmark = pytest.mark.slow

# Compiled with 1 training step, which cannot reach the accuracy gate; the run sets the train_args pipeline
# parameter to enough steps, so a pushed model proves the runtime parameter reached the Trainer's executor.
COMPILED_STEPS = 1
RUN_TRAIN_ARGS = '{"splits": ["train"], "num_steps": 240}'


def image_standin_env() -> dict[str, str]:
    """The environment the Dockerfile gives a task: the venv's `python` first on PATH, the project importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(configs.PROJECT_ROOT), TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="1")
    return env


@pytest.fixture(scope="module")
def launched(tiny_corpus, tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("kfp_local")
    args = kubeflow_runner.parse_args([
        "--target", "kfp-local", "--pipeline-root", str(root / "pipeline_root"), "--data", str(tiny_corpus),
        "--download-dir", str(root / "downloads"), "--serving-model-dir", str(root / "serving"),
        "--image-project-root", str(configs.PROJECT_ROOT), "--output-file", str(root / "spec.json"),
        "--preprocess-handle", str(tiny_bert.preprocess), "--encoder-handle", str(tiny_bert.encoder),
        "--seq-length", "64", "--epochs", "4", "--train-steps", str(COMPILED_STEPS), "--learning-rate", "1e-3",
    ])
    spec_path = kubeflow_runner.compile_pipeline(args, *kubeflow_runner.build_pipeline(args))
    launcher = kfp_local_launcher.LocalKfpLauncher(root / "pipeline_root", workdir=configs.PROJECT_ROOT,
                                                   env=image_standin_env())
    runs = launcher.run(spec_path, {"train_args": RUN_TRAIN_ARGS})
    return launcher, spec_path, runs, root


def only(artifacts):
    assert len(artifacts) == 1, artifacts
    return artifacts[0]


def test_every_task_ran_and_the_blessed_model_was_pushed(launched):
    launcher, spec_path, runs, root = launched
    spec, _ = kfp_local_launcher.load_job(spec_path)
    assert set(runs) == set(spec.root.dag.tasks)
    containers = [name for name, run in runs.items() if run.log_path is not None]
    assert len(containers) == len([e for e in json.loads(Path(spec_path).read_text())["pipelineSpec"]
                                   ["deploymentSpec"]["executors"].values() if "container" in e])

    blessing = only(runs["Evaluator"].outputs["blessing"])
    assert blessing.metadata["blessed"] == 1
    pushed = only(runs["Pusher"].outputs["pushed_model"])
    assert pushed.metadata["pushed"] == 1
    versions = sorted((root / "serving").iterdir())
    assert len(versions) == 1 and versions[0].name.isdigit()
    assert (versions[0] / "saved_model.pb").exists()
    assert pushed.metadata["pushed_destination"] == str(versions[0])


def test_the_runs_parameter_value_reached_the_trainer(launched):
    _, _, runs, _ = launched
    trainer_input = runs["Trainer"].executor_input["inputs"]["parameterValues"]
    assert trainer_input["train_args"] == RUN_TRAIN_ARGS
    assert RUN_TRAIN_ARGS.replace('"', "'") in runs["Trainer"].log_path.read_text().replace('"', "'")


def test_artifacts_flow_between_tasks_as_the_launcher_passes_them(launched):
    _, _, runs, _ = launched
    examples = only(runs["ImdbExampleGen"].outputs["examples"])
    assert json.loads(examples.metadata["split_names"]) == ["train", "eval", "test"]
    for consumer in ("StatisticsGen", "Trainer", "Evaluator"):
        consumed = runs[consumer].executor_input["inputs"]["artifacts"]["examples"]["artifacts"]
        assert [a["uri"] for a in consumed] == [examples.uri]
    model = only(runs["Trainer"].outputs["model"])
    assert only(runs["Evaluator"].outputs["blessing"]).metadata["current_model_id"] == model.name
    assert Path(model.uri, "Format-Serving", "saved_model.pb").exists()


def test_first_run_has_no_baseline_and_the_next_runs_baseline_task_finds_the_pushed_model(launched):
    launcher, spec_path, runs, root = launched
    # This run: nothing was served before, so the baseline artifact is empty and the report says so.
    empty = only(runs["LatestServedModel"].outputs["model"])
    assert empty.metadata["served_version"] == 0 and not Path(empty.uri, "Format-Serving").exists()
    report = Path(only(runs["EvaluationReport"].outputs["report"]).uri, "report.md").read_text()
    assert "Baseline (last blessed model): none: nothing is served yet (first run)" in report
    # The same task, run now (as the next run's would), copies the version this run pushed.
    spec, parameters = launcher.job_parameters(spec_path)
    again = launcher.run_task(spec, "LatestServedModel", {}, parameters, root / "pipeline_root" / "next")
    baseline = only(again.outputs["model"])
    pushed = only(runs["Pusher"].outputs["pushed_model"])
    assert int(baseline.metadata["served_version"]) == int(pushed.metadata["pushed_version"])  # KFP: numbers are floats
    assert Path(baseline.uri, "Format-Serving", "saved_model.pb").exists()


def test_pusher_does_not_push_a_model_the_evaluator_did_not_bless(launched):
    launcher, spec_path, runs, root = launched
    blessing = only(runs["Evaluator"].outputs["blessing"])
    refused = kfp_local_launcher.TaskRun(outputs={"blessing": [launcher.metadata.add(
        blessing.type, blessing.uri, {**blessing.metadata, "blessed": 0})]})
    spec, parameters = launcher.job_parameters(spec_path)
    pusher = launcher.run_task(spec, "Pusher", {**runs, "Evaluator": refused}, parameters,
                               root / "pipeline_root" / "unblessed")
    assert only(pusher.outputs["pushed_model"]).metadata["pushed"] == 0
    assert len(list((root / "serving").iterdir())) == 1
