"""Turns chosen component execution properties into KFP pipeline parameters (TFX `RuntimeParameter`s).

TFX's KubeflowV2DagRunner compiles a `RuntimeParameter` only where it is a whole execution property: it
cannot reach inside a proto (e.g. `TrainArgs.num_steps` or a TFMA threshold). So a proto-valued property
becomes a string parameter holding the proto's JSON, as TFX documents for `RuntimeParameter`
(`'{"num_steps": 5}'` for `TrainArgs`); its default is the value the pipeline was built with, so a run
without arguments is the compiled pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import json_format, message
from tfx import v1 as tfx
from tfx.utils import proto_utils


class ParameterError(ValueError):
    """A runtime parameter value that its property cannot take; the message names the parameter and the fix."""


def expose(
    pipeline: tfx.dsl.Pipeline, exposed: Mapping[str, tuple[str, str, str]], values: Mapping[str, str]
) -> dict[str, int | float | str]:
    """Replaces each execution property `exposed` names (parameter name -> component id, execution property,
    description) by a `RuntimeParameter` defaulting to its current value (str, int, float or a proto's JSON:
    TFX refuses other types). Returns every parameter's value for this run: its entry in `values` (--parameter,
    checked and typed), else its default. Fails naming the component or property that is missing.
    """
    components = {component.id: component for component in pipeline.components}
    parameters = {}
    for name, (component_id, exec_property, description) in exposed.items():
        component = components.get(component_id)
        if component is None:
            raise ValueError(
                f"runtime parameter '{name}': the pipeline has no component '{component_id}' "
                f"(it has {sorted(components)}); fix config.kubeflow.RUNTIME_PARAMETERS."
            )
        value = component.exec_properties.get(exec_property)
        if value is None:
            raise ValueError(
                f"runtime parameter '{name}': component '{component_id}' has no execution "
                f"property '{exec_property}' set; fix config.kubeflow.RUNTIME_PARAMETERS."
            )
        default = proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
        component.exec_properties[exec_property] = tfx.dsl.experimental.RuntimeParameter(
            name=name, ptype=type(default), default=default, description=description
        )
        parameters[name] = type(default)(values[name]) if name in values else default
        declared = component.SPEC_CLASS.PARAMETERS[exec_property].type  # a proto's: TFX holds its JSON
        if name in values and isinstance(declared, type) and issubclass(declared, message.Message):
            check_proto_value(name, declared, values[name])
    return parameters


def check_proto_value(name: str, proto_class: type[message.Message], value: str) -> None:
    """Fails naming the parameter unless `value` is a `proto_class` in JSON (stricter than the executors, which
    ignore unknown fields: a misspelt one would silently do nothing) whose step count is not negative (TrainArgs,
    EvalArgs; 0 is unset: whole passes) and whose metric value bounds are in [0, 1] (TFMA EvalConfig)."""
    try:
        proto = json_format.Parse(value, proto_class())
    except (json_format.ParseError, ValueError) as error:
        raise ParameterError(
            f"runtime parameter '{name}': not a valid {proto_class.__name__} in JSON ({error}); "
            f"e.g. {proto_utils.proto_to_json(proto_class())!r} with its fields set"
        ) from error
    if "num_steps" in proto.DESCRIPTOR.fields_by_name and proto.num_steps < 0:
        raise ParameterError(
            f"runtime parameter '{name}': num_steps {proto.num_steps}: must be an integer >= 1 "
            f"(or 0 or unset: whole passes over the split)"
        )
    if not hasattr(proto, "metrics_specs"):
        return
    from components.evaluation.tfma_config import configured_thresholds

    for class_name, threshold in configured_thresholds(proto):
        for side in ("lower_bound", "upper_bound"):
            bound = getattr(threshold.value_threshold, side)
            if threshold.value_threshold.HasField(side) and not 0 <= bound.value <= 1:
                raise ParameterError(
                    f"runtime parameter '{name}': {class_name} {side} {bound.value}: must be a number in [0, 1]"
                )


def record_defaults(job: dict, pipeline: tfx.dsl.Pipeline) -> None:
    """Writes the default and description of each `RuntimeParameter` of `pipeline` into the compiled job's (its
    JSON as a dict) root inputs.

    TFX puts RuntimeParameter defaults nowhere in the spec; the KFP UI, `kfp.Client` and Vertex AI read
    `defaultValue` (and `isOptional`) there, so a run that sets no parameter uses the compiled values.
    """
    inputs = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    for component in pipeline.components:
        for parameter in component.exec_properties.values():
            if isinstance(parameter, tfx.dsl.experimental.RuntimeParameter):
                inputs[parameter.name].update(
                    defaultValue=parameter.default, isOptional=True, description=parameter.description
                )
