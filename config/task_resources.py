"""What a task of the compiled Kubeflow pipeline asks a cluster for, as the Kubeflow flags give it: CPU and memory
in Kubernetes quantities (`TaskResources`; --task-resources ID=CPU,MEMORY, --node-shape CPU,MEMORY) and the
Trainer's GPUs (`GpuRequest`; --trainer-gpus, --gpu-type), each checked as the cluster would check it
(`ResourceError`). runners/kubeflow_resources.py gives the tasks these requests in the compiled spec."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

DEFAULT_TASK = "default"  # --task-resources default=CPU,MEMORY: every task without its own requests
GIB = Decimal(2**30)


class ResourceError(ValueError):
    """A resource flag that a cluster would refuse; the message names the flag and the form expected."""


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "26Gi") as a number; ResourceError if it is not one."""
    from kubernetes.utils import parse_quantity  # imported here: the kubernetes package takes a second to import

    try:
        value = parse_quantity(text)
    except ValueError as error:
        raise ResourceError(str(error)) from error
    if value < 0:
        raise ResourceError(f"{text!r} is below 0")
    return value


@dataclasses.dataclass(frozen=True)
class TaskResources:
    """One task's requests, in Kubernetes quantities ("2", "500m"; "8Gi")."""

    cpu: str
    memory: str

    def __post_init__(self):
        for name, text, expected in (
            ("CPU", self.cpu, "cores (2, 0.5) or millicores (500m)"),
            ("memory", self.memory, "a Kubernetes quantity such as 8Gi or 512Mi"),
        ):
            try:
                quantity(text)
            except ResourceError:
                raise ResourceError(f"{name} {text!r}: expected {expected}") from None

    @property
    def cpu_cores(self) -> float:
        return float(quantity(self.cpu))

    @property
    def memory_gb(self) -> float:
        return float(quantity(self.memory) / Decimal(10**9))

    def describe(self) -> str:
        return f"{float(quantity(self.cpu)):g} CPU and {float(quantity(self.memory) / GIB):.1f}Gi"


@dataclasses.dataclass(frozen=True)
class GpuRequest:
    """Accelerators for the Trainer: `count` of `type` (Kubernetes resource name, or Vertex AI's type)."""

    count: int
    type: str


def gpu_request(count: int, gpu_type: str, target: str) -> GpuRequest | None:
    """`count` GPUs of `gpu_type` for the Trainer on `target`, None for 0. The backend uses the type as a
    Kubernetes resource name, which has a vendor domain; Vertex AI does not."""
    if count < 0:
        raise ResourceError(f"--trainer-gpus {count}: expected 0 or more")
    if count and target != "vertex" and "/" not in gpu_type:
        raise ResourceError(
            f"--gpu-type {gpu_type}: on Kubeflow Pipelines this is the Kubernetes resource name "
            f"the driver puts in the pod's limits, e.g. nvidia.com/gpu"
        )
    if count and target == "vertex" and "/" in gpu_type:
        raise ResourceError(f"--gpu-type {gpu_type}: Vertex AI names accelerators like NVIDIA_TESLA_T4")
    return GpuRequest(count, gpu_type) if count else None


def parse_node_shape(text: str) -> TaskResources:
    """`--node-shape CPU,MEMORY` (the node's capacity: 8,32Gi)."""
    cpu, comma, memory = text.partition(",")
    try:
        if not comma:
            raise ResourceError("expected CPU,MEMORY")
        return TaskResources(cpu.strip(), memory.strip())
    except ResourceError as error:
        raise ResourceError(f"--node-shape {text!r}: {error}, e.g. 8,32Gi") from error


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
