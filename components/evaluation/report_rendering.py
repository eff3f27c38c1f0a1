"""The report's look: values and metric tables as text, sections as Markdown and HTML (templates/), plots as PNG."""

import dataclasses
import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure to close

from components.evaluation import tfma_config
from components.evaluation.tfma_results import OVERALL, ModelResults
from modules import figures, model_interface, templates

# Labels by the name TFMA writes each metric under (`metric_name`), in the report's order.
METRIC_LABELS = {tfma_config.metric_name(name): label for name, label in tfma_config.REPORTED_METRICS.items()}
# Ranking metrics need both classes in a slice; TFMA writes 0.0 for them where a slice has one (every rating
# slice: ratings 1-4 are negative reviews, 7-10 positive).
RANKING_METRICS = ("auc", "auc_precision_recall")
ONE_CLASS = "n/a (one class)"
CLASSIFICATION_THRESHOLD = 0.5
CALIBRATION_BINS = 10


@dataclasses.dataclass
class Section:
    """A titled block of the report: paragraphs, tables (caption, header, rows) and images (file, caption)."""

    title: str
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = dataclasses.field(default_factory=list)
    images: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def format_value(value: float | None, name: str = "") -> str:
    """A measured value as the report shows it: '–' for none, 'n/a' for NaN, counts whole."""
    if value is None:
        return "–"
    if math.isnan(value):
        return "n/a"
    return f"{value:.0f}" if name == "example_count" else f"{value:.4f}"


def format_metric(slice_metrics: dict[str, float], name: str) -> str:
    """One metric of one slice as the report shows it."""
    if name in RANKING_METRICS and slice_metrics.get("mean_label") in (0.0, 1.0):
        return ONE_CLASS
    return format_value(slice_metrics.get(name), name)


def _slice_order(name: str) -> tuple:
    if name == OVERALL:
        return (0, "", 0)
    column, _, value = name.partition(" = ")
    number = value.split("-")[0].rstrip("+")
    return (1, column, int(number) if number.isdigit() else value)


def metrics_table(results: ModelResults) -> tuple[list[str], list[list[str]]]:
    """Header and rows: a model's reported metrics, one row per slice."""
    names = [n for n in METRIC_LABELS if any(n in m for m in results.metrics.values())]
    rows = [
        [name] + [format_metric(results.metrics[name], n) for n in names]
        for name in sorted(results.metrics, key=_slice_order)
    ]
    return ["slice"] + [METRIC_LABELS[n] for n in names], rows


def overall_table(columns: dict[str, ModelResults | None]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each reported metric of the overall slice, one column per model present."""
    present = {title: r for title, r in columns.items() if r is not None}
    rows = [
        [label] + [format_metric(r.metrics.get(OVERALL, {}), name) for r in present.values()]
        for name, label in METRIC_LABELS.items()
    ]
    return ["metric"] + list(present), rows


def render_markdown(title: str, sections: list[Section]) -> str:
    return templates.render("components.evaluation", "report.md.j2", title=title, sections=sections)


def render_html(title: str, sections: list[Section]) -> str:
    return templates.render("components.evaluation", "report.html.j2", title=title, sections=sections)


def _save(figure: Figure, path: str) -> bool:
    figure.tight_layout()
    figures.write_png(figure, path)
    return True


def plot_calibration(plot: dict[str, Any], title: str, path: str) -> bool:
    """Reliability diagram: mean label against mean prediction per bin (marker area ~ examples); False if empty."""
    # TFMA's histogram has 10,000 fine buckets; regroup them into CALIBRATION_BINS equal-width bins.
    buckets = plot.get("calibrationHistogramBuckets", {}).get("buckets", [])
    lower = np.clip([float(b.get("lowerThresholdInclusive", 0.0)) for b in buckets], 0.0, 1.0)
    index = np.minimum((lower * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    counts, labels, predictions = (
        np.bincount(index, [b.get(key, 0.0) for b in buckets], CALIBRATION_BINS)
        for key in ("numWeightedExamples", "totalWeightedLabel", "totalWeightedRefinedPrediction")
    )
    kept = counts > 0
    if not kept.any():
        return False
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.scatter(
        predictions[kept] / counts[kept],
        labels[kept] / counts[kept],
        alpha=0.7,
        s=20 + 200 * counts[kept] / counts.max(),
        label=f"{CALIBRATION_BINS} bins (area ~ examples)",
    )
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability", ylabel="fraction positive", title=title)
    axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def plot_confusion_matrix(plot: dict[str, Any], title: str, path: str) -> bool:
    """2x2 counts at the classification threshold nearest 0.5; False if there are none."""
    from sklearn.metrics import ConfusionMatrixDisplay

    matrices = plot.get("confusionMatrixAtThresholds", {}).get("matrices", [])
    if not matrices:
        return False
    matrix = min(matrices, key=lambda m: abs(float(m.get("threshold", 0.0)) - CLASSIFICATION_THRESHOLD))
    cells = [
        [matrix.get(key, 0.0) for key in row]
        for row in (("trueNegatives", "falsePositives"), ("falseNegatives", "truePositives"))
    ]
    figure = Figure(figsize=(4.5, 4))
    axes = figure.subplots()
    ConfusionMatrixDisplay(np.array(cells), display_labels=model_interface.CLASS_NAMES).plot(
        ax=axes, cmap="Blues", values_format=".0f", colorbar=False, text_kw={"fontsize": 14}
    )
    threshold = float(matrix.get("threshold", 0.0))
    axes.set(xlabel="predicted", ylabel="actual", title=f"{title}\n(threshold {threshold:.2f})")
    return _save(figure, path)
