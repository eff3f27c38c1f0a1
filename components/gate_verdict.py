"""Why the gating Evaluator did or did not bless the candidate, threshold by threshold."""

import dataclasses

from tfx.components.evaluator import constants
from tfx.types import standard_artifacts

from components import tfma_config
from components.report_rendering import format_value
from components.tfma_results import OVERALL, Evaluation


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


def judge(evaluation: Evaluation, blessing: standard_artifacts.ModelBlessing) -> Verdict:
    """The gating Evaluator's verdict on `evaluation`: every configured threshold checked against the overall
    slice, and why it failed or passed."""
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
                reasons.append(
                    f"{label} {overall.get(name, float('nan')):.4f} is {-diff:.4f} below the last blessed "
                    f"model's {baseline.get(name, float('nan')):.4f}; at most {-allowed:.4f} is allowed")
    if evaluation.validation.missing_thresholds:
        reasons.append("a configured threshold could not be checked: its metric is missing")
    reasons += [f"a threshold's slice has no examples: {missing}".strip()
                for missing in evaluation.validation.missing_slices]
    if evaluation.baseline is None:  # TFMA removed the change thresholds from the stored config
        accuracy = tfma_config.REPORTED_METRICS[tfma_config.ACCURACY_METRIC]
        checks.append(ThresholdCheck(accuracy, "change vs. baseline", "skipped: no baseline", None, None))
    blessed = blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) == constants.BLESSED_VALUE
    if blessed and not reasons:
        reasons.append("no baseline: absolute bound only" if evaluation.baseline is None else "all thresholds met")
    if not blessed and not reasons:
        reasons.append(f"the Evaluator did not bless the model (see its validation result: {evaluation.path})")
    return Verdict(blessed, reasons, checks)
