"""Runs a compiled KFP v2 pipeline job spec on this machine, the way the KFP v2 launcher runs it.

Test-only stand-in for the cluster: the project's virtual environment stands in for the component image
(`python` on PATH is the venv's, the project root is the working directory and on PYTHONPATH, as the
Dockerfile sets them). For each task, in dependency order, it does what the KFP v2 driver and launcher do:

- container tasks: builds the `ExecutorInput` (parameter values from constants or the pipeline's
  parameters; input artifacts with the name, type, URI and metadata their producer reported; output
  artifacts with fresh URIs under the pipeline root; the output file), substitutes it for the `{{$}}`
  placeholder in the container args and runs the container's command as is. The executor's
  `ExecutorOutput` (artifact metadata such as split names or `blessed`) is recorded for downstream tasks.

Not supported, and refused with an error rather than skipped: importer and resolver executors, lifecycle hooks
(FileBasedExampleGen's driver), trigger-policy conditions and placeholders other than `{{$}}`.
"""

from __future__ import annotations

import dataclasses
import graphlib
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"


class LaunchError(RuntimeError):
    """A task failed or the spec uses something this launcher does not implement."""


@dataclasses.dataclass
class ArtifactRecord:
    """One artifact as the metadata store holds it."""

    name: str
    type: pipeline_spec_pb2.ArtifactTypeSchema
    uri: str
    metadata: dict[str, Any]

    def to_runtime_artifact(self) -> pipeline_spec_pb2.RuntimeArtifact:
        artifact = pipeline_spec_pb2.RuntimeArtifact(name=self.name, uri=self.uri)
        artifact.type.CopyFrom(self.type)
        artifact.metadata.update(self.metadata)
        return artifact


@dataclasses.dataclass
class LocalMetadata:
    """The launcher's stand-in for ML Metadata: every artifact produced, in creation order."""

    artifacts: list[ArtifactRecord] = dataclasses.field(default_factory=list)

    def add(self, type_: pipeline_spec_pb2.ArtifactTypeSchema, uri: str, metadata: dict[str, Any]) -> ArtifactRecord:
        record = ArtifactRecord(f"local/artifacts/{len(self.artifacts) + 1}", type_, uri, metadata)
        self.artifacts.append(record)
        return record


@dataclasses.dataclass
class TaskRun:
    """What one task did: its outputs (key -> artifacts) and, for container tasks, its log."""

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
        upstream |= {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
                     if a.HasField("task_output_artifact")}
        upstream |= {p.task_output_parameter.producer_task for p in task.inputs.parameters.values()
                     if p.HasField("task_output_parameter")}
        graph[name] = sorted(upstream)
    sorter = graphlib.TopologicalSorter(graph)
    return list(sorter.static_order())


class LocalKfpLauncher:
    """Runs every task of a compiled job spec, in dependency order, with `env` standing in for the image."""

    def __init__(self, pipeline_root: str | os.PathLike, *, workdir: str | os.PathLike, env: dict[str, str],
                 metadata: LocalMetadata | None = None, task_timeout_s: int = 600):
        self.pipeline_root = Path(pipeline_root)
        self.workdir = Path(workdir)
        self.env = env
        self.metadata = metadata or LocalMetadata()
        self.task_timeout_s = task_timeout_s

    def run(self, job_path: str | os.PathLike, parameter_values: dict[str, Any] | None = None) -> dict[str, TaskRun]:
        """Runs every task; returns each task's run by name. Raises LaunchError naming a failed task."""
        spec, parameters = self.job_parameters(job_path, parameter_values)
        run_root = self.pipeline_root / f"run-{uuid.uuid4().hex[:8]}"
        runs: dict[str, TaskRun] = {}
        for task_name in task_order(spec):
            runs[task_name] = self.run_task(spec, task_name, runs, parameters, run_root)
        return runs

    @staticmethod
    def job_parameters(job_path: str | os.PathLike, parameter_values: dict[str, Any] | None = None
                       ) -> tuple[pipeline_spec_pb2.PipelineSpec, dict[str, Any]]:
        """The spec and its parameter values: spec defaults, then the job's runtime config, then ours."""
        spec, job_parameters = load_job(job_path)
        parameters = {name: json_format.MessageToDict(p.default_value)
                      for name, p in spec.root.input_definitions.parameters.items() if p.HasField("default_value")}
        parameters.update(job_parameters)
        parameters.update(parameter_values or {})
        return spec, parameters

    def run_task(self, spec: pipeline_spec_pb2.PipelineSpec, task_name: str, runs: dict[str, TaskRun],
                 parameters: dict[str, Any], run_root: Path) -> TaskRun:
        """Runs one task, its inputs taken from the upstream `runs`."""
        task = spec.root.dag.tasks[task_name]
        if task.trigger_policy.condition:
            raise LaunchError(f"task {task_name}: trigger-policy conditions are not implemented here")
        component = spec.components[task.component_ref.name]
        executor = spec.deployment_spec.fields["executors"].struct_value.fields[component.executor_label]
        executor_spec = json_format.MessageToDict(executor)
        inputs = {key: self._input_artifacts(task_name, key, value, runs) for key, value in task.inputs.artifacts.items()}
        if "container" in executor_spec:
            return self._run_container(task_name, executor_spec["container"], component, task, inputs, parameters,
                                       run_root)
        raise LaunchError(f"task {task_name}: executor kind {sorted(executor_spec)} is not implemented here")

    @staticmethod
    def _input_artifacts(task_name: str, key: str, spec: Any, runs: dict[str, TaskRun]) -> list[ArtifactRecord]:
        if not spec.HasField("task_output_artifact"):
            raise LaunchError(f"task {task_name}, input {key}: only task output artifacts are implemented")
        producer = runs[spec.task_output_artifact.producer_task]
        return producer.outputs.get(spec.task_output_artifact.output_artifact_key, [])

    def _run_container(self, task_name: str, container: dict, component: Any, task: Any,
                       inputs: dict[str, list[ArtifactRecord]], parameters: dict[str, Any], run_root: Path) -> TaskRun:
        if "lifecycle" in container:
            raise LaunchError(f"task {task_name}: container lifecycle hooks are not implemented here")
        task_root = run_root / f"{task_name}_{uuid.uuid4().hex[:8]}"
        task_root.mkdir(parents=True)
        executor_input = pipeline_spec_pb2.ExecutorInput()
        for key, value in task.inputs.parameters.items():
            if value.HasField("runtime_value"):
                executor_input.inputs.parameter_values[key].CopyFrom(value.runtime_value.constant)
            elif value.component_input_parameter:
                if value.component_input_parameter not in parameters:
                    raise LaunchError(f"task {task_name}: pipeline parameter {value.component_input_parameter!r} "
                                      "has no value")
                json_format.ParseDict(parameters[value.component_input_parameter],
                                      executor_input.inputs.parameter_values[key])
            else:
                raise LaunchError(f"task {task_name}, parameter {key}: only constants and pipeline parameters "
                                  "are implemented here")
        for key, artifacts in inputs.items():
            artifact_list = executor_input.inputs.artifacts[key]
            for artifact in artifacts:
                artifact_list.artifacts.append(artifact.to_runtime_artifact())
        for key, definition in component.output_definitions.artifacts.items():
            uri = task_root / key
            uri.mkdir(parents=True)  # an object-store prefix always "exists"; on a filesystem, create it
            output = executor_input.outputs.artifacts[key].artifacts.add(uri=str(uri))
            output.type.CopyFrom(definition.artifact_type)
        executor_input.outputs.output_file = str(task_root / "executor_output.json")

        invocation = json_format.MessageToJson(executor_input)
        args = [invocation if arg == EXECUTOR_INPUT_PLACEHOLDER else arg for arg in container.get("args", [])]
        unresolved = [arg for arg in args if "{{$" in arg and arg != invocation]
        if unresolved:
            raise LaunchError(f"task {task_name}: unimplemented placeholders {unresolved}")
        log_path = task_root / "launcher.log"
        with open(log_path, "w") as log:
            result = subprocess.run([*container["command"], *args], cwd=self.workdir, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=self.task_timeout_s)
        if result.returncode != 0:
            raise LaunchError(f"task {task_name} exited with {result.returncode}; its log ({log_path}) ends:\n"
                              + log_path.read_text()[-4000:])

        executor_output = pipeline_spec_pb2.ExecutorOutput()
        json_format.Parse(Path(executor_input.outputs.output_file).read_text(), executor_output,
                          ignore_unknown_fields=True)
        outputs = {}
        for key, definition in component.output_definitions.artifacts.items():
            reported = executor_output.artifacts[key].artifacts if key in executor_output.artifacts else []
            uri = reported[0].uri if reported else executor_input.outputs.artifacts[key].artifacts[0].uri
            metadata = json_format.MessageToDict(reported[0].metadata) if reported else {}
            outputs[key] = [self.metadata.add(definition.artifact_type, uri, metadata)]
        return TaskRun(outputs=outputs, log_path=log_path,
                       executor_input=json_format.MessageToDict(executor_input))
