"""Turns chosen component execution properties into KFP pipeline parameters (TFX `RuntimeParameter`s).

TFX's KubeflowV2DagRunner compiles a `RuntimeParameter` only where it is a whole execution property: it
cannot reach inside a proto (e.g. `TrainArgs.num_steps` or a TFMA threshold). So a proto-valued property
becomes a string parameter holding the proto's JSON, as TFX documents for `RuntimeParameter`
(`'{"num_steps": 5}'` for `TrainArgs`); its default is the value the pipeline was built with, so a run
without arguments is the compiled pipeline.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import message
from tfx import v1 as tfx
from tfx.utils import proto_utils


@dataclasses.dataclass(frozen=True)
class ExposedProperty:
    """Pipeline parameter `name` sets execution property `exec_property` of component `component_id`."""

    name: str
    component_id: str
    exec_property: str
    description: str


def _as_parameter_default(value: Any) -> int | float | str:
    if isinstance(value, message.Message):
        return proto_utils.proto_to_json(value)
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    raise TypeError(f"{type(value).__name__} cannot be a KFP runtime parameter (only str, int, float and protos)")


def expose(pipeline: tfx.dsl.Pipeline, exposed: list[ExposedProperty]) -> dict[str, int | float | str]:
    """Replaces each named execution property by a `RuntimeParameter` defaulting to its current value.

    Returns the parameters' defaults by name. Fails naming the component or property that is missing.
    """
    components = {component.id: component for component in pipeline.components}
    defaults = {}
    for item in exposed:
        component = components.get(item.component_id)
        if component is None:
            raise ValueError(f"runtime parameter '{item.name}': the pipeline has no component '{item.component_id}' "
                             f"(it has {sorted(components)}); fix configs.KUBEFLOW_RUNTIME_PARAMETERS.")
        value = component.exec_properties.get(item.exec_property)
        if value is None:
            raise ValueError(f"runtime parameter '{item.name}': component '{item.component_id}' has no execution "
                             f"property '{item.exec_property}' set; fix configs.KUBEFLOW_RUNTIME_PARAMETERS.")
        default = _as_parameter_default(value)
        component.exec_properties[item.exec_property] = tfx.dsl.experimental.RuntimeParameter(
            name=item.name, ptype=type(default), default=default, description=item.description)
        defaults[item.name] = default
    return defaults


def record_defaults(job: dict, exposed: list[ExposedProperty], defaults: dict[str, int | float | str]) -> None:
    """Writes each parameter's default and description into the compiled job's (its JSON as a dict) root inputs.

    TFX puts RuntimeParameter defaults nowhere in the spec; the KFP UI, `kfp.Client` and Vertex AI read
    `defaultValue` (and `isOptional`) there, so a run that sets no parameter uses the compiled values.
    """
    parameters = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    for item in exposed:
        parameters[item.name].update(defaultValue=defaults[item.name], isOptional=True, description=item.description)


class ParameterError(ValueError):
    """A runtime parameter value that its property cannot take; the message names the parameter and the fix."""


def _check_ranges(name: str, proto: message.Message) -> None:
    """Step counts not negative (TrainArgs, EvalArgs; 0 is unset: whole passes) and metric value bounds in
    [0, 1] (TFMA EvalConfig)."""
    if "num_steps" in proto.DESCRIPTOR.fields_by_name and proto.num_steps < 0:
        raise ParameterError(f"runtime parameter '{name}': num_steps {proto.num_steps}: must be an integer >= 1 "
                             f"(or 0 or unset: whole passes over the split)")
    if not hasattr(proto, "metrics_specs"):
        return
    from components.tfma_config import configured_thresholds

    for class_name, threshold in configured_thresholds(proto):
        for side in ("lower_bound", "upper_bound"):
            bound = getattr(threshold.value_threshold, side)
            if threshold.value_threshold.HasField(side) and not 0 <= bound.value <= 1:
                raise ParameterError(f"runtime parameter '{name}': {class_name} {side} {bound.value}: "
                                     f"must be a number in [0, 1]")


def check_values(pipeline: tfx.dsl.Pipeline, exposed: list[ExposedProperty], values: dict[str, Any]) -> None:
    """Fails naming the parameter if a value is not valid for its property (e.g. bad TrainArgs JSON).

    Stricter than the executors, which ignore unknown JSON fields: a misspelt field would silently do nothing.
    """
    from google.protobuf import json_format

    components = {component.id: component for component in pipeline.components}
    by_name = {item.name: item for item in exposed}
    for name, value in values.items():
        item = by_name[name]
        declared = components[item.component_id].SPEC_CLASS.PARAMETERS[item.exec_property].type
        if isinstance(declared, type) and issubclass(declared, message.Message):
            try:
                parsed = json_format.Parse(value, declared())
            except (json_format.ParseError, ValueError) as error:
                raise ParameterError(f"runtime parameter '{name}': not a valid {declared.__name__} in JSON "
                                     f"({error}); e.g. {proto_utils.proto_to_json(declared())!r} with its fields set"
                                     ) from error
            _check_ranges(name, parsed)
