"""The whole pipeline on tiny data, three real runs on one pipeline root and one ML Metadata store, each a
module fixture that the next one builds on, with one test each:

1. a good model, no baseline yet, reached through crashes: the runner is killed (SIGKILL) during
   ImdbExampleGen, mid-epoch in the Trainer, during the Evaluator and in the middle of the Pusher's copy, and
   the same command is run again each time until it completes. Then: judged on the absolute accuracy bound
   alone, blessed, pushed, and the pushed model serves raw text in a fresh process;
2. a model that learned nothing (one step at a negligible learning rate): not blessed, not pushed, the
   serving directory byte-for-byte unchanged, and the report says which thresholds failed, with their values;
3. a good model again: blessed against run 1's model (the one served, not run 2's) and pushed as a
   new version next to the first one.
"""

import contextlib
import dataclasses
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2

import local_runner
from components.evaluation import gating_evaluator, report_rendering, tfma_config, tfma_results
from components.serving import atomic_pusher, served_baseline
from config import pipeline as configs
from modules import serving_versions
from tests.support import crash_points
from tests.support.serving_checks import SERVE_IN_FRESH_PROCESS, assert_warmup_requests_are_served, snapshot

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCURACY_THRESHOLD = 0.7
MAX_ACCURACY_DROP = 0.1


GOOD_TRAINING = ("--epochs", "2", "--train-steps", "120", "--learning-rate", "1e-3")
RUN_1_CRASH_POINTS = ("ImdbExampleGen", "Trainer", "Evaluator", "Pusher")
NO_TRAINING = ("--epochs", "1", "--train-steps", "1", "--learning-rate", "1e-12")


def runner_flags(output_dir: Path, corpus: Path, bert, training: tuple[str, ...]) -> list[str]:
    return [
        "--output-dir",
        str(output_dir),
        "--data",
        str(corpus),
        "--preprocess-handle",
        str(bert.preprocess),
        "--encoder-handle",
        str(bert.encoder),
        "--seq-length",
        "64",
        "--batch-size",
        "32",
        *training,
        "--accuracy-threshold",
        str(ACCURACY_THRESHOLD),
        "--max-accuracy-drop",
        str(MAX_ACCURACY_DROP),
    ]


def run_pipeline(output_dir: Path, corpus: Path, bert, training: tuple[str, ...]) -> str:
    """Runs local_runner.py in this process; returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        local_runner.main(runner_flags(output_dir, corpus, bert, training))
    return printed.getvalue()


def run_until_killed(command: list[str], log_path: Path, crash_at: str = "", kill_when=None) -> tuple[int, str]:
    """Runs `command` in a child process, armed to crash at `crash_at` or killed (SIGKILL) from here once
    `kill_when()` holds; returns its exit code and output."""
    env = crash_points.env(crash_at) if crash_at else dict(os.environ)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        started = time.monotonic()
        while process.poll() is None and time.monotonic() - started < 900:
            if kill_when and kill_when():
                process.send_signal(signal.SIGKILL)
            time.sleep(0.05)
        returncode = process.wait(timeout=60)
    return returncode, log_path.read_text()


@dataclasses.dataclass
class Runs:
    """The runs so far on one output directory."""

    output_dir: Path
    corpus: Path
    bert: object
    stdout: dict[int, str] = dataclasses.field(default_factory=dict)
    accuracies: dict[str, float] = dataclasses.field(default_factory=dict)
    serving_before_run_2: dict[str, str] = dataclasses.field(default_factory=dict)
    first_version: int = 0
    crash_logs: dict[str, str] = dataclasses.field(default_factory=dict)
    serving_after_killed_push: list[str] = dataclasses.field(default_factory=list)
    wall_seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def serving_dir(self) -> Path:
        return Path(configs.serving_model_dir(str(self.output_dir)))

    def run(self, number: int, training: tuple[str, ...]) -> str:
        self.stdout[number] = run_pipeline(self.output_dir, self.corpus, self.bert, training)
        return self.stdout[number]


class Store:
    def __init__(self, output_dir: Path):
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = configs.metadata_path(str(output_dir))
        self.store = mlmd.MetadataStore(config)

    def newest(self, type_name: str, uri_part: str = "") -> metadata_store_pb2.Artifact:
        artifacts = [a for a in self.store.get_artifacts_by_type(type_name) if uri_part in a.uri]
        return max(artifacts, key=lambda a: a.id)

    def gate_blessings(self) -> list[metadata_store_pb2.Artifact]:
        """The gating Evaluator's published verdicts, oldest first (the test-split Evaluator's carry none)."""
        return sorted(
            (
                a
                for a in self.store.get_artifacts_by_type("ModelBlessing")
                if "blessed" in a.custom_properties and a.state == metadata_store_pb2.Artifact.LIVE
            ),
            key=lambda a: a.id,
        )

    def served_version(self, blessing: dict) -> int:
        """The served version the gating Evaluator compared against (its baseline artifact's record)."""
        (baseline,) = self.store.get_artifacts_by_id([blessing["baseline_model_id"]])
        return props(baseline)[served_baseline.SERVED_VERSION_PROPERTY]

    def gate_blessing(self) -> metadata_store_pb2.Artifact:
        """The newest verdict of the gating Evaluator."""
        return self.gate_blessings()[-1]


def props(artifact: metadata_store_pb2.Artifact) -> dict:
    return {
        k: v.int_value if v.HasField("int_value") else v.string_value for k, v in artifact.custom_properties.items()
    }


def latest_gate(runs: "Runs") -> tuple["Store", dict, tfma_results.Evaluation]:
    """The store, the gating Evaluator's newest verdict (its properties) and its evaluation."""
    store = Store(runs.output_dir)
    evaluation = store.newest("ModelEvaluation", "/Evaluator/")
    return store, props(store.gate_blessing()), tfma_results.read_evaluation(evaluation.uri)


def overall_accuracy(evaluation_uri: str) -> float:
    return tfma_results.read_evaluation(evaluation_uri).candidate.metrics["Overall"]["binary_accuracy"]


def printed_report(stdout: str) -> Path:
    match = re.search(r"^Evaluation report: (.+)$", stdout, re.MULTILINE)
    assert match, stdout
    return Path(match.group(1))


def read_report(stdout: str) -> str:
    """report.md of the printed report.html; the HTML states the same verdict."""
    html_path = printed_report(stdout)
    markdown = (html_path.parent / "report.md").read_text()
    verdict = next(line for line in markdown.splitlines() if line.startswith("Blessed: "))
    assert verdict in html.unescape(html_path.read_text())
    return markdown


def value_and_change_thresholds(config) -> tuple[list[float], list[float]]:
    thresholds = [t for name, t in tfma_config.configured_thresholds(config) if name == "BinaryAccuracy"]
    return (
        [t.value_threshold.lower_bound.value for t in thresholds if t.HasField("value_threshold")],
        [t.change_threshold.absolute.value for t in thresholds if t.HasField("change_threshold")],
    )


@pytest.fixture(scope="module")
def run_1(tiny_corpus, tiny_bert, tmp_path_factory) -> Runs:
    """Run 1, killed at each of RUN_1_CRASH_POINTS in turn and rerun with the same command (with --cache, as
    docs/reliability.md advises after a crash), then rerun to completion."""
    runs = Runs(tmp_path_factory.mktemp("gating") / "output", tiny_corpus, tiny_bert)
    command = [
        sys.executable,
        "local_runner.py",
        *runner_flags(runs.output_dir, tiny_corpus, tiny_bert, GOOD_TRAINING),
        "--cache",
    ]
    evaluation_dir = runs.output_dir / "pipelines" / configs.PIPELINE_NAME / "Evaluator" / "evaluation"
    how = {
        "ImdbExampleGen": dict(crash_at=crash_points.EXAMPLE_GEN_SHARD),
        "Trainer": dict(crash_at=crash_points.TRAINER_MID_EPOCH),
        "Evaluator": dict(kill_when=lambda: evaluation_dir.exists() and any(evaluation_dir.iterdir())),
        "Pusher": dict(crash_at=crash_points.PUSHER_COPY),
    }
    for point in RUN_1_CRASH_POINTS:
        started = time.monotonic()
        returncode, runs.crash_logs[point] = run_until_killed(
            command, runs.output_dir.parent / f"{point}.log", **how[point]
        )
        runs.wall_seconds[f"killed in {point}"] = round(time.monotonic() - started)
        assert returncode == -signal.SIGKILL, f"{point}: exit {returncode}\n{runs.crash_logs[point][-4000:]}"
    runs.serving_after_killed_push = sorted(p.name for p in runs.serving_dir.iterdir())
    started = time.monotonic()
    runs.run(1, GOOD_TRAINING + ("--cache",))
    runs.wall_seconds["completed"] = round(time.monotonic() - started)
    return runs


@pytest.mark.slow
def test_run_1_killed_anywhere_then_run_again_completes_and_never_uses_a_partial_artifact(run_1):
    print("wall seconds per run:", run_1.wall_seconds)
    resumed = run_1.crash_logs["Evaluator"]  # the console of the run after the Trainer was killed mid-epoch 2
    assert re.search(r"^    epoch 2/2  step ", resumed, re.M) and not re.search(r"^    epoch 1/2 ", resumed, re.M)
    assert "Resuming from the backup" in Path(re.search(r"full log: (\S+)", resumed)[1]).read_text()
    model_runs = run_1.output_dir / "pipelines" / configs.PIPELINE_NAME / "Trainer" / "model_run"
    finished = [p for p in model_runs.iterdir() if (p / "training_history.csv").exists()]
    assert len(finished) == 1, "one Trainer execution finished: the one that resumed"
    history = (finished[0] / "training_history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"], "the epoch before the crash is kept"
    assert [name.startswith(atomic_pusher.STAGING_PREFIX) for name in run_1.serving_after_killed_push] == [True], (
        "a push killed mid-copy leaves only its staging folder, which TF Serving ignores"
    )
    versions = serving_versions.versions(str(run_1.serving_dir))
    assert [p.name for p in run_1.serving_dir.iterdir()] == [str(v) for v in versions] and len(versions) == 1, (
        "the next push removed the staging folder and published one whole version"
    )
    assert "Pushed model:" in run_1.stdout[1]

    store = Store(run_1.output_dir).store
    executions = store.get_executions()
    inputs = {
        event.artifact_id
        for event in store.get_events_by_execution_ids([e.id for e in executions])
        if event.type == metadata_store_pb2.Event.INPUT
    }
    assert inputs, "the store is readable and records the runs' inputs"
    assert all(a.state == metadata_store_pb2.Artifact.LIVE for a in store.get_artifacts_by_id(sorted(inputs))), (
        "an artifact of a killed execution was used as an input"
    )
    states = [e.last_known_state for e in executions]
    assert states.count(metadata_store_pb2.Execution.RUNNING) == len(RUN_1_CRASH_POINTS), (
        "each killed execution stays unfinished, its outputs never published"
    )
    assert metadata_store_pb2.Execution.CACHED in states, "--cache reused what finished before a crash"


@pytest.fixture(scope="module")
def run_2(run_1: Runs) -> Runs:
    (run_1.first_version,) = (int(p.name) for p in run_1.serving_dir.iterdir())
    run_1.serving_before_run_2 = snapshot(run_1.serving_dir)
    run_1.run(2, NO_TRAINING)
    return run_1


@pytest.fixture(scope="module")
def run_3(run_2: Runs) -> Runs:
    run_2.run(3, GOOD_TRAINING)
    return run_2


@pytest.mark.slow
def test_run_1_blesses_the_first_model_on_the_absolute_bound_pushes_it_and_it_serves(run_1):
    stdout, serving_dir, output_dir = run_1.stdout[1], run_1.serving_dir, run_1.output_dir
    store = Store(output_dir)
    # The Evaluator finished in the run killed in the Pusher: nothing was served yet, so the absolute bound
    # alone judged. The killed push left no version, so the rerun's baseline task found none again: the
    # Evaluator's execution was reused from the cache (one verdict), and the model was pushed.
    (blessing,) = store.gate_blessings()
    first = props(blessing)
    assert first["blessed"] == 1 and "baseline_model_id" not in first
    (evaluation,) = (
        a
        for a in store.store.get_artifacts_by_type("ModelEvaluation")
        if "/Evaluator/" in a.uri and a.state == metadata_store_pb2.Artifact.LIVE
    )
    run_1.accuracies["run 1"] = overall_accuracy(evaluation.uri)
    assert run_1.accuracies["run 1"] >= ACCURACY_THRESHOLD
    assert value_and_change_thresholds(tfma_results.read_evaluation(evaluation.uri).config) == (
        [pytest.approx(ACCURACY_THRESHOLD)],
        [],
    )  # no baseline: TFMA dropped the change threshold
    first_verdict = gating_evaluator.judge(tfma_results.read_evaluation(evaluation.uri))  # as the Evaluator blessed
    assert first_verdict.blessed and first_verdict.reasons == ["no baseline: absolute bound only"]
    gate = tfma_results.read_evaluation(evaluation.uri)
    assert gate.validation.validation_ok and not gate.validation.metric_validations_per_slice
    versions = sorted(serving_dir.iterdir())
    assert len(versions) == 1 and versions[0].name.isdigit() and (versions[0] / "saved_model.pb").exists()
    assert f"Pushed model: {versions[0]}" in stdout
    report = printed_report(stdout)
    text = read_report(stdout)
    assert "Blessed: yes, because: no baseline: absolute bound only." in text
    assert f"Pushed as version {versions[0].name}" in text
    for png in (
        "eval_calibration_plot.png",
        "eval_confusion_matrix_plot.png",
        "test_calibration_plot.png",
        "test_confusion_matrix_plot.png",
    ):
        assert (report.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png in text and png in report.read_text()
    # Slices: overall, each length bucket of the synthetic corpus, each rating.
    slices = set(gate.candidate.metrics)
    assert {"Overall", "length_bucket = 0-49", "length_bucket = 50-99"} <= slices
    assert {f"rating = {r}" for r in (1, 2, 3, 4, 7, 8, 9, 10)} <= slices
    # A rating slice holds one class: its AUC is undefined, not the 0.0 TFMA writes.
    assert report_rendering.format_metric(gate.candidate.metrics["rating = 9"], "auc") == "n/a (one class)"
    assert re.search(r"^\| rating = 9 \|[^\n]*\| n/a \(one class\) \|", text, re.MULTILINE)
    assert report_rendering.format_metric(gate.candidate.metrics["Overall"], "auc") != "n/a (one class)"
    test_evaluation = store.newest("ModelEvaluation", "/TestSetEvaluator/")
    run_1.accuracies["run 1 (test split)"] = overall_accuracy(test_evaluation.uri)
    assert tfma_results.read_evaluation(test_evaluation.uri).candidate.metrics["Overall"]["example_count"] == 60

    model_runs = (output_dir / "pipelines" / configs.PIPELINE_NAME / "Trainer" / "model_run").iterdir()
    finished = [p for p in model_runs if (p / "training_history.csv").exists()]  # one was killed mid-epoch
    assert (finished[0] / "training_history.png").stat().st_size > 0
    assert list((finished[0] / "train").glob("events.out.tfevents.*"))
    assert_warmup_requests_are_served(versions[0])
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    served = subprocess.run(
        [sys.executable, "-c", SERVE_IN_FRESH_PROCESS, str(versions[0])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=output_dir,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    result = json.loads(served.stdout.strip().splitlines()[-1])
    assert result["project_modules_loaded"] == []
    positive, negative = result["text_probability"]
    assert positive > 0.5 > negative
    assert result["text_label"] == ["positive", "negative"]
    assert all(abs(a - b) < 1e-6 for a, b in zip(result["text_probability"], result["example_probability"]))


@pytest.mark.slow
def test_run_2_rejects_a_model_that_learned_nothing_and_leaves_the_serving_directory_as_it_was(run_2):
    stdout, serving_dir = run_2.stdout[2], run_2.serving_dir
    store, blessing, gate = latest_gate(run_2)
    run_2.accuracies["run 2"] = accuracy = gate.candidate.metrics["Overall"]["binary_accuracy"]
    baseline_accuracy = gate.baseline.metrics["Overall"]["binary_accuracy"]
    assert blessing["blessed"] == 0 and store.served_version(blessing) == run_2.first_version
    assert baseline_accuracy >= ACCURACY_THRESHOLD
    assert accuracy < ACCURACY_THRESHOLD and accuracy < baseline_accuracy - MAX_ACCURACY_DROP
    assert snapshot(serving_dir) == run_2.serving_before_run_2  # nothing written, replaced or removed
    assert props(store.newest("PushedModel"))["pushed"] == 0
    assert "not blessed; the serving model is still" in stdout
    # The thresholds TFMA checked are the configured ones, and both failed with the measured values.
    assert value_and_change_thresholds(gate.config) == (
        [pytest.approx(ACCURACY_THRESHOLD)],
        [pytest.approx(-MAX_ACCURACY_DROP)],
    )
    failures = {
        "value_threshold" if f.metric_threshold.HasField("value_threshold") else "change_threshold": f
        for s in gate.validation.metric_validations_per_slice
        for f in s.failures
    }
    assert set(failures) == {"value_threshold", "change_threshold"}
    assert failures["value_threshold"].metric_threshold.value_threshold.lower_bound.value == pytest.approx(
        ACCURACY_THRESHOLD
    )
    assert failures["value_threshold"].metric_value.double_value.value == pytest.approx(accuracy)
    assert failures["change_threshold"].metric_threshold.change_threshold.absolute.value == pytest.approx(
        -MAX_ACCURACY_DROP
    )
    assert failures["change_threshold"].metric_value.double_value.value == pytest.approx(accuracy - baseline_accuracy)
    text = read_report(stdout)
    assert "Blessed: no, because: " in text
    assert f"accuracy {accuracy:.4f} is below the absolute bound {ACCURACY_THRESHOLD:.4f}" in text
    assert (
        f"is {baseline_accuracy - accuracy:.4f} below the served model's {baseline_accuracy:.4f}; "
        f"at most {MAX_ACCURACY_DROP:.4f} is allowed"
    ) in text
    assert "Not pushed: the serving directory is unchanged." in text


@pytest.mark.slow
def test_run_3_blesses_a_good_model_against_the_served_one_and_pushes_a_new_version(run_3):
    stdout, serving_dir = run_3.stdout[3], run_3.serving_dir
    store, blessing, gate = latest_gate(run_3)
    run_3.accuracies["run 3"] = gate.candidate.metrics["Overall"]["binary_accuracy"]
    assert blessing["blessed"] == 1 and store.served_version(blessing) == run_3.first_version
    assert gate.validation.validation_ok and not gate.validation.metric_validations_per_slice
    assert value_and_change_thresholds(gate.config) == (
        [pytest.approx(ACCURACY_THRESHOLD)],
        [pytest.approx(-MAX_ACCURACY_DROP)],
    )
    versions = sorted(serving_dir.iterdir(), key=lambda p: int(p.name))
    assert len(versions) == 2
    before = run_3.serving_before_run_2
    assert {k: v for k, v in snapshot(serving_dir).items() if k in before} == before  # version 1 untouched
    assert f"Pushed model: {versions[1]}" in stdout
    text = read_report(stdout)
    assert "Blessed: yes, because: all thresholds met." in text
    assert f"Pushed as version {versions[1].name}" in text
    assert_the_history_lists_the_three_runs(run_3, versions)
    print("overall accuracies:", {k: round(v, 4) for k, v in run_3.accuracies.items()})


def assert_the_history_lists_the_three_runs(runs: Runs, versions: list[Path]) -> None:
    """`python -m runners.runs`: the killed attempts of run 1 stopped where they were killed, then runs 1-3 with
    their verdicts, baselines, pushed versions and accuracies; the page has the table and the plot."""
    from runners import run_history
    from runners import runs as history

    result = subprocess.run(
        [sys.executable, "-m", "runners.runs", "--output-dir", str(runs.output_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = run_history.read_runs(configs.metadata_path(str(runs.output_dir)))
    judged = [run for run in recorded if run.verdict in ("blessed", "rejected")]
    assert [run.verdict for run in judged] == ["blessed", "rejected", "blessed"], recorded
    assert [run.baseline for run in judged] == ["none", str(runs.first_version), str(runs.first_version)]
    assert [run.pushed for run in judged] == [versions[0].name, "", versions[1].name]
    assert judged[-1].eval_accuracy == pytest.approx(runs.accuracies["run 3"])
    assert all(run.verdict.startswith("stopped at ") for run in recorded if run not in judged)
    assert "lr 0.001, 120 steps" in judged[0].settings and "lr 1e-12, 1 steps" in judged[1].settings
    page = (runs.output_dir / history.HISTORY_PAGE).read_text()
    assert page.count("<tr>") == len(recorded) + 1 and "data:image/png;base64," in page
    assert all(row.split()[0] in result.stdout for row in map(" ".join, (history.cells(r) for r in judged)))
