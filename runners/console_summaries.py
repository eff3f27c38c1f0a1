"""The console's line beside each finished component of a local run: what it decided or made, in a few words, from
its newest outputs in ML Metadata. `SUMMARIES` holds one function per component id: `(outputs, cached)` -> the
line, `cached` being "cached; " for an execution reused from the cache, else ""."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable

from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils, standard_component_specs

from components.evaluation import tfma_config, tfma_results
from components.evaluation.gating_evaluator import judge
from components.serving import served_baseline
from components.validation import drift
from config import ids
from modules.model_interface import BEST_EPOCH_METRIC, SPANS_PROPERTY, TRAINING_HISTORY_CSV
from runners import run_history

Outputs = dict[str, types.Artifact]


def examples(outputs: Outputs, cached: str) -> str:
    artifact = outputs[standard_component_specs.EXAMPLES_KEY]
    spans = artifact.get_string_custom_property(SPANS_PROPERTY).replace(",", ", ")
    return (
        cached
        + "splits "
        + ", ".join(artifact_utils.decode_split_names(artifact.split_names))
        + (f" (spans {spans})" if spans else "")
    )


def statistics(outputs: Outputs, cached: str) -> str:
    """StatisticsGen's line (the statistics drift is measured on): examples per split."""
    artifact = outputs[standard_component_specs.STATISTICS_KEY]
    counts = {
        name: stats_artifact_utils.load_statistics(artifact, name).proto().datasets[0].num_examples
        for name in artifact_utils.decode_split_names(artifact.split_names)
    }
    return cached + ", ".join(f"{name} {count:,}" for name, count in counts.items()) + " examples"


def anomalies(outputs: Outputs, cached: str) -> str:
    return "no anomalies against the schema"  # any anomaly stops the run in AnomaliesGate


def drift_and_skew(outputs: Outputs, cached: str) -> str:
    return cached + "; ".join(
        f"{r.label}: " + (("beyond bounds: " + ", ".join(r.problems)) if r.problems else "within bounds")
        if r.compared
        else f"{r.label}: not compared"
        for r in drift.read_drift(outputs[standard_component_specs.ANOMALIES_KEY])
    )


def baseline(outputs: Outputs, cached: str) -> str:
    return "baseline: " + served_baseline.describe_served_model(outputs[served_baseline.MODEL_KEY])


def training(outputs: Outputs, cached: str) -> str:
    """The Trainer's line: the epoch it exported (the best) and that epoch's validation accuracy."""
    with open(os.path.join(outputs[standard_component_specs.MODEL_RUN_KEY].uri, TRAINING_HISTORY_CSV)) as f:
        rows = list(csv.DictReader(f))
    best = next(row for row in rows if row["best"] == "1")
    return (
        f"{cached}best epoch {best['epoch']} of {len(rows)}, validation accuracy {float(best[BEST_EPOCH_METRIC]):.4f}"
    )


def evaluation(outputs: Outputs, cached: str) -> str:
    """Either Evaluator's line: accuracy and, for the gate (it has thresholds), its bounds and verdict."""
    result = tfma_results.read_evaluation(outputs["evaluation"].uri)
    name = tfma_config.metric_name(tfma_config.ACCURACY_METRIC)
    text = f"{cached}accuracy {result.candidate.metrics[tfma_results.OVERALL][name]:.4f}"
    thresholds = [threshold for _, threshold in tfma_config.configured_thresholds(result.config)]
    if not thresholds:  # the test-split Evaluator: reported, never gated
        return text
    bound = thresholds[0].value_threshold.lower_bound.value
    text += (
        f" (served model {result.baseline.metrics[tfma_results.OVERALL][name]:.4f}; needs >= {bound:g} and at most "
        f"{-thresholds[0].change_threshold.absolute.value:g} below it)"
        if result.baseline is not None
        else f" (needs >= {bound:g}; no served model to compare with)"
    )
    return text + (": BLESSED" if judge(result).blessed else ": NOT BLESSED")


def push(outputs: Outputs, cached: str) -> str:
    pushed = outputs[standard_component_specs.PUSHED_MODEL_KEY]
    return (
        f"pushed version {pushed.get_string_custom_property('pushed_version')}"
        if pushed.get_int_custom_property("pushed")
        else "nothing pushed (not blessed)"
    )


def report(outputs: Outputs, cached: str) -> str:
    artifact = outputs["report"]
    return (
        "BLESSED"
        if artifact.get_int_custom_property("blessed")
        else ("NOT BLESSED: " + artifact.get_string_custom_property("reason"))
    )


SUMMARIES: dict[str, Callable[[Outputs, str], str]] = {
    ids.EXAMPLE_GEN: examples,
    ids.STATISTICS_GEN: statistics,
    ids.ANOMALIES_GATE: anomalies,
    ids.DISTRIBUTION_VALIDATOR: drift_and_skew,
    ids.SERVED_MODEL: baseline,
    ids.TRAINER: training,
    ids.EVALUATOR: evaluation,
    ids.TEST_SET_EVALUATOR: evaluation,
    ids.PUSHER: push,
    ids.REPORT: report,
}


def component_summary(metadata_path: str, pipeline_name: str, component: str) -> str:
    """The line of the newest execution of `component` ("cached" alone for a component without one)."""
    outputs, cached = run_history.newest_outputs(metadata_path, pipeline_name, component)
    prefix = "cached; " if cached else ""
    return SUMMARIES[component](outputs, prefix) if component in SUMMARIES else prefix.rstrip("; ")
