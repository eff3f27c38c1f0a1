"""The baseline a candidate is judged against and a warm start starts from: the model being served.

`LatestServedModel` copies the served version (`serving_versions.served_model`: only blessed models get there)
into a Model artifact, empty on the first run. It is a plain container task on
every orchestrator, unlike TFX's `Resolver`, whose resolver executors only Vertex AI runs.
"""

import os
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import cache_key_driver
from modules import model_interface, serving_versions

SERVING_MODEL_DIR_KEY = "serving_model_dir"
SERVED_VERSIONS_KEY = "served_versions"
MODEL_KEY = "model"
SERVED_VERSION_PROPERTY = "served_version"  # 0: nothing was served
SERVED_FROM_PROPERTY = "served_from"


def baseline_model_uri(models: types.Artifact | list[types.Artifact] | None) -> str | None:
    """The SavedModel in `LatestServedModel`'s artifact (or one-item list), None if none or empty (none served)."""
    model = (models[0] if models else None) if isinstance(models, list) else models
    return serving_versions.served_model(
        path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)) if model else None
    )


def without_empty_baseline(input_dict: dict[str, list[types.Artifact]], key: str) -> dict[str, list[types.Artifact]]:
    """`input_dict` with its `key` input dropped when it holds no served model, so TFX's executors see none."""
    if input_dict.get(key) and baseline_model_uri(input_dict[key]) is None:
        logging.info("No %s (%s)", key, describe_served_model(input_dict[key][0]))
        return {**input_dict, key: []}
    return input_dict


def describe_served_model(model: types.Artifact | None) -> str:
    """'served version N from DIR', or why there is none."""
    if model is None or baseline_model_uri(model) is None:
        return "none: nothing is served yet (first run)"
    return (
        f"served version {model.get_int_custom_property(SERVED_VERSION_PROPERTY)} from "
        f"{model.get_string_custom_property(SERVED_FROM_PROPERTY)}"
    )


class Executor(base_executor.BaseExecutor):
    """Copies the served version under the serving directory into the Model artifact; leaves it empty if none."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        serving_model_dir = exec_properties[SERVING_MODEL_DIR_KEY]
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        served = serving_versions.served_model(serving_model_dir)
        model.set_string_custom_property(SERVED_FROM_PROPERTY, serving_model_dir)
        model.set_int_custom_property(SERVED_VERSION_PROPERTY, int(os.path.basename(served)) if served else 0)
        if served:  # checked first: a broken version stops the run here, before any training
            serving_versions.check_servable(served, (model_interface.SERVING_SIGNATURE, model_interface.TEXT_SIGNATURE))
            io_utils.copy_dir(served, path_utils.serving_model_path(model.uri))
        logging.info("Baseline: %s", describe_served_model(model))


class Driver(cache_key_driver.CacheKeyDriver):
    """Keys the cache on the served versions: a cached baseline is reused only while they are the same."""

    KEY = SERVED_VERSIONS_KEY

    def cache_key(self, exec_properties: dict[str, Any]) -> str:
        return ",".join(map(str, serving_versions.versions(exec_properties[SERVING_MODEL_DIR_KEY])))


class LatestServedModelSpec(types.ComponentSpec):
    PARAMETERS = {
        SERVING_MODEL_DIR_KEY: ExecutionParameter(type=str),
        SERVED_VERSIONS_KEY: ExecutionParameter(type=str, optional=True),  # set by the Driver (LocalDagRunner)
    }
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class LatestServedModel(base_component.BaseComponent):
    """The model TF Serving serves from `serving_model_dir` (the Pusher's destination), as a Model artifact."""

    SPEC_CLASS = LatestServedModelSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, serving_model_dir: str):
        super().__init__(
            LatestServedModelSpec(
                serving_model_dir=serving_model_dir, model=types.Channel(type=standard_artifacts.Model)
            )
        )
