"""EvaluationReport: writes the run's evaluation as report.html and report.md with PNG plots.

Reads what the Evaluators wrote (TFMA metrics, plots, validation result, the eval config they ran) and
the blessing and push records, and writes into its output artifact, for a reader without a notebook:

- whether the model was blessed and why: the failed thresholds with their values, "all thresholds met",
  or "no baseline: absolute bound only" on the first run;
- the thresholds (from the eval config TFMA stored) next to the measured values;
- the data: the spans both models were evaluated on, which spans each was trained on (and whether the
  candidate was warm-started), and every drift and skew measure against its bound;
- overall metrics of the candidate, of the baseline (the served model) and on the test split;
- per-slice tables (review length bucket, rating);
- calibration and confusion-matrix plots;
- whether, and where, the model was pushed.
"""


import dataclasses
import html
import math
import os
from typing import Any

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2
from tensorflow_model_analysis.slicer import slicer_lib
from tensorflow_model_analysis.writers import eval_config_writer
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact

from components import drift, provenance, served_baseline

REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
OVERALL = "Overall"
# How the report labels the metrics pipeline.REPORTED_METRICS computes (by the names TFMA writes them under,
# `metric_name`); a metric missing here is shown by that name.
METRIC_LABELS = {
    "example_count": "examples", "binary_accuracy": "accuracy", "auc": "AUC (ROC)",
    "auc_precision_recall": "AUC (PR)", "precision": "precision", "recall": "recall",
    "mean_label": "mean label", "mean_prediction": "mean prediction", "calibration": "calibration",
}
CLASSIFICATION_THRESHOLD = 0.5
# Ranking metrics need both classes in a slice; TFMA writes 0.0 for them where a slice has one (every rating
# slice: ratings 1-4 are negative reviews, 7-10 positive), which the report shows as "n/a (one class)".
RANKING_METRICS = ("auc", "auc_precision_recall")
ONE_CLASS = "n/a (one class)"
CALIBRATION_BINS = 10


class ModelEvaluationReport(Artifact):
    """A folder holding report.html, report.md and the PNG plots they show."""

    # KFP v2 wants <namespace>.<Name> (one dot), and TFX's Kubeflow V2 container entrypoint imports the
    # artifact class by that path: `components` re-exports this class for it.
    TYPE_NAME = "components.ModelEvaluationReport"


@dataclasses.dataclass
class ModelResults:
    """One model's metrics (name -> value) per slice, and its overall plots."""

    metrics: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    diffs: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # candidate minus baseline
    # TFMA writes every plot of a slice into one PlotData (calibration buckets, confusion matrices).
    overall_plot: metrics_for_slice_pb2.PlotData = dataclasses.field(default_factory=metrics_for_slice_pb2.PlotData)


@dataclasses.dataclass
class Evaluation:
    """What one Evaluator wrote: its (defaults-filled) config, results per model, validation result."""

    path: str
    config: config_pb2.EvalConfig
    candidate: ModelResults
    baseline: ModelResults | None
    validation: validation_result_pb2.ValidationResult | None


@dataclasses.dataclass(frozen=True)
class ThresholdCheck:
    """One configured threshold, the value it was checked against and whether it held."""

    metric: str
    kind: str  # "absolute" or "change vs. baseline"
    bound: str
    measured: float | None
    passed: bool | None  # None: not checked (no baseline)


@dataclasses.dataclass(frozen=True)
class Verdict:
    blessed: bool
    reasons: list[str]
    checks: list[ThresholdCheck]
    baseline_uri: str | None


def slice_name(slice_key: Any) -> str:
    """'Overall', or 'feature = value' for a single-feature slice."""
    key = slicer_lib.deserialize_slice_key(slice_key)
    if not key:
        return OVERALL
    return ", ".join(f"{column} = {value.decode() if isinstance(value, bytes) else value}" for column, value in key)


def _model_names(config: config_pb2.EvalConfig) -> tuple[str, str | None]:
    candidate = next(spec.name for spec in config.model_specs if not spec.is_baseline)
    baseline = next((spec.name for spec in config.model_specs if spec.is_baseline), None)
    return candidate, baseline


def read_evaluation(path: str) -> Evaluation:
    """Loads an Evaluator's output folder (a ModelEvaluation artifact's uri)."""
    config = eval_config_writer.load_eval_run(path)[0]
    if config is None:
        raise FileNotFoundError(f"{path}: no TFMA eval_config.json; is this a ModelEvaluation artifact's folder?")
    candidate_name, baseline_name = _model_names(config)
    results = {candidate_name: ModelResults()}
    if baseline_name is not None:
        results[baseline_name] = ModelResults()
    for metrics_for_slice in tfma.load_metrics(path):
        name = slice_name(metrics_for_slice.slice_key)
        for entry in metrics_for_slice.metric_keys_and_values:
            if entry.key.model_name not in results or not entry.value.HasField("double_value"):
                continue
            model = results[entry.key.model_name]
            table = model.diffs if entry.key.is_diff else model.metrics
            table.setdefault(name, {})[entry.key.name] = entry.value.double_value.value
    for plots_for_slice in tfma.load_plots(path):
        if slice_name(plots_for_slice.slice_key) != OVERALL:
            continue
        for entry in plots_for_slice.plot_keys_and_values:
            if entry.key.model_name in results:
                results[entry.key.model_name].overall_plot.MergeFrom(entry.value)
    validation = (tfma.load_validation_result(path)
                  if tf.io.gfile.glob(os.path.join(path, "validations*")) else None)
    return Evaluation(path, config, results[candidate_name],
                      results[baseline_name] if baseline_name is not None else None, validation)


def configured_thresholds(config: config_pb2.EvalConfig) -> list[tuple[str, config_pb2.MetricThreshold]]:
    """(metric class name, threshold) for every overall-slice threshold in `config`."""
    thresholds = []
    for metrics_spec in config.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.threshold.ByteSize():
                thresholds.append((metric.class_name, metric.threshold))
            for per_slice in metric.per_slice_thresholds:
                thresholds.append((metric.class_name, per_slice.threshold))
    return thresholds


def metric_name(class_name: str) -> str:
    """The name TFMA writes the value of a metric class under (BinaryAccuracy -> binary_accuracy)."""
    return getattr(tfma.metrics, class_name)().name


def judge(evaluation: Evaluation, blessing: standard_artifacts.ModelBlessing) -> Verdict:
    """Why the gating Evaluator did or did not bless the candidate, threshold by threshold."""
    blessed = blessing.get_int_custom_property("blessed") == 1
    baseline_uri = blessing.get_string_custom_property("baseline_model") or None
    failures = [failure for per_slice in (evaluation.validation.metric_validations_per_slice
                                          if evaluation.validation else [])
                for failure in per_slice.failures]
    checks, reasons = [], []
    overall = evaluation.candidate.metrics.get(OVERALL, {})
    overall_diff = evaluation.candidate.diffs.get(OVERALL, {})
    baseline_overall = evaluation.baseline.metrics.get(OVERALL, {}) if evaluation.baseline else {}
    for class_name, threshold in configured_thresholds(evaluation.config):
        name = metric_name(class_name)
        label = METRIC_LABELS.get(name, name)
        failed = [f for f in failures if f.metric_key.name == name]
        if threshold.HasField("value_threshold"):
            bound = threshold.value_threshold.lower_bound.value
            value = overall.get(name)
            passed = not any(f.metric_threshold.HasField("value_threshold") for f in failed)
            checks.append(ThresholdCheck(label, "absolute", f">= {bound:.4f}", value, passed))
            if not passed:
                reasons.append(f"{label} {_format(value)} is below the absolute bound {bound:.4f}")
        if threshold.HasField("change_threshold"):
            allowed = threshold.change_threshold.absolute.value
            diff = overall_diff.get(name)
            passed = not any(f.metric_threshold.HasField("change_threshold") for f in failed)
            checks.append(ThresholdCheck(label, "change vs. baseline", f">= {allowed:+.4f}", diff, passed))
            if not passed:
                reasons.append(
                    f"{label} {overall.get(name, float('nan')):.4f} is {-diff:.4f} below the last blessed "
                    f"model's {baseline_overall.get(name, float('nan')):.4f}; at most {-allowed:.4f} is allowed")
    if evaluation.validation is not None:
        if evaluation.validation.missing_thresholds:
            reasons.append("a configured threshold could not be checked: its metric is missing")
        for missing in evaluation.validation.missing_slices:
            reasons.append(f"a threshold's slice has no examples: {missing}".strip())
    if baseline_uri is None:
        # TFMA removed the change thresholds from the stored config: say they were skipped.
        checks.append(ThresholdCheck("accuracy", "change vs. baseline", "skipped: no baseline", None, None))
    if blessed and not reasons:
        reasons.append("no baseline: absolute bound only" if baseline_uri is None else "all thresholds met")
    if not blessed and not reasons:
        reasons.append("the Evaluator did not bless the model (see its validation result: "
                       f"{evaluation.path})")
    return Verdict(blessed, reasons, checks, baseline_uri)


# --- Plots ----------------------------------------------------------------------------------------

def plot_calibration(plot: metrics_for_slice_pb2.PlotData, title: str, path: str) -> bool:
    """Reliability diagram: mean label against mean prediction per bucket (marker area ~ examples)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # TFMA's histogram has 10,000 fine buckets; regroup them into CALIBRATION_BINS equal-width bins.
    sums = [[0.0, 0.0, 0.0] for _ in range(CALIBRATION_BINS)]  # examples, labels, predictions
    for bucket in plot.calibration_histogram_buckets.buckets:
        if bucket.num_weighted_examples.value <= 0:
            continue
        lower = min(max(bucket.lower_threshold_inclusive, 0.0), 1.0)
        target = sums[min(int(lower * CALIBRATION_BINS), CALIBRATION_BINS - 1)]
        target[0] += bucket.num_weighted_examples.value
        target[1] += bucket.total_weighted_label.value
        target[2] += bucket.total_weighted_refined_prediction.value
    bins = [b for b in sums if b[0] > 0]
    if not bins:
        return False
    counts = [b[0] for b in bins]
    labels = [b[1] / b[0] for b in bins]
    predictions = [b[2] / b[0] for b in bins]
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.scatter(predictions, labels, s=[20 + 200 * n / max(counts) for n in counts], alpha=0.7, label=f"{CALIBRATION_BINS} bins (area ~ examples)")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="fraction positive",
             title=title)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as f:
        figure.savefig(f, format="png")
    plt.close(figure)
    return True


def confusion_at(plot: metrics_for_slice_pb2.PlotData, threshold: float = CLASSIFICATION_THRESHOLD):
    matrices = list(plot.confusion_matrix_at_thresholds.matrices)
    return min(matrices, key=lambda m: abs(m.threshold - threshold)) if matrices else None


def plot_confusion_matrix(plot: metrics_for_slice_pb2.PlotData, title: str, path: str) -> bool:
    """2x2 counts at the classification threshold nearest 0.5."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion_at(plot)
    if matrix is None:
        return False
    cells = [[matrix.true_negatives, matrix.false_positives], [matrix.false_negatives, matrix.true_positives]]
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(cells, cmap="Blues")
    for row in range(2):
        for column in range(2):
            dark = cells[row][column] > max(max(r) for r in cells) / 2
            axes.text(column, row, f"{cells[row][column]:.0f}", ha="center", va="center", fontsize=14,
                      color="white" if dark else "black")
    axes.set_xticks([0, 1], ["negative", "positive"])
    axes.set_yticks([0, 1], ["negative", "positive"])
    axes.set(xlabel="predicted", ylabel="actual", title=f"{title}\n(threshold {matrix.threshold:.2f})")
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as f:
        figure.savefig(f, format="png")
    plt.close(figure)
    return True


# --- Report ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class Section:
    """A titled block of the report: paragraphs, tables (header + rows) and images, in that order."""

    title: str
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = dataclasses.field(default_factory=list)  # caption, header, rows
    images: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (file name, caption)


def _format(value: float | None, name: str = "") -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f}" if name == "example_count" else f"{value:.4f}"


def format_metric(slice_metrics: dict[str, float], name: str) -> str:
    """One metric of one slice as the report shows it."""
    if name in RANKING_METRICS and slice_metrics.get("mean_label") in (0.0, 1.0):
        return ONE_CLASS
    return _format(slice_metrics.get(name), name)


def _slice_order(name: str) -> tuple:
    if name == OVERALL:
        return (0, "", 0)
    column, _, value = name.partition(" = ")
    number = value.split("-")[0].rstrip("+")
    return (1, column, int(number) if number.isdigit() else value)


def metrics_table(results: ModelResults) -> tuple[list[str], list[list[str]]]:
    names = [n for n in METRIC_LABELS if any(n in m for m in results.metrics.values())]
    rows = [[name] + [format_metric(results.metrics[name], n) for n in names]
            for name in sorted(results.metrics, key=_slice_order)]
    return ["slice"] + [METRIC_LABELS[n] for n in names], rows


def overall_table(columns: dict[str, ModelResults | None]) -> tuple[list[str], list[list[str]]]:
    present = {title: r for title, r in columns.items() if r is not None}
    rows = [[label] + [format_metric(r.metrics.get(OVERALL, {}), name) for r in present.values()]
            for name, label in METRIC_LABELS.items()]
    return ["metric"] + list(present), rows


def build_sections(gate: Evaluation, verdict: Verdict, test: Evaluation | None, push: dict[str, str],
                   out_dir: str, eval_split: str, test_split: str, baseline: str | None = None) -> list[Section]:
    """The report's content; writes its PNG plots into `out_dir`."""
    summary = Section("Verdict", paragraphs=[
        f"Blessed: {'yes' if verdict.blessed else 'no'}, because: {'; '.join(verdict.reasons)}.",
        push.get("summary", ""),
        f"Baseline (last blessed model): {baseline or verdict.baseline_uri or 'none, this is the first blessing run'}.",
    ])
    summary.tables.append(("Thresholds (overall slice)", ["metric", "threshold", "bound", "measured", "result"], [
        [c.metric, c.kind, c.bound, _format(c.measured),
         {True: "pass", False: "FAIL", None: "not checked"}[c.passed]] for c in verdict.checks]))
    overall = Section("Overall metrics", paragraphs=[
        f"The gate uses the '{eval_split}' split"
        + (f"; the '{test_split}' split is reported only, never used for choices." if test else ".")])
    overall.tables.append(("", *overall_table({f"candidate ({eval_split})": gate.candidate,
                                         f"last blessed ({eval_split})": gate.baseline,
                                         f"candidate ({test_split})": test.candidate if test else None})))
    slices = Section("Metrics per slice", paragraphs=[
        "Slices: overall, review length bucket (words), rating. Slices are reported, not gated. "
        f"AUC is {ONE_CLASS} where a slice holds one class only, as every rating slice does."])
    slices.tables.append((f"Candidate, '{eval_split}' split", *metrics_table(gate.candidate)))
    if test is not None:
        slices.tables.append((f"Candidate, '{test_split}' split", *metrics_table(test.candidate)))
    plots = Section("Plots (overall slice, candidate)")
    for split, evaluation in ((eval_split, gate), (test_split, test)):
        if evaluation is None:
            continue
        for plot_name, draw, what in (("calibration_plot", plot_calibration, "calibration"),
                                      ("confusion_matrix_plot", plot_confusion_matrix, "confusion matrix")):
            file_name = f"{split}_{plot_name}.png"
            if draw(evaluation.candidate.overall_plot, f"{what}, {split} split", os.path.join(out_dir, file_name)):
                plots.images.append((file_name, f"{what}, {split} split"))
    return [summary, overall, slices, plots]


def data_section(eval_split: str, examples: standard_artifacts.Examples | None,
                 models: dict[str, standard_artifacts.Model | None],
                 drift_anomalies: standard_artifacts.ExampleAnomalies | None) -> Section:
    """Which data each model was trained on, what both were judged on, and the drift and skew measured."""
    spans = provenance.spans_of(examples) if examples is not None else []
    section = Section("Data: spans, lineage and drift", paragraphs=[
        f"Both models were evaluated on this run's '{eval_split}' split"
        + (f", from span{'s' if len(spans) > 1 else ''} {', '.join(map(str, spans))}." if spans else ".")])
    section.tables.append(("What each model was trained on", ["model", "trained on"], [
        [name, provenance.describe(provenance.read_provenance(served_baseline.model_path(model)))]
        for name, model in models.items() if model is not None and served_baseline.model_path(model)]))
    if drift_anomalies is not None:
        rows = []
        for result in drift.read_drift(drift_anomalies):
            if not result.compared:
                rows.append([result.label, "", "", "", "", "not compared: " + (
                    "no previous span (first run)" if spans else "the data is not a series of spans ({SPAN})")])
            for m in result.measurements:
                rows.append([result.label, m.feature, m.measure, _format(m.value), _format(m.threshold),
                             "BEYOND BOUND" if m.beyond else "within"])
        section.tables.append(("Drift and skew (pipeline/schema/drift.pbtxt)",
                               ["comparison", "feature", "measure", "measured", "bound", "result"], rows))
    return section


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [p + "\n" for p in section.paragraphs if p]
        for caption, header, rows in section.tables:
            lines += [f"**{caption}**", ""] if caption else []
            lines.append("| " + " | ".join(header) + " |")
            lines.append("| " + " | ".join("---" for _ in header) + " |")
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
        lines += [f"![{caption}]({file_name})\n" for file_name, caption in section.images]
    return "\n".join(lines)


def render_html(title: str, sections: list[Section]) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
             "th{background:#f3f3f3}td:first-child{text-align:left}img{margin:.5em}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in section.paragraphs if p]
        for caption, header, rows in section.tables:
            parts.append("<table>" + (f"<caption>{esc(caption)}</caption>" if caption else "") + "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        parts += [f"<img src='{esc(f)}' alt='{esc(c)}' title='{esc(c)}'>" for f, c in section.images]
    parts.append("</body></html>")
    return "\n".join(parts)


def push_summary(pushed_model: standard_artifacts.PushedModel | None) -> dict[str, str]:
    if pushed_model is None:
        return {}
    if pushed_model.get_int_custom_property("pushed") == 1:
        destination = pushed_model.get_string_custom_property("pushed_destination")
        return {"summary": f"Pushed as version {pushed_model.get_string_custom_property('pushed_version')} "
                           f"to {destination}."}
    return {"summary": "Not pushed: the serving directory is unchanged."}


def write_report(out_dir: str, evaluation_uri: str, blessing: standard_artifacts.ModelBlessing,
                 pushed_model: standard_artifacts.PushedModel | None = None,
                 test_evaluation_uri: str | None = None, eval_split: str = "eval",
                 test_split: str = "test", baseline_model: standard_artifacts.Model | None = None,
                 model: standard_artifacts.Model | None = None, examples: standard_artifacts.Examples | None = None,
                 drift_anomalies: standard_artifacts.ExampleAnomalies | None = None) -> Verdict:
    """Writes report.html, report.md and the PNGs into `out_dir`; returns the verdict it states."""
    tf.io.gfile.makedirs(out_dir)
    gate = read_evaluation(evaluation_uri)
    test = read_evaluation(test_evaluation_uri) if test_evaluation_uri else None
    verdict = judge(gate, blessing)
    sections = build_sections(gate, verdict, test, push_summary(pushed_model), out_dir, eval_split, test_split,
                              served_baseline.describe(baseline_model) if baseline_model is not None else None)
    sections.insert(1, data_section(eval_split, examples, {"candidate": model, "baseline (served)": baseline_model},
                                    drift_anomalies))
    title = f"Model evaluation: {'BLESSED' if verdict.blessed else 'NOT BLESSED'}"
    with tf.io.gfile.GFile(os.path.join(out_dir, REPORT_MARKDOWN), "w") as f:
        f.write(render_markdown(title, sections))
    with tf.io.gfile.GFile(os.path.join(out_dir, REPORT_HTML), "w") as f:
        f.write(render_html(title, sections))
    return verdict


@tfx.dsl.components.component
def EvaluationReport(
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
    report: tfx.dsl.components.OutputArtifact[ModelEvaluationReport],
    eval_split: tfx.dsl.components.Parameter[str],
    test_split: tfx.dsl.components.Parameter[str],
    pushed_model: tfx.dsl.components.InputArtifact[standard_artifacts.PushedModel] = None,
    test_evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation] = None,
    baseline_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples] = None,
    drift: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies] = None,
) -> None:
    """Writes report.html / report.md (+ PNGs) on the gating evaluation, the push and the test split."""
    verdict = write_report(report.uri, evaluation.uri, blessing, pushed_model,
                           test_evaluation.uri if test_evaluation is not None else None, eval_split, test_split,
                           baseline_model, model, examples, drift)
    report.set_int_custom_property("blessed", int(verdict.blessed))
    report.set_string_custom_property("reason", "; ".join(verdict.reasons))


def latest_report_path(metadata_connection_config: Any) -> str | None:
    """report.html of the newest EvaluationReport recorded in ML Metadata, None if there is none."""
    import ml_metadata as mlmd

    store = mlmd.MetadataStore(metadata_connection_config)
    reports = store.get_artifacts_by_type(ModelEvaluationReport.TYPE_NAME)
    if not reports:
        return None
    return os.path.join(max(reports, key=lambda a: a.id).uri, REPORT_HTML)
