"""An Evaluator's output read back through TFMA: its config, each model's metrics per slice and overall plots,
and its validation result."""

import dataclasses
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2, validation_result_pb2
from tensorflow_model_analysis.writers import eval_config_writer

OVERALL = "Overall"


@dataclasses.dataclass
class ModelResults:
    """One model's metrics per slice (name -> value; the candidate's also `<name>_diff`: minus the baseline's),
    and its overall plots (TFMA's PlotData as a dict: calibration buckets, confusion matrices)."""

    metrics: dict[str, dict[str, float]]
    overall_plot: dict[str, Any]


@dataclasses.dataclass
class Evaluation:
    """What one Evaluator wrote: its (defaults-filled) config, results per model, validation result."""

    path: str
    config: config_pb2.EvalConfig
    candidate: ModelResults
    baseline: ModelResults | None
    validation: validation_result_pb2.ValidationResult


def slice_name(slice_key: tuple) -> str:
    """'Overall', or 'feature = value' for a single-feature slice."""
    return ", ".join(f"{column} = {value}" for column, value in slice_key) or OVERALL


def model_results(path: str, model_name: str) -> ModelResults:
    """The results of the model named `model_name` ("" for the only one) in an Evaluator's output folder."""
    result = tfma.load_eval_result(path, model_name=model_name or None)
    metrics = {
        slice_name(key): {name: float(value["doubleValue"]) for name, value in values.items() if "doubleValue" in value}
        for key, values in result.get_metrics_for_all_slices().items()
    }
    plots = [plot[""][""] for key, plot in result.plots if not key]
    return ModelResults(metrics, plots[0] if plots else {})


def read_evaluation(path: str) -> Evaluation:
    """Loads an Evaluator's output folder (a ModelEvaluation artifact's uri)."""
    config = eval_config_writer.load_eval_run(path)[0]
    if config is None:
        raise FileNotFoundError(f"{path}: no TFMA eval_config.json; is this a ModelEvaluation artifact's folder?")
    names = {spec.is_baseline: spec.name for spec in config.model_specs}  # the candidate's and the baseline's
    return Evaluation(
        path,
        config,
        model_results(path, names[False]),
        model_results(path, names[True]) if True in names else None,
        tfma.load_validation_result(path),
    )
