"""The command of every task of the compiled Kubeflow pipeline: TFX's Kubeflow V2 executor entrypoint
(`kubeflow_v2_run_executor`, written for Vertex AI), fed what it expects from what an open-source Kubeflow
Pipelines backend passes, and leaving behind what the backend's launcher can read. The backend was read at tags
2.4.0, 2.5.0 and 2.17.0 of kubeflow/pipelines, paths under backend/src/v2/ (the conformance tier,
tests/e2e/test_kfp_backend_conformance.py, builds its executor inputs from the same lines):

1. Input types. The driver passes an upstream output as `type: {instanceSchema: ""}` (metadata/client.go
   GetOutputArtifactsByExecutionId, `Schema: "" // TODO`: 2.4.0 L941, 2.5.0 L948, 2.17.0 L1144;
   ToRuntimeArtifact: 2.4.0 L174-189), kfp.local as `system.Artifact`; TFX imports a class from the type, so
   every input is typed from the compiled inputs spec.
2. Undeclared outputs. Since 2.5 the driver adds `executor-logs` (`system.Artifact`) to every task when logs are
   published, the stock default (driver/driver.go provisionOutputs: 2.5.0 L2025-2039, 2.17.0 L747-760;
   PUBLISH_LOGS "true" in manifests/kustomize/base/pipeline/ml-pipeline-apiserver-deployment.yaml). The
   launcher writes that file itself and registers declared outputs the executor never mentions
   (component/launcher_v2.go getLogWriter, uploadOutputArtifacts: 2.5.0 L467-490, L540-592), so TFX is shown
   only the declared outputs, typed from the compiled outputs spec (`use_in_spec` passes it; the driver copies
   it too: provisionOutputs 2.4.0 L1589).
3. Metadata values. The launcher stores a list as `{"list": [...]}` and an object as `{"struct": {...}}`, and
   the driver hands them back so, nested once more each time they are passed on (metadata/converter.go
   StructValueToMLMDValue: 2.4.0 L133-166, 2.17.0 L138-171; toRuntimeArtifact: 2.4.0 L189-213): unwrapped here.
   A null value makes the launcher fail ("unknown/unsupported value type"), so none is written back.
4. Folder objects. TensorFlow's GCS filesystem writes a zero-byte `dir/` object on every makedirs; the launcher,
   downloading every input artifact, makes it an empty file where the folder should be, then fails on the next
   object with "not a directory" (objectstore/object_store.go DownloadBlob: 2.4.0 L124-151, 2.17.0 L176-205;
   kubeflow/pipelines#13476, open). After the executor, every such object under the task's outputs is deleted.

5. Bucket permissions (not the backend's doing; every cluster run meets it). The pods' service account has
   `roles/storage.objectAdmin` on the bucket (docs/kubeflow.md, step 2), which grants nothing on the bucket itself, and
   TensorFlow's GCS `makedirs` walks up the path to the first folder that exists, asking for the bucket
   (`storage.buckets.get`) when none does, as on a fresh pipeline root or serving directory: 403 (TensorFlow's
   FileSystem::RecursivelyCreateDir, then GcsFileSystem::FileExists on the bucket-only path;
   tensorflow/tensorflow#44884). Before the executor, each output artifact's folder and the Pusher's serving
   directory are created directly, one folder object each and no walk (those under the outputs go again after
   it, point 4).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"  # ours: TFX's entrypoint does not know it
COMMAND = ["python", "-m", "runners.kfp_entrypoint"]  # every task's (KubeflowV2DagRunnerConfig default_commands)


def unwrapped(value: Any) -> Any:
    """A metadata value without the backend's `{"list": ...}` / `{"struct": ...}` wrappers, however deep (point 3)."""
    while isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("list", "struct"):
        value = next(iter(value.values()))
    return value


def conformed_executor_input(invocation_json: str, inputs_spec_json: str, outputs_spec_json: str | None) -> str:
    """The ExecutorInput JSON TFX's entrypoint can read: inputs typed by the inputs spec with their metadata
    unwrapped; outputs typed by the outputs spec, those it does not name removed (given no outputs spec: kept
    as passed)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    executor_input = json_format.Parse(invocation_json, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)
    inputs_spec = json_format.Parse(
        inputs_spec_json, pipeline_spec_pb2.ComponentInputsSpec(), ignore_unknown_fields=True
    )
    for name, artifact_list in executor_input.inputs.artifacts.items():
        for artifact in artifact_list.artifacts:
            if name in inputs_spec.artifacts:
                artifact.type.CopyFrom(inputs_spec.artifacts[name].artifact_type)
            metadata = {key: unwrapped(value) for key, value in json_format.MessageToDict(artifact.metadata).items()}
            artifact.metadata.Clear()
            artifact.metadata.update(metadata)
    if outputs_spec_json is not None:
        outputs_spec = json_format.Parse(
            outputs_spec_json, pipeline_spec_pb2.ComponentOutputsSpec(), ignore_unknown_fields=True
        )
        for name in [name for name in executor_input.outputs.artifacts if name not in outputs_spec.artifacts]:
            del executor_input.outputs.artifacts[name]
        for name, artifact_list in executor_input.outputs.artifacts.items():
            for artifact in artifact_list.artifacts:
                artifact.type.CopyFrom(outputs_spec.artifacts[name].artifact_type)
    return json_format.MessageToJson(executor_input)


def conformed_argv(argv: list[str]) -> list[str]:
    """`argv` (each flag and its value two arguments, as the compiled spec passes them) for TFX's entrypoint: our
    outputs spec flag taken out and, given an inputs spec, the executor input conformed."""
    argv = list(argv)
    outputs_spec = None
    if OUTPUTS_SPEC_FLAG in argv:
        index = argv.index(OUTPUTS_SPEC_FLAG)
        outputs_spec = argv[index + 1]
        del argv[index : index + 2]
    if INVOCATION_FLAG in argv and INPUTS_SPEC_FLAG in argv:
        index = argv.index(INVOCATION_FLAG) + 1
        argv[index] = conformed_executor_input(argv[index], argv[argv.index(INPUTS_SPEC_FLAG) + 1], outputs_spec)
    return argv


def remove_folder_objects(uri: str) -> int:
    """Deletes the zero-byte `dir/` objects under an object-store `uri` (point 4); returns how many there were.
    The folders stay visible through the files in them. A local path has none."""
    import tensorflow as tf

    if "://" not in uri or uri.startswith("file://"):
        return 0
    removed = 0
    folders = [uri.rstrip("/")] + [
        f"{top.rstrip('/')}/{sub.rstrip('/')}" for top, subs, _ in tf.io.gfile.walk(uri) for sub in subs
    ]
    for folder in folders:
        try:
            tf.io.gfile.remove(folder + "/")
            removed += 1
        except tf.errors.NotFoundError:
            pass
    return removed


def make_folder(uri: str) -> bool:
    """Creates the folder `uri` on an object store with one folder object, without TensorFlow's walk up to the bucket
    (module docstring); returns whether it was created (False: it exists, or `uri` is a local path)."""
    import tensorflow as tf

    if "://" not in uri or uri.startswith("file://"):
        return False
    try:
        tf.io.gfile.mkdir(uri)  # one CreateDir: `uri/` if nothing is at or under it, with no parent check
    except tf.errors.AlreadyExistsError:
        return False
    return True


def prepare(invocation_json: str) -> None:
    """Before the executor: the folders it writes under exist (point 5)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    executor_input = json_format.Parse(invocation_json, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)
    folders = [
        artifact.uri
        for artifact_list in executor_input.outputs.artifacts.values()
        for artifact in artifact_list.artifacts
    ]
    if "push_destination" in executor_input.inputs.parameter_values:  # the Pusher's, a PushDestination in JSON
        push_destination = json.loads(executor_input.inputs.parameter_values["push_destination"].string_value)
        folders.append(push_destination.get("filesystem", {}).get("base_directory", ""))
    for folder in filter(None, folders):
        make_folder(folder)


def finish(invocation_json: str) -> None:
    """After the executor: no folder objects under its outputs (point 4), no null metadata in the output file it
    wrote (point 3)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.dsl.io import fileio

    outputs = json_format.Parse(invocation_json, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True).outputs
    for artifact_list in outputs.artifacts.values():
        for artifact in artifact_list.artifacts:
            remove_folder_objects(artifact.uri)
    with fileio.open(outputs.output_file) as f:
        executor_output = json.load(f)
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            artifact["metadata"] = {k: v for k, v in artifact.get("metadata", {}).items() if v is not None}
    with fileio.open(outputs.output_file, "w") as f:
        json.dump(executor_output, f)


def use_in_spec(job: dict) -> None:
    """Gives every task of the compiled job (its JSON as a dict) that runs this entrypoint its component's
    outputs spec (point 2)."""
    spec = job["pipelineSpec"]
    for component in spec["components"].values():
        container = spec["deploymentSpec"]["executors"].get(component.get("executorLabel"), {}).get("container", {})
        if container.get("command") == COMMAND:
            outputs_spec = json.dumps(component.get("outputDefinitions", {}), sort_keys=True)
            container["args"] += [OUTPUTS_SPEC_FLAG, outputs_spec]


def main(argv: list[str]) -> None:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    def run(parsed_argv) -> None:
        prepare(parsed_argv[0].json_serialized_invocation_args)
        kubeflow_v2_run_executor.main(parsed_argv)
        finish(parsed_argv[0].json_serialized_invocation_args)

    sys.argv = [sys.argv[0], *conformed_argv(argv)]
    app.run(run, flags_parser=kubeflow_v2_run_executor._parse_flags)  # noqa: SLF001


if __name__ == "__main__":
    main(sys.argv[1:])
