"""The gating Evaluator (TFX's, judging against the served model) and why it did or did not bless the candidate,
threshold by threshold."""

import dataclasses
from typing import Any

from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_component_specs

from components.evaluation import tfma_config
from components.evaluation.report_rendering import format_value
from components.evaluation.tfma_results import OVERALL, Evaluation
from components.serving import served_baseline


class EvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor; an empty baseline artifact is no baseline (the absolute bounds alone decide)."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        input_dict = served_baseline.without_empty_baseline(input_dict, standard_component_specs.BASELINE_MODEL_KEY)
        super().Do(input_dict, output_dict, exec_properties)


class GatingEvaluator(tfx.components.Evaluator):
    """TFX's Evaluator judging against `LatestServedModel`'s artifact (`baseline_model`)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)


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


def judge(evaluation: Evaluation) -> Verdict:
    """The gating Evaluator's verdict on `evaluation`, from TFMA's ValidationResult (the Evaluator blesses exactly
    when it is ok): every configured threshold checked against the overall slice, and why it failed or passed."""
    failures = [f for per_slice in evaluation.validation.metric_validations_per_slice for f in per_slice.failures]
    overall = evaluation.candidate.metrics.get(OVERALL, {})
    baseline = evaluation.baseline.metrics.get(OVERALL, {}) if evaluation.baseline else {}
    checks, reasons = [], []
    for class_name, threshold in tfma_config.configured_thresholds(evaluation.config):
        name = tfma_config.metric_name(class_name)
        label = tfma_config.REPORTED_METRICS.get(class_name, name)
        failed = [f.metric_threshold for f in failures if f.metric_key.name == name]
        if threshold.HasField("value_threshold"):
            bound, value = threshold.value_threshold.lower_bound.value, overall.get(name)
            passed = not any(t.HasField("value_threshold") for t in failed)
            checks.append(ThresholdCheck(label, "absolute", f">= {bound:.4f}", value, passed))
            if not passed:
                reasons.append(f"{label} {format_value(value)} is below the absolute bound {bound:.4f}")
        if threshold.HasField("change_threshold"):
            allowed, diff = threshold.change_threshold.absolute.value, overall.get(f"{name}_diff")
            passed = not any(t.HasField("change_threshold") for t in failed)
            checks.append(ThresholdCheck(label, "change vs. baseline", f">= {allowed:+.4f}", diff, passed))
            if not passed:
                drop = -diff if diff is not None else float("nan")
                reasons.append(
                    f"{label} {overall.get(name, float('nan')):.4f} is {drop:.4f} below the served "
                    f"model's {baseline.get(name, float('nan')):.4f}; at most {-allowed:.4f} is allowed"
                )
    if evaluation.validation.missing_thresholds:
        reasons.append("a configured threshold could not be checked: its metric is missing")
    reasons += [
        f"a threshold's slice has no examples: {missing}".strip() for missing in evaluation.validation.missing_slices
    ]
    if evaluation.baseline is None:  # TFMA removed the change thresholds from the stored config
        accuracy = tfma_config.REPORTED_METRICS[tfma_config.ACCURACY_METRIC]
        checks.append(ThresholdCheck(accuracy, "change vs. baseline", "skipped: no baseline", None, None))
    # TFMA's bookkeeping decides; the push it allows stays hand-written (atomic_pusher) for crash-safety: TFX's
    # Pusher copies into the numbered version folder itself (saved_model.pb last, tfx/components/pusher/executor.py),
    # so a crash leaves a numbered folder without it, which TF Serving tries and fails at every poll and nothing
    # removes.
    blessed = evaluation.validation.validation_ok
    if blessed and not reasons:
        reasons.append("no baseline: absolute bound only" if evaluation.baseline is None else "all thresholds met")
    if not blessed and not reasons:
        reasons.append(f"the Evaluator did not bless the model (see its validation result: {evaluation.path})")
    return Verdict(blessed, reasons, checks)
