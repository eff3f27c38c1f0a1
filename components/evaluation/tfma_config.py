"""The TFMA metrics, plots and accuracy gate both Evaluators run, and the thresholds an EvalConfig holds."""

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from config.examples import LABEL_FEATURE
from modules import model_interface

ACCURACY_METRIC = "BinaryAccuracy"  # the metric that gates
# The metrics reported (TFMA class name -> the report's label), in the report's order.
REPORTED_METRICS = {
    "ExampleCount": "examples",
    "BinaryAccuracy": "accuracy",
    "AUC": "AUC (ROC)",
    "AUCPrecisionRecall": "AUC (PR)",
    "Precision": "precision",
    "Recall": "recall",
    "MeanLabel": "mean label",
    "MeanPrediction": "mean prediction",
    "Calibration": "calibration",
}
REPORTED_PLOTS = ("CalibrationPlot", "ConfusionMatrixPlot")


def metric_name(class_name: str) -> str:
    """The name TFMA writes the value of a metric class under (BinaryAccuracy -> binary_accuracy)."""
    return getattr(tfma.metrics, class_name)().name


def create_eval_config(
    accuracy_threshold: float | None, max_accuracy_drop: float | None, slice_features: tuple[str, ...]
) -> config_pb2.EvalConfig:
    """TFMA config for `serving_default`: metrics and plots overall and per value of each of `slice_features`.
    With `accuracy_threshold`, the overall slice's accuracy gates (slices are never gated): it must be at least
    `accuracy_threshold` and at most `max_accuracy_drop` below the baseline's (TFMA drops this bound without a
    baseline). With None, nothing is validated and the Evaluator blesses nothing (the test-split report)."""
    metrics = [config_pb2.MetricConfig(class_name=name) for name in (*REPORTED_METRICS, *REPORTED_PLOTS)]
    if accuracy_threshold is not None:
        if max_accuracy_drop is None:
            raise ValueError("max_accuracy_drop is required with accuracy_threshold")
        accuracy = next(m for m in metrics if m.class_name == ACCURACY_METRIC)
        accuracy.per_slice_thresholds.add(
            slicing_specs=[{}],
            threshold=config_pb2.MetricThreshold(
                value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": accuracy_threshold}),
                change_threshold=config_pb2.GenericChangeThreshold(
                    direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_accuracy_drop}
                ),
            ),
        )
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=model_interface.SERVING_SIGNATURE,
                label_key=LABEL_FEATURE,
                prediction_key=model_interface.PROBABILITY_OUTPUT,
                preprocessing_function_names=[],
            )
        ],
        slicing_specs=[config_pb2.SlicingSpec()] + [config_pb2.SlicingSpec(feature_keys=[f]) for f in slice_features],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


def configured_thresholds(config: config_pb2.EvalConfig) -> list[tuple[str, config_pb2.MetricThreshold]]:
    """(metric class name, threshold) for every threshold in `config`, whole-dataset and per slice."""
    return [
        (metric.class_name, threshold)
        for metrics_spec in config.metrics_specs
        for metric in metrics_spec.metrics
        for threshold in ([metric.threshold] if metric.threshold.ByteSize() else [])
        + [per_slice.threshold for per_slice in metric.per_slice_thresholds]
    ]
