"""The command every task of the compiled Kubeflow pipeline runs: TFX's Kubeflow V2 executor entrypoint, fed
what it expects from what a Kubeflow Pipelines backend actually passes, and leaving behind what the backend's
launcher can read.

    python -m runners.kfp_entrypoint --executor_class_path ... --json_serialized_invocation_args '{{$}}'
        --json_serialized_inputs_spec_args '{...}' --json_serialized_outputs_spec_args '{...}' [beam args]

TFX's entrypoint (`kubeflow_v2_run_executor`) was written for Vertex AI. What the open-source backend does
differently, read in kubeflow/pipelines at tags 2.4.0, 2.5.0 and 2.17.0 (paths under backend/src/v2/; the
conformance tier in tests/e2e/test_kfp_backend_conformance.py builds its executor inputs from the same lines):

1. Input artifact types. The driver hands an upstream output over with `type: {instanceSchema: ""}`
   (metadata/client.go GetOutputArtifactsByExecutionId, `Schema: "" // TODO`: 2.4.0 L941, 2.5.0 L948, 2.17.0
   L1144; ToRuntimeArtifact: 2.4.0 L174-189); kfp.local passes `system.Artifact`. TFX imports a class from that
   type, so every input is typed from the compiled inputs spec.
2. Outputs the spec does not name. Since 2.5 the driver adds `executor-logs` (`system.Artifact`) to every task
   when logs are published, the stock install's default (driver/driver.go provisionOutputs: 2.5.0 L2025-2039,
   2.17.0 L747-760; PUBLISH_LOGS "true" in manifests/kustomize/base/pipeline/ml-pipeline-apiserver-
   deployment.yaml). The launcher writes that file itself (component/launcher_v2.go getLogWriter: 2.5.0
   L467-490) and registers declared outputs the executor never mentions (uploadOutputArtifacts: 2.5.0
   L540-592), so TFX is shown only the outputs its component declares, each typed from the compiled outputs
   spec (the driver copies it too: provisionOutputs 2.4.0 L1589).
3. Metadata values. The launcher stores a list as the struct `{"list": [...]}` and an object as
   `{"struct": {...}}` and the driver hands them back so (metadata/converter.go StructValueToMLMDValue: 2.4.0
   L133-166, 2.17.0 L138-171; toRuntimeArtifact 2.4.0 L189-213); a value passed on again nests once more.
   They are unwrapped here. A null value makes the launcher fail to record the artifact ("unknown/unsupported
   value type"), so none is written back.
4. Folder objects. TensorFlow's GCS filesystem writes a zero-byte object `dir/` on every makedirs. The launcher
   downloads every input artifact before a task starts and turns that object into an empty file where the
   folder should be, then fails on the next object with "not a directory" (objectstore/object_store.go
   DownloadBlob: 2.4.0 L124-151, 2.17.0 L176-205; kubeflow/pipelines#13476, open). After the executor, every
   such object under this task's output artifacts is deleted: the objects then hold only files, which every
   version downloads.
"""

from __future__ import annotations

import sys
from typing import Any

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"  # ours: TFX's entrypoint does not know it
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
ENTRYPOINT = "runners.kfp_entrypoint"  # this module, as `python -m` runs it
WRAPPED_VALUE_KEYS = ("list", "struct")  # converter.go's wrappers (point 3)


def unwrapped(value: Any) -> Any:
    """A metadata value as its producer wrote it: the backend's `{"list": ...}` / `{"struct": ...}` wrappers
    removed, however deeply passed on (point 3)."""
    while isinstance(value, dict) and len(value) == 1 and next(iter(value)) in WRAPPED_VALUE_KEYS:
        value = next(iter(value.values()))
    return value


def conformed_executor_input(invocation_json: str, inputs_spec_json: str, outputs_spec_json: str | None) -> str:
    """The ExecutorInput JSON TFX's entrypoint can read: inputs typed by the inputs spec with their metadata
    unwrapped; outputs typed by the outputs spec, those it does not name removed (given no outputs spec: kept
    as passed)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    executor_input = json_format.Parse(invocation_json, pipeline_spec_pb2.ExecutorInput(),
                                       ignore_unknown_fields=True)
    inputs_spec = json_format.Parse(inputs_spec_json, pipeline_spec_pb2.ComponentInputsSpec(),
                                    ignore_unknown_fields=True)
    for name, artifact_list in executor_input.inputs.artifacts.items():
        for artifact in artifact_list.artifacts:
            if name in inputs_spec.artifacts:
                artifact.type.CopyFrom(inputs_spec.artifacts[name].artifact_type)
            metadata = {key: unwrapped(value) for key, value in json_format.MessageToDict(artifact.metadata).items()}
            artifact.metadata.Clear()
            artifact.metadata.update(metadata)
    if outputs_spec_json is not None:
        outputs_spec = json_format.Parse(outputs_spec_json, pipeline_spec_pb2.ComponentOutputsSpec(),
                                         ignore_unknown_fields=True)
        for name in [name for name in executor_input.outputs.artifacts if name not in outputs_spec.artifacts]:
            del executor_input.outputs.artifacts[name]
        for name, artifact_list in executor_input.outputs.artifacts.items():
            for artifact in artifact_list.artifacts:
                artifact.type.CopyFrom(outputs_spec.artifacts[name].artifact_type)
    return json_format.MessageToJson(executor_input)


def flag_value(argv: list[str], flag: str) -> tuple[int, str] | None:
    """(index of the value, value) of `flag` given as `flag value` or `flag=value`; None if absent."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return index + 1, argv[index + 1]
        if arg.startswith(flag + "="):
            return index, arg.split("=", 1)[1]
    return None


def without_flag(argv: list[str], flag: str) -> list[str]:
    found = flag_value(argv, flag)
    if found is None:
        return list(argv)
    index, _ = found
    start = index - 1 if argv[index - 1] == flag else index
    return argv[:start] + argv[index + 1:]


def conformed_argv(argv: list[str]) -> list[str]:
    """`argv` for TFX's entrypoint: its ExecutorInput conformed (`conformed_executor_input`) and our outputs
    spec flag taken out; unchanged without an inputs spec."""
    invocation, inputs_spec = flag_value(argv, INVOCATION_FLAG), flag_value(argv, INPUTS_SPEC_FLAG)
    outputs_spec = flag_value(argv, OUTPUTS_SPEC_FLAG)
    argv = without_flag(argv, OUTPUTS_SPEC_FLAG)
    if invocation is None or inputs_spec is None:
        return argv
    index, value = flag_value(argv, INVOCATION_FLAG)
    conformed = conformed_executor_input(value, inputs_spec[1], outputs_spec[1] if outputs_spec else None)
    argv[index] = conformed if argv[index] == value else f"{INVOCATION_FLAG}={conformed}"
    return argv


def remove_folder_objects(uri: str) -> int:
    """Deletes the zero-byte `dir/` objects under an object-store `uri` (point 4); returns how many there were.
    The folders stay visible through the files in them. A local path has none."""
    import tensorflow as tf

    if "://" not in uri or uri.startswith("file://"):
        return 0
    removed = 0
    folders = [uri.rstrip("/")] + [f"{top.rstrip('/')}/{sub.rstrip('/')}"
                                   for top, subs, _ in tf.io.gfile.walk(uri) for sub in subs]
    for folder in folders:
        try:
            tf.io.gfile.remove(folder + "/")
            removed += 1
        except tf.errors.NotFoundError:
            pass
    return removed


def finish(output_file: str, output_uris: list[str]) -> None:
    """After the executor: no folder objects under the outputs, no null metadata in the output file."""
    import json

    from tfx.dsl.io import fileio

    for uri in output_uris:
        remove_folder_objects(uri)
    if not fileio.exists(output_file):
        return
    with fileio.open(output_file) as f:
        executor_output = json.load(f)
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            artifact["metadata"] = {k: v for k, v in artifact.get("metadata", {}).items() if v is not None}
    with fileio.open(output_file, "w") as f:
        json.dump(executor_output, f)


def use_in_spec(job: dict) -> None:
    """Points every task of the compiled job (its JSON as a dict) that runs TFX's entrypoint at this one, and
    gives it its component's outputs spec."""
    import json

    spec = job["pipelineSpec"]
    executor_outputs = {component["executorLabel"]: component.get("outputDefinitions", {})
                        for component in spec["components"].values() if "executorLabel" in component}
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        command = container.get("command", [])
        if command[-1:] == [TFX_ENTRYPOINT]:
            command[-1] = ENTRYPOINT
            container["args"] += [OUTPUTS_SPEC_FLAG, json.dumps(executor_outputs.get(label, {}), sort_keys=True)]


def main(argv: list[str]) -> None:
    from absl import app
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    argv = conformed_argv(argv)
    invocation = flag_value(argv, INVOCATION_FLAG)
    executor_input = json_format.Parse(invocation[1], pipeline_spec_pb2.ExecutorInput(),
                                       ignore_unknown_fields=True) if invocation else pipeline_spec_pb2.ExecutorInput()

    def run(parsed_argv) -> None:
        kubeflow_v2_run_executor.main(parsed_argv)
        finish(executor_input.outputs.output_file,
               [a.uri for artifacts in executor_input.outputs.artifacts.values() for a in artifacts.artifacts])

    sys.argv = [sys.argv[0], *argv]
    app.run(run, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001


if __name__ == "__main__":
    main(sys.argv[1:])
