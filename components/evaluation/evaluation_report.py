"""EvaluationReport: the run's verdict and why, its data, metrics and plots, as report.html and report.md."""

import os
from typing import Any

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact

from components.evaluation.gating_evaluator import Verdict, judge
from components.evaluation.report_rendering import (
    ONE_CLASS,
    Section,
    format_value,
    metrics_table,
    overall_table,
    plot_calibration,
    plot_confusion_matrix,
    render_html,
    render_markdown,
)
from components.evaluation.tfma_config import ACCURACY_METRIC, metric_name
from components.evaluation.tfma_results import OVERALL, Evaluation, read_evaluation
from components.serving import served_baseline
from components.training import trainer_component
from components.validation import drift

REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
PLOTS = (
    ("calibration_plot", plot_calibration, "calibration"),
    ("confusion_matrix_plot", plot_confusion_matrix, "confusion matrix"),
)


class ModelEvaluationReport(Artifact):
    """A folder holding report.html, report.md and the PNG plots they show."""

    TYPE_NAME = "components.ModelEvaluationReport"


def verdict_section(
    verdict: Verdict,
    pushed_model: standard_artifacts.PushedModel | None,
    baseline_model: standard_artifacts.Model | None,
) -> Section:
    """Blessed or not and why, the push, the baseline, and each threshold against its measured value."""
    pushed = (
        ""
        if pushed_model is None
        else (
            f"Pushed as version {pushed_model.get_string_custom_property('pushed_version')} to "
            f"{pushed_model.get_string_custom_property('pushed_destination')}."
            if pushed_model.get_int_custom_property("pushed") == 1
            else "Not pushed: the serving directory is unchanged."
        )
    )
    section = Section(
        "Verdict",
        paragraphs=[
            f"Blessed: {'yes' if verdict.blessed else 'no'}, because: {'; '.join(verdict.reasons)}.",
            pushed,
            f"Baseline (served model): {served_baseline.describe_served_model(baseline_model)}.",
        ],
    )
    result = {True: "pass", False: "FAIL", None: "not checked"}
    section.tables.append(
        (
            "Thresholds (overall slice)",
            ["metric", "threshold", "bound", "measured", "result"],
            [[c.metric, c.kind, c.bound, format_value(c.measured), result[c.passed]] for c in verdict.checks],
        )
    )
    return section


def drift_rows(drift_anomalies: standard_artifacts.ExampleAnomalies, spans: list[int]) -> list[list[str]]:
    """One row per drift or skew measurement, and one per comparison that could not be made, saying why."""
    rows = []
    for result in drift.read_drift(drift_anomalies):
        if not result.compared:
            why = "no previous span (first run)" if spans else "the data is not a series of spans ({SPAN})"
            rows.append([result.label, "", "", "", "", "not compared: " + why])
        rows += [
            [
                result.label,
                m.feature,
                m.measure,
                format_value(m.value),
                format_value(m.threshold),
                "BEYOND BOUND" if m.beyond else "within",
            ]
            for m in result.measurements
        ]
    return rows


def data_section(
    eval_split: str,
    examples: standard_artifacts.Examples | None,
    models: dict[str, standard_artifacts.Model | None],
    drift_anomalies: standard_artifacts.ExampleAnomalies | None,
) -> Section:
    """Which data each model was trained on, what both were judged on, and the drift and skew measured."""
    spans = trainer_component.spans_of(examples) if examples is not None else []
    section = Section(
        "Data: spans, lineage and drift",
        paragraphs=[
            f"Both models were evaluated on this run's '{eval_split}' split"
            + (f", from span{'s' if len(spans) > 1 else ''} {', '.join(map(str, spans))}." if spans else ".")
        ],
    )
    trained = {name: served_baseline.baseline_model_uri(model) for name, model in models.items()}
    section.tables.append(
        (
            "What each model was trained on",
            ["model", "trained on"],
            [
                [name, trainer_component.describe_provenance(trainer_component.read_provenance(uri))]
                for name, uri in trained.items()
                if uri
            ],
        )
    )
    if drift_anomalies is not None:
        section.tables.append(
            (
                "Drift and skew (pipeline/schema/drift.pbtxt)",
                ["comparison", "feature", "measure", "measured", "bound", "result"],
                drift_rows(drift_anomalies, spans),
            )
        )
    return section


def metrics_sections(
    gate: Evaluation, test: Evaluation | None, eval_split: str, test_split: str, out_dir: str
) -> list[Section]:
    """Overall and per-slice metrics, and the candidate's plots (written as PNGs into `out_dir`)."""
    overall = Section(
        "Overall metrics",
        paragraphs=[
            f"The gate uses the '{eval_split}' split"
            + (f"; the '{test_split}' split is reported only, never used for choices." if test else ".")
        ],
    )
    overall.tables.append(
        (
            "",
            *overall_table(
                {
                    f"candidate ({eval_split})": gate.candidate,
                    f"served ({eval_split})": gate.baseline,
                    f"candidate ({test_split})": test.candidate if test else None,
                }
            ),
        )
    )
    slices = Section(
        "Metrics per slice",
        paragraphs=[
            "Slices: overall, review length bucket (words), rating. Slices are reported, not gated. "
            f"AUC is {ONE_CLASS} where a slice holds one class only, as every rating slice does."
        ],
    )
    plots = Section("Plots (overall slice, candidate)")
    for split, evaluation in ((eval_split, gate), (test_split, test)):
        if evaluation is None:
            continue
        slices.tables.append((f"Candidate, '{split}' split", *metrics_table(evaluation.candidate)))
        for plot_name, draw, what in PLOTS:
            file_name = f"{split}_{plot_name}.png"
            if draw(evaluation.candidate.overall_plot, f"{what}, {split} split", os.path.join(out_dir, file_name)):
                plots.images.append((file_name, f"{what}, {split} split"))
    return [overall, slices, plots]


EVAL_ACCURACY_PROPERTY = "eval_accuracy"


@tfx.dsl.components.component
def EvaluationReport(
    evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.InputArtifact[
        standard_artifacts.ModelBlessing
    ],  # lineage: `judge` reads TFMA's result
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
    tf.io.gfile.makedirs(report.uri)
    gate = read_evaluation(evaluation.uri)
    verdict = judge(gate)
    sections = [
        verdict_section(verdict, pushed_model, baseline_model),
        data_section(eval_split, examples, {"candidate": model, "baseline (served)": baseline_model}, drift),
        *metrics_sections(
            gate,
            read_evaluation(test_evaluation.uri) if test_evaluation is not None else None,
            eval_split,
            test_split,
            report.uri,
        ),
    ]
    title = f"Model evaluation: {'BLESSED' if verdict.blessed else 'NOT BLESSED'}"
    for file_name, render in ((REPORT_MARKDOWN, render_markdown), (REPORT_HTML, render_html)):
        with tf.io.gfile.GFile(os.path.join(report.uri, file_name), "w") as f:
            f.write(render(title, sections))
    report.set_int_custom_property("blessed", int(verdict.blessed))
    report.set_string_custom_property("reason", "; ".join(verdict.reasons))
    accuracy = gate.candidate.metrics.get(OVERALL, {}).get(metric_name(ACCURACY_METRIC))
    if accuracy is not None:  # for the run history (runners/run_history.py)
        report.set_float_custom_property(EVAL_ACCURACY_PROPERTY, accuracy)


def latest_report_path(metadata_connection_config: Any) -> str | None:
    """report.html of the newest EvaluationReport recorded in ML Metadata, None if there is none."""
    import ml_metadata as mlmd

    reports = mlmd.MetadataStore(metadata_connection_config).get_artifacts_by_type(ModelEvaluationReport.TYPE_NAME)
    return os.path.join(max(reports, key=lambda a: a.id).uri, REPORT_HTML) if reports else None
