"""Runs a compiled KFP v2 pipeline job the way the open-source Kubeflow Pipelines backend does: its Go driver
builds each task's ExecutorInput and its launcher moves artifacts and records them, per backend version.

Test-only stand-in for a cluster: the project's virtual environment stands in for the component image (the
Dockerfile gives the image the same `python`, working directory and PYTHONPATH), and the object store is
either a local folder or a GCS-compatible server (tests/support/fake_gcs.py). Every rule below is a reading
of kubeflow/pipelines at the tag named, under backend/src/v2/ (file and lines cited where the rule is coded);
none of it is taken from kfp.local.

Not implemented, and refused with an error rather than skipped: importer and resolver executors, lifecycle
hooks, trigger-policy conditions and placeholders other than `{{$}}`.
"""

from __future__ import annotations

import dataclasses
import graphlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
EXECUTOR_LOGS = "executor-logs"
# driver/driver.go provisionOutputs: the output file the launcher reads, before 2.15 (2.4.0 L1580, 2.5.0 L2020).
LEGACY_OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"


class LaunchError(RuntimeError):
    """A task failed, the launcher would have failed, or the spec uses something not implemented here."""


@dataclasses.dataclass(frozen=True)
class BackendShape:
    """What differs between backend versions in what a task is handed."""

    version: str
    # provisionOutputs adds `executor-logs` (system.Artifact) when logs are published, the stock default:
    # absent in 2.4.0; 2.5.0 driver.go L2025-2039; 2.17.0 driver.go L747-760.
    publishes_logs: bool
    # 2.17.0 launcher_v2.go L531-598 (qualifyExecutorLogsForRetry): the logs URI gets the retry index.
    logs_retry_suffix: bool
    # Output artifact `name` = its key since 2.15 (2.17.0 driver.go L775); empty before (2.4.0 L1588-1590).
    names_outputs: bool
    # outputFile under the task root's local path since 2.15 (2.17.0 driver.go L792-799); LEGACY_OUTPUT_FILE before.
    output_file_in_task_root: bool


KFP_2_4 = BackendShape(
    "2.4", publishes_logs=False, logs_retry_suffix=False, names_outputs=False, output_file_in_task_root=False
)
KFP_2_5 = BackendShape(
    "2.5", publishes_logs=True, logs_retry_suffix=False, names_outputs=False, output_file_in_task_root=False
)
KFP_2_17 = BackendShape(
    "2.17", publishes_logs=True, logs_retry_suffix=True, names_outputs=True, output_file_in_task_root=True
)
SHAPES = (KFP_2_4, KFP_2_5, KFP_2_17)


def recorded_value(value: Any) -> Any:
    """An executor-output metadata value as MLMD keeps it and the next driver hands it back
    (metadata/converter.go StructValueToMLMDValue, 2.4.0 L133-166; toRuntimeArtifact L189-213): bools become
    1/0, lists and objects are wrapped, null is refused."""
    if value is None:
        raise LaunchError("unable to produce MLMD artifact: unknown/unsupported value type (a null metadata value)")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    return value


@dataclasses.dataclass
class ArtifactRecord:
    """One artifact as ML Metadata holds it."""

    id: int
    schema_title: str
    uri: str
    metadata: dict[str, Any]

    def as_input(self) -> pipeline_spec_pb2.RuntimeArtifact:
        """As the driver passes an upstream output: name = the MLMD id, `instanceSchema: ""`
        (metadata/client.go GetOutputArtifactsByExecutionId `Schema: ""`, 2.4.0 L941, 2.17.0 L1144;
        ToRuntimeArtifact 2.4.0 L174-189), metadata as stored."""
        artifact = pipeline_spec_pb2.RuntimeArtifact(name=str(self.id), uri=self.uri)
        artifact.type.instance_schema = ""
        artifact.metadata.update(self.metadata)
        return artifact


@dataclasses.dataclass
class MetadataStore:
    """ML Metadata's part: every artifact recorded, in order."""

    artifacts: list[ArtifactRecord] = dataclasses.field(default_factory=list)

    def record(
        self, key: str, schema_title: str, uri: str, metadata: dict[str, Any], session_info: str
    ) -> ArtifactRecord:
        """metadata/client.go RecordArtifact (2.4.0 L1011-1072): display_name and store_session_info added."""
        stored = {name: recorded_value(value) for name, value in metadata.items()}
        stored.setdefault("display_name", key)
        stored["store_session_info"] = session_info
        record = ArtifactRecord(len(self.artifacts) + 1, schema_title, uri, stored)
        self.artifacts.append(record)
        return record


class ObjectStore:
    """The pipeline root's storage as the launcher sees it: `local_path` maps a URI to a pod's local path
    (launcher_v2.go localPathForURI, 2.4.0 L724-735: gs://b/k -> /gcs/b/k, here under the pod's folder)."""

    def __init__(self, pod_root: Path):
        self.pod_root = pod_root

    @staticmethod
    def local_path(uri: str, pod: Path) -> Path:
        return pod / "gcs" / uri.removeprefix("gs://") if uri.startswith("gs://") else Path(uri)

    def download(self, uri: str, local_dir: Path) -> None:
        """objectstore/object_store.go DownloadBlob; a local root has nothing to download."""

    def session_info(self) -> str:
        return '{"Provider":"minio","Params":{}}'


class GcsObjectStore(ObjectStore):
    """A gs:// root on tests/support/fake_gcs.FakeGcs."""

    def __init__(self, pod_root: Path, store):
        super().__init__(pod_root)
        self.store = store

    def session_info(self) -> str:  # config/gcs.go L69-74, no providers configured
        return '{"Provider":"gs","Params":{"fromEnv":"true"}}'

    def download(self, uri: str, local_dir: Path) -> None:
        """DownloadBlob (object_store.go 2.4.0 L124-151, 2.17.0 L176-205): every object under the prefix, in
        key order, no delimiter; each one's path relative to the prefix is created as a file
        (downloadFile, 2.4.0 L181-214: MkdirAll of its folder, then Create). A zero-byte `dir/` object thus
        becomes a file, and the next object under it fails with "not a directory" (kubeflow/pipelines#13476)."""
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        for item in self.store.list_objects(bucket, prefix):
            if not (item["name"] == prefix or item["name"].startswith(prefix.rstrip("/") + "/")):
                continue  # 2.17.0 isBlobKeyUnderPrefix (L171-174); earlier versions also took siblings
            relative = os.path.relpath(item["name"], prefix)
            target = local_dir / relative if relative != "." else local_dir
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.store.read_object(bucket, item["name"]) if item["size"] else b"")
            except (NotADirectoryError, FileExistsError, IsADirectoryError) as error:
                raise LaunchError(
                    f"failed to download input artifact from remote storage URI {uri}: "
                    f"downloadFile(): unable to complete copying {item['name']!r} to local storage "
                    f"{target}: {error}"
                ) from error


@dataclasses.dataclass
class TaskRun:
    """What one task did: its outputs as recorded (key -> artifacts), its log and its ExecutorInput."""

    outputs: dict[str, list[ArtifactRecord]]
    log_path: Path | None = None
    executor_input: dict | None = None


def load_job(job_path: str | os.PathLike) -> tuple[pipeline_spec_pb2.PipelineSpec, dict[str, Any]]:
    """The compiled PipelineSpec and the job's runtime parameter values."""
    job = json.loads(Path(job_path).read_text())
    spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    return spec, dict(job.get("runtimeConfig", {}).get("parameterValues", {}))


def task_order(spec: pipeline_spec_pb2.PipelineSpec) -> list[str]:
    """Root DAG tasks, each after every task it depends on or reads an output of."""
    graph = {}
    for name, task in spec.root.dag.tasks.items():
        upstream = set(task.dependent_tasks)
        upstream |= {
            a.task_output_artifact.producer_task
            for a in task.inputs.artifacts.values()
            if a.HasField("task_output_artifact")
        }
        graph[name] = sorted(upstream)
    return list(graphlib.TopologicalSorter(graph).static_order())


class BackendLauncher:
    """Runs every task of a compiled job, in dependency order, as `shape`'s driver and launcher would."""

    def __init__(
        self,
        shape: BackendShape,
        pipeline_root: str,
        *,
        store: ObjectStore,
        workdir: Path,
        env: dict[str, str],
        command: Callable[[list[str]], list[str]] = list,
        metadata: MetadataStore | None = None,
        task_timeout_s: int = 900,
    ):
        self.shape = shape
        self.pipeline_root = pipeline_root.rstrip("/")
        self.store = store
        self.workdir = workdir
        self.env = env
        self.command = command
        self.metadata = metadata or MetadataStore()
        self.task_timeout_s = task_timeout_s

    def run(
        self, job_path: str | os.PathLike, parameter_values: dict[str, Any] | None = None, run_id: str | None = None
    ) -> dict[str, TaskRun]:
        """Runs every task; returns each task's run by name. Raises LaunchError naming a failed task."""
        spec, parameters = self.job_parameters(job_path, parameter_values)
        run_root = f"{self.pipeline_root}/{spec.pipeline_info.name}/{run_id or uuid.uuid4().hex[:12]}"
        runs: dict[str, TaskRun] = {}
        for task_name in task_order(spec):
            runs[task_name] = self.run_task(spec, task_name, runs, parameters, run_root)
        return runs

    @staticmethod
    def job_parameters(
        job_path: str | os.PathLike, parameter_values: dict[str, Any] | None = None
    ) -> tuple[pipeline_spec_pb2.PipelineSpec, dict[str, Any]]:
        """The spec and its parameter values: spec defaults (filled in by the Argo compiler, argo.go 2.4.0
        L70-77), then the job's runtime config, then ours."""
        spec, job_parameters = load_job(job_path)
        parameters = {
            name: json_format.MessageToDict(p.default_value)
            for name, p in spec.root.input_definitions.parameters.items()
            if p.HasField("default_value")
        }
        parameters.update(job_parameters)
        parameters.update(parameter_values or {})
        return spec, parameters

    def run_task(
        self,
        spec: pipeline_spec_pb2.PipelineSpec,
        task_name: str,
        runs: dict[str, TaskRun],
        parameters: dict[str, Any],
        run_root: str,
    ) -> TaskRun:
        task = spec.root.dag.tasks[task_name]
        if task.trigger_policy.condition:
            raise LaunchError(f"task {task_name}: trigger-policy conditions are not implemented here")
        component = spec.components[task.component_ref.name]
        executor = json_format.MessageToDict(
            spec.deployment_spec.fields["executors"].struct_value.fields[component.executor_label]
        )
        if "container" not in executor:
            raise LaunchError(f"task {task_name}: executor kind {sorted(executor)} is not implemented here")
        if "lifecycle" in executor["container"]:
            raise LaunchError(f"task {task_name}: container lifecycle hooks are not implemented here")
        executor_input = self.driver_executor_input(task_name, task, component, runs, parameters, run_root)
        return self.launch(task_name, executor["container"], executor_input)

    def driver_executor_input(
        self, task_name: str, task, component, runs: dict[str, TaskRun], parameters: dict[str, Any], run_root: str
    ) -> pipeline_spec_pb2.ExecutorInput:
        """driver.go Container(): resolveInputs, then provisionOutputs (2.4.0 L231-362, 2.17.0 container.go
        L47-343)."""
        executor_input = pipeline_spec_pb2.ExecutorInput()
        for key, value in task.inputs.parameters.items():
            if value.HasField("runtime_value"):
                executor_input.inputs.parameter_values[key].CopyFrom(value.runtime_value.constant)
            elif value.component_input_parameter:
                if value.component_input_parameter not in parameters:
                    raise LaunchError(
                        f"task {task_name}: pipeline parameter {value.component_input_parameter!r} has no value"
                    )
                json_format.ParseDict(
                    parameters[value.component_input_parameter], executor_input.inputs.parameter_values[key]
                )
            else:
                raise LaunchError(f"task {task_name}, parameter {key}: not implemented here")
        for key, value in task.inputs.artifacts.items():
            if not value.HasField("task_output_artifact"):
                raise LaunchError(f"task {task_name}, input {key}: only task output artifacts are implemented")
            producer = runs[value.task_output_artifact.producer_task]
            for record in producer.outputs.get(value.task_output_artifact.output_artifact_key, []):
                executor_input.inputs.artifacts[key].artifacts.append(record.as_input())

        task_root = f"{run_root}/{task_name}/{uuid.uuid4()}"  # driver.go provisionOutputs 2.4.0 L1588
        outputs = {key: definition.artifact_type for key, definition in component.output_definitions.artifacts.items()}
        if self.shape.publishes_logs:
            outputs[EXECUTOR_LOGS] = pipeline_spec_pb2.ArtifactTypeSchema(schema_title="system.Artifact")
        for key, artifact_type in outputs.items():
            suffix = "-0" if key == EXECUTOR_LOGS and self.shape.logs_retry_suffix else ""
            artifact = executor_input.outputs.artifacts[key].artifacts.add(uri=f"{task_root}/{key}{suffix}")
            artifact.type.CopyFrom(artifact_type)  # schemaTitle from the output definition (2.4.0 L1589)
            if self.shape.names_outputs:
                artifact.name = key
        pod = self.store.pod_root / task_name  # one pod per task: its own /gcs and /tmp
        if self.shape.output_file_in_task_root:
            executor_input.outputs.output_file = str(self.store.local_path(task_root, pod) / "output_metadata.json")
        else:
            executor_input.outputs.output_file = str(pod / LEGACY_OUTPUT_FILE.lstrip("/"))
        return executor_input

    def launch(self, task_name: str, container: dict, executor_input: pipeline_spec_pb2.ExecutorInput) -> TaskRun:
        """launcher_v2.go Execute (2.4.0 L131-209, 2.17.0 L178-320): download the inputs, prepare the output
        folders, substitute `{{$}}`, run, read the output file, record every declared output."""
        pod = self.store.pod_root / task_name
        self.store.pod_root.mkdir(parents=True, exist_ok=True)
        for artifact_list in executor_input.inputs.artifacts.values():
            for artifact in artifact_list.artifacts:
                if artifact.uri.startswith("gs://"):
                    self.store.download(artifact.uri, self.store.local_path(artifact.uri, pod))
        for artifact_list in executor_input.outputs.artifacts.values():  # prepareOutputFolders, 2.4.0 L737-762
            self.store.local_path(artifact_list.artifacts[0].uri, pod).parent.mkdir(parents=True, exist_ok=True)
        Path(executor_input.outputs.output_file).parent.mkdir(parents=True, exist_ok=True)

        invocation = json_format.MessageToJson(executor_input)
        args = [invocation if arg == EXECUTOR_INPUT_PLACEHOLDER else arg for arg in container.get("args", [])]
        unresolved = [arg for arg in args if "{{$" in arg and arg != invocation]
        if unresolved:
            raise LaunchError(f"task {task_name}: placeholders not implemented here: {unresolved}")
        log_path = self.store.pod_root / f"{task_name}.log"
        with open(log_path, "w") as log:  # from 2.5 stdout and stderr both go to the log (getLogWriter)
            result = subprocess.run(
                self.command([*container["command"], *args]),
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.task_timeout_s,
            )
        if result.returncode != 0:
            raise LaunchError(
                f"task {task_name} exited with {result.returncode}; its log ({log_path}) ends:\n"
                + log_path.read_text()[-4000:]
            )
        outputs = self.record_outputs(executor_input)
        shutil.rmtree(pod, ignore_errors=True)  # the pod's volumes go with it
        return TaskRun(outputs=outputs, log_path=log_path, executor_input=json_format.MessageToDict(executor_input))

    def record_outputs(self, executor_input: pipeline_spec_pb2.ExecutorInput) -> dict[str, list[ArtifactRecord]]:
        """getExecutorOutputFile (strict parse; missing file = empty output, 2.4.0 L693-722), then
        uploadOutputArtifacts (2.4.0 L429-479): for each output the ExecutorInput declared, merge what the
        executor reported (its uri and metadata win; name and type never taken, mergeRuntimeArtifacts
        L677-691) and record it; outputs only the executor names are ignored."""
        output_file = Path(executor_input.outputs.output_file)
        executor_output = pipeline_spec_pb2.ExecutorOutput()
        if output_file.exists():
            json_format.Parse(output_file.read_text(), executor_output)  # strict: unknown fields fail
        outputs = {}
        for key, artifact_list in executor_input.outputs.artifacts.items():
            provisioned = artifact_list.artifacts[0]
            uri, metadata = provisioned.uri, json_format.MessageToDict(provisioned.metadata)
            if key in executor_output.artifacts and executor_output.artifacts[key].artifacts:
                reported = executor_output.artifacts[key].artifacts[0]
                uri = reported.uri or uri
                metadata.update(json_format.MessageToDict(reported.metadata))
            title = provisioned.type.schema_title or provisioned.type.instance_schema.split("\n")[0].removeprefix(
                "title: "
            )
            outputs[key] = [self.metadata.record(key, title, uri, metadata, self.store.session_info())]
        return outputs
