"""CPU, memory and GPU for each task of the compiled Kubeflow pipeline, through TFX's platform config.

KubeflowV2DagRunner copies a component's `platform_config` (a PipelineSpec ResourceSpec) into its container
spec. The open-source backend's driver turns it into the pod's resources (kubeflow/pipelines
backend/src/v2/driver/driver.go initPodSpecPatch: 2.4.0 L442-531, 2.17.0 L350-439): the string fields
`resource_cpu_request` / `resource_memory_request` become requests, and an accelerator's `resource_type`, used
verbatim as the Kubernetes resource name (`nvidia.com/gpu`), with `resource_count` becomes a limit. Vertex AI
picks a machine from `cpu_limit` / `memory_limit` and an accelerator `type` such as NVIDIA_TESLA_T4, so for
`--target vertex` those fields are set instead.

A pod is scheduled only on a node whose allocatable (capacity less the kubelet's reservation) less what is already
requested there holds its requests; otherwise it stays Pending without an error. `misfits` names the tasks whose
requests a node shape cannot hold, with GKE's reservation formula and the other pods' requests
(config/kubeflow.py's SYSTEM_PODS, KUBEFLOW_PODS) taken off. The requests themselves, and their checks:
config/task_resources.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from config.ids import TRAINER
from config.task_resources import DEFAULT_TASK, GIB, GpuRequest, ResourceError, TaskResources, quantity


def _tiered(total: Decimal, tiers: list[tuple[Decimal, Decimal]], rest: Decimal) -> Decimal:
    """Sum of `fraction` of each tier's `size` of `total` (in order), and `rest` of what lies beyond them."""
    reserved, left = Decimal(0), total
    for size, fraction in tiers:
        reserved += min(left, size) * fraction
        left = max(left - size, Decimal(0))
    return reserved + left * rest


def node_room(node: TaskResources, *others: TaskResources) -> TaskResources:
    """What one pod can request on a node of shape `node` that also holds pods requesting `others`: its
    allocatable by GKE's documented reservation (CPU: 6% of the first core, 1% of the second, 0.5% of the next
    two, 0.25% above; memory: 25% of the first 4GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2%
    above, and a 100Mi eviction threshold), less the others' requests."""
    cpu, memory = quantity(node.cpu), quantity(node.memory)
    one = Decimal(1)
    cpu_left = (
        cpu
        - _tiered(cpu, [(one, Decimal("0.06")), (one, Decimal("0.01")), (2 * one, Decimal("0.005"))], Decimal("0.0025"))
        - sum((quantity(other.cpu) for other in others), Decimal(0))
    )
    memory_left = (
        memory
        - _tiered(
            memory,
            [
                (4 * GIB, Decimal("0.25")),
                (4 * GIB, Decimal("0.2")),
                (8 * GIB, Decimal("0.1")),
                (112 * GIB, Decimal("0.06")),
            ],
            Decimal("0.02"),
        )
        - 100 * Decimal(2**20)
        - sum((quantity(other.memory) for other in others), Decimal(0))
    )
    return TaskResources(f"{int(cpu_left * 1000)}m", f"{int(memory_left / 2**20)}Mi")


def misfits(resources: dict[str, TaskResources], room: TaskResources) -> list[str]:
    """The tasks (of `resources`, by id) whose requests exceed `room`, each described."""
    return [
        f"{task} requests {own.describe()}"
        for task, own in resources.items()
        if quantity(own.cpu) > quantity(room.cpu) or quantity(own.memory) > quantity(room.memory)
    ]


def resource_spec(resources: TaskResources, gpu: GpuRequest | None, target: str):
    """The PipelineSpec ResourceSpec a task gets on `target` (module docstring)."""
    from kfp.pipeline_spec import pipeline_spec_pb2  # imported here: kfp takes seconds, flags need none of it

    spec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    if target == "vertex":
        spec.cpu_limit, spec.memory_limit = resources.cpu_cores, resources.memory_gb
        if gpu:
            spec.accelerator.type, spec.accelerator.count = gpu.type, gpu.count
    else:
        spec.resource_cpu_request, spec.resource_memory_request = resources.cpu, resources.memory
        if gpu:
            spec.accelerator.resource_type, spec.accelerator.resource_count = gpu.type, str(gpu.count)
    return spec


def requests_by_task(
    ids: list[str], defaults: Mapping[str, tuple[str, str]], overrides: Mapping[str, TaskResources]
) -> dict[str, TaskResources]:
    """Each task's requests (`overrides`, then `defaults`: its own entry, else `default`). An override for a task
    not in `ids` is refused; a default is not (TestSetEvaluator exists only with a test split)."""
    unknown = set(overrides) - {DEFAULT_TASK} - set(ids)
    if unknown:
        raise ResourceError(
            f"--task-resources {', '.join(sorted(unknown))}: no such task; the tasks are " + ", ".join(ids)
        )
    resources = {**{task: TaskResources(*value) for task, value in defaults.items()}, **overrides}
    return {task: resources.get(task, resources[DEFAULT_TASK]) for task in ids}


def apply(
    pipeline,
    defaults: Mapping[str, tuple[str, str]],
    overrides: Mapping[str, TaskResources],
    gpu: GpuRequest | None,
    target: str,
) -> dict[str, TaskResources]:
    """Gives every component of `pipeline` its requests (`requests_by_task`), the Trainer also the GPUs; returns
    the requests by component id."""
    resources = requests_by_task([component.id for component in pipeline.components], defaults, overrides)
    for component in pipeline.components:
        component.with_platform_config(
            resource_spec(resources[component.id], gpu if component.id == TRAINER else None, target)
        )
    return resources
