"""The baseline a candidate is judged against: the model being served, read from the serving directory.

Only blessed models reach the serving directory (the Pusher pushes nothing else, whole or not at all), and
TF Serving serves its highest numeric version, so that version is the last blessed model that is live.
`LatestServedModel` copies it into a Model artifact (recording which version, from where); on the first
run there is none and the artifact stays empty. This is an ordinary container task on every orchestrator,
unlike TFX's `Resolver`, which compiles to resolver executors that only Vertex AI runs (open-source Kubeflow
Pipelines and `kfp.local` refuse them), and which needs ML Metadata rather than the serving directory.

`Evaluator` is TFX's Evaluator reading that artifact: an empty one is no baseline (the absolute bounds alone
decide, as on TFX's first run). The Trainer's warm start reads the same artifact.
"""


import os
from typing import Any

from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import cache_key_driver
from modules import serving_versions

SERVING_MODEL_DIR_KEY = "serving_model_dir"
SERVED_VERSIONS_KEY = "served_versions"
MODEL_KEY = "model"
SERVED_VERSION_PROPERTY = "served_version"  # 0: nothing was served
SERVED_FROM_PROPERTY = "served_from"


def model_path(model: types.Artifact) -> str | None:
    """The SavedModel inside a Model artifact, or None where the artifact is empty (no served model)."""
    path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    return path if fileio.exists(path) else None


def describe(model: types.Artifact | None) -> str:
    """'served version N from DIR', or why there is none."""
    if model is None or not model.get_int_custom_property(SERVED_VERSION_PROPERTY):
        return "none: nothing is served yet (first run)"
    return (f"served version {model.get_int_custom_property(SERVED_VERSION_PROPERTY)} from "
            f"{model.get_string_custom_property(SERVED_FROM_PROPERTY)}")


class Executor(base_executor.BaseExecutor):
    """Copies the highest complete version under the serving directory into the Model artifact; leaves it
    empty if there is none."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        serving_model_dir = exec_properties[SERVING_MODEL_DIR_KEY]
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        versions = serving_versions.versions(serving_model_dir)
        model.set_string_custom_property(SERVED_FROM_PROPERTY, serving_model_dir)
        model.set_int_custom_property(SERVED_VERSION_PROPERTY, versions[-1] if versions else 0)
        if not versions:
            logging.info("No model is served under %s yet: there is no baseline", serving_model_dir)
            return
        io_utils.copy_dir(os.path.join(serving_model_dir, str(versions[-1])),
                          path_utils.serving_model_path(model.uri))
        logging.info("Baseline: %s", describe(model))


class Driver(cache_key_driver.CacheKeyDriver):
    """Adds the served versions to the execution properties, so a cached baseline is reused only while the
    serving directory holds the same versions."""

    KEY = SERVED_VERSIONS_KEY

    def cache_key(self, exec_properties: dict[str, Any]) -> str:
        return ",".join(map(str, serving_versions.versions(exec_properties[SERVING_MODEL_DIR_KEY])))


class LatestServedModelSpec(types.ComponentSpec):
    PARAMETERS = {
        SERVING_MODEL_DIR_KEY: ExecutionParameter(type=str),
        # Set by the Driver when it runs (LocalDagRunner); what the cache key sees of the serving directory.
        SERVED_VERSIONS_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class LatestServedModel(base_component.BaseComponent):
    """The model TF Serving serves from `serving_model_dir` (its highest version), as a Model artifact.

    Args:
      serving_model_dir: the Pusher's destination (local or gs://...).
    """

    SPEC_CLASS = LatestServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, serving_model_dir: str):
        super().__init__(LatestServedModelSpec(serving_model_dir=serving_model_dir,
                                               model=types.Channel(type=standard_artifacts.Model)))


class EvaluatorExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor; an empty baseline artifact (nothing served yet) counts as no baseline."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        if baselines and model_path(baselines[0]) is None:
            logging.info("No baseline (%s): the absolute thresholds alone decide", describe(baselines[0]))
            input_dict = {**input_dict, standard_component_specs.BASELINE_MODEL_KEY: []}
        super().Do(input_dict, output_dict, exec_properties)


class Evaluator(tfx.components.Evaluator):
    """TFX's Evaluator, with `LatestServedModel`'s artifact as `baseline_model`."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)
