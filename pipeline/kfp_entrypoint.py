"""The command every task of the compiled Kubeflow pipeline runs: TFX's Kubeflow V2 executor entrypoint,
with each input artifact typed by the compiled spec.

    python -m pipeline.kfp_entrypoint --executor_class_path ... --json_serialized_invocation_args '{{$}}'
        --json_serialized_inputs_spec_args '{...}' [beam args]

TFX's entrypoint (`kubeflow_v2_run_executor`) picks each input artifact's Python class from the type the
orchestrator puts on it in the ExecutorInput, and expects the compiled type: `instanceSchema` titled
`tfx.Examples`, `tfx.Model`... Vertex AI passes that. `kfp.local` passes `schemaTitle: system.Artifact`
(TFX then fails with "Could not import system.Artifact"), and the open-source KFP driver an empty
`instanceSchema` (kubeflow/pipelines, backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId:
`Schema: "" // TODO: figure out how to get schema`), which TFX cannot parse either. The compiled task carries
its inputs' types (`--json_serialized_inputs_spec_args`); this entrypoint copies them onto the input
artifacts, then runs TFX's entrypoint unchanged. Outputs are typed from the spec by every orchestrator.
"""

from __future__ import annotations

import sys

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
ENTRYPOINT = "pipeline.kfp_entrypoint"  # this module, as `python -m` runs it


def typed_invocation(invocation_json: str, inputs_spec_json: str) -> str:
    """The ExecutorInput JSON with every input artifact's type replaced by its type in the inputs spec."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    executor_input = json_format.Parse(invocation_json, pipeline_spec_pb2.ExecutorInput(),
                                       ignore_unknown_fields=True)
    inputs_spec = json_format.Parse(inputs_spec_json, pipeline_spec_pb2.ComponentInputsSpec(),
                                    ignore_unknown_fields=True)
    for name, artifact_list in executor_input.inputs.artifacts.items():
        if name in inputs_spec.artifacts:
            for artifact in artifact_list.artifacts:
                artifact.type.CopyFrom(inputs_spec.artifacts[name].artifact_type)
    return json_format.MessageToJson(executor_input)


def flag_value(argv: list[str], flag: str) -> tuple[int, str] | None:
    """(index of the value, value) of `flag` given as `flag value` or `flag=value`; None if absent."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return index + 1, argv[index + 1]
        if arg.startswith(flag + "="):
            return index, arg.split("=", 1)[1]
    return None


def retyped_argv(argv: list[str]) -> list[str]:
    """`argv` with the invocation flag's ExecutorInput typed by the inputs spec flag (unchanged without it)."""
    invocation, inputs_spec = flag_value(argv, INVOCATION_FLAG), flag_value(argv, INPUTS_SPEC_FLAG)
    if invocation is None or inputs_spec is None:
        return list(argv)
    index, value = invocation
    argv = list(argv)
    typed = typed_invocation(value, inputs_spec[1])
    argv[index] = typed if argv[index] == value else f"{INVOCATION_FLAG}={typed}"
    return argv


def use_in_spec(job: dict) -> None:
    """Points every task of the compiled job (its JSON as a dict) that runs TFX's entrypoint at this one."""
    for executor in job["pipelineSpec"]["deploymentSpec"]["executors"].values():
        command = executor.get("container", {}).get("command", [])
        if command[-1:] == [TFX_ENTRYPOINT]:
            command[-1] = ENTRYPOINT


def main(argv: list[str]) -> None:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    sys.argv = [sys.argv[0], *retyped_argv(argv)]
    app.run(kubeflow_v2_run_executor.main, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001


if __name__ == "__main__":
    main(sys.argv[1:])
