"""CPU, memory and GPU for each task of the compiled Kubeflow pipeline, through TFX's platform config.

KubeflowV2DagRunner copies a component's `platform_config` (a PipelineSpec ResourceSpec) into its container
spec. The open-source backend's driver turns it into the pod's resources (kubeflow/pipelines
backend/src/v2/driver/driver.go initPodSpecPatch: 2.4.0 L442-531, 2.17.0 L350-439): the string fields
`resource_cpu_request` / `resource_memory_request` become requests, and an accelerator's `resource_type`, used
verbatim as the Kubernetes resource name (`nvidia.com/gpu`), with `resource_count` becomes a limit. Vertex AI
picks a machine from `cpu_limit` / `memory_limit` and an accelerator `type` such as NVIDIA_TESLA_T4, so for
`--target vertex` those fields are set instead.
"""

from __future__ import annotations

import dataclasses
import re

from kfp.pipeline_spec import pipeline_spec_pb2

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
DEFAULT_TASK = "default"
TRAINER = "Trainer"
_CPU = re.compile(r"^\d+(\.\d+)?$|^\d+m$")
_MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEMORY_GB = {"Ki": 1024 / 1e9, "Mi": 1024**2 / 1e9, "Gi": 1024**3 / 1e9, "Ti": 1024**4 / 1e9,
              "K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3, "": 1e-9}


class ResourceError(ValueError):
    """A resource flag that a cluster would refuse; the message names the flag and the form expected."""


@dataclasses.dataclass(frozen=True)
class TaskResources:
    """One task's requests, in Kubernetes quantities ("2", "500m"; "8Gi")."""

    cpu: str
    memory: str

    def __post_init__(self):
        if not _CPU.match(self.cpu):
            raise ResourceError(f"CPU {self.cpu!r}: expected cores (2, 0.5) or millicores (500m)")
        if not _MEMORY.match(self.memory):
            raise ResourceError(f"memory {self.memory!r}: expected a Kubernetes quantity such as 8Gi or 512Mi")

    @property
    def cpu_cores(self) -> float:
        return int(self.cpu[:-1]) / 1000 if self.cpu.endswith("m") else float(self.cpu)

    @property
    def memory_gb(self) -> float:
        number, unit = re.match(r"^([\d.]+)(\D*)$", self.memory).groups()
        return float(number) * _MEMORY_GB[unit]


@dataclasses.dataclass(frozen=True)
class GpuRequest:
    """Accelerators for the Trainer: `count` of `type` (Kubernetes resource name, or Vertex AI's type)."""

    count: int
    type: str


def parse_task_resources(items: list[str]) -> dict[str, TaskResources]:
    """`--task-resources ID=CPU,MEMORY` items (ID: a component id, or `default`) by id."""
    resources = {}
    for item in items:
        task, sep, value = item.partition("=")
        cpu, comma, memory = value.partition(",")
        if not (sep and comma and task):
            raise ResourceError(f"--task-resources {item!r}: expected ID=CPU,MEMORY, e.g. Trainer=8,32Gi")
        try:
            resources[task] = TaskResources(cpu.strip(), memory.strip())
        except ResourceError as error:
            raise ResourceError(f"--task-resources {item!r}: {error}") from error
    return resources


def resource_spec(resources: TaskResources, gpu: GpuRequest | None, target: str) -> ResourceSpec:
    """The ResourceSpec a task gets on `target` (module docstring)."""
    spec = ResourceSpec()
    if target == "vertex":
        spec.cpu_limit, spec.memory_limit = resources.cpu_cores, resources.memory_gb
        if gpu:
            spec.accelerator.type, spec.accelerator.count = gpu.type, gpu.count
    else:
        spec.resource_cpu_request, spec.resource_memory_request = resources.cpu, resources.memory
        if gpu:
            spec.accelerator.resource_type, spec.accelerator.resource_count = gpu.type, str(gpu.count)
    return spec


def gpu_request(count: int, gpu_type: str, target: str) -> GpuRequest | None:
    """`count` GPUs of `gpu_type` for the Trainer on `target`, None for 0. The backend uses the type as a
    Kubernetes resource name, which has a vendor domain; Vertex AI does not."""
    if count < 0:
        raise ResourceError(f"--trainer-gpus {count}: expected 0 or more")
    if count and target != "vertex" and "/" not in gpu_type:
        raise ResourceError(f"--gpu-type {gpu_type}: on Kubeflow Pipelines this is the Kubernetes resource name "
                            f"the driver puts in the pod's limits, e.g. nvidia.com/gpu")
    if count and target == "vertex" and "/" in gpu_type:
        raise ResourceError(f"--gpu-type {gpu_type}: Vertex AI names accelerators like NVIDIA_TESLA_T4")
    return GpuRequest(count, gpu_type) if count else None


def apply(pipeline, defaults: dict[str, tuple[str, str]], overrides: dict[str, TaskResources],
          gpu: GpuRequest | None, target: str) -> None:
    """Gives every component of `pipeline` its requests (`overrides`, then `defaults`: its own entry, else
    `default`); the Trainer also the GPUs. An override for a task the pipeline lacks is refused; a default is
    not (TestSetEvaluator exists only with a test split)."""
    ids = [component.id for component in pipeline.components]
    unknown = set(overrides) - {DEFAULT_TASK} - set(ids)
    if unknown:
        raise ResourceError(f"--task-resources {', '.join(sorted(unknown))}: no such task; the tasks are "
                            + ", ".join(ids))
    resources = {**{task: TaskResources(*value) for task, value in defaults.items()}, **overrides}
    for component in pipeline.components:
        own = resources.get(component.id, resources[DEFAULT_TASK])
        component.with_platform_config(resource_spec(own, gpu if component.id == TRAINER else None, target))

