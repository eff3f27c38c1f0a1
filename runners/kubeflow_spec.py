"""The Kubeflow Pipelines v2 job spec of a `KubeflowRun`: the pipeline with each task's resources and runtime
parameters, compiled by TFX's KubeflowV2DagRunner with every task running our entrypoint, and the `.kfp.yaml`
package beside it (runners/kubeflow_submit.py submits them)."""

from __future__ import annotations

import dataclasses
import json
import os

from config import ids
from config import kubeflow as kubeflow_config
from config import pipeline as configs
from config.kubeflow import KubeflowConfig
from config.task_resources import TaskResources
from runners import kubeflow_resources


@dataclasses.dataclass(frozen=True)
class KubeflowRun:
    """What one `kubeflow_runner.py` invocation compiles (and submits): the pipeline's config, its recipe's name and
    the Kubeflow settings."""

    config: configs.PipelineConfig
    recipe: str
    kubeflow: KubeflowConfig


def build_pipeline(run: KubeflowRun):
    """The pipeline of `run`, each task's resources set, its runtime parameters exposed; returns it and the
    parameters' values for this run (`runtime_parameters.expose`)."""
    from pipeline.pipeline import create_pipeline
    from runners import runtime_parameters

    pipeline, settings = create_pipeline(run.config), run.kubeflow
    kubeflow_resources.apply(
        pipeline, kubeflow_config.TASK_RESOURCES, settings.task_resources, settings.gpu(), settings.target
    )
    return pipeline, runtime_parameters.expose(pipeline, kubeflow_config.RUNTIME_PARAMETERS, settings.parameter_values)


def node_shape_warning(run: KubeflowRun, pipeline) -> str | None:
    """One line naming the tasks whose requests a node of `run.node_shape` that also holds GKE's and Kubeflow's own
    pods cannot hold (a pod that may stay Pending), for --target kfp; None if all fit."""
    settings = run.kubeflow
    if settings.target != "kfp":
        return None
    room = kubeflow_resources.node_room(
        settings.node_shape,
        TaskResources(*kubeflow_config.SYSTEM_PODS),
        TaskResources(*kubeflow_config.KUBEFLOW_PODS),
    )
    requests = kubeflow_resources.requests_by_task(
        [component.id for component in pipeline.components], kubeflow_config.TASK_RESOURCES, settings.task_resources
    )
    misfits = kubeflow_resources.misfits(requests, room)
    if not misfits:
        return None
    shape = f"{settings.node_shape.cpu},{settings.node_shape.memory}"
    return (
        f"{'; '.join(misfits)}: more than a node of {shape} can give one pod ({room.describe()} after the "
        f"kubelet's reservation, GKE's and Kubeflow's own pods), so it could stay Pending (FailedScheduling); "
        f"lower it with --task-resources ID=CPU,MEMORY, or give your nodes' shape with --node-shape CPU,MEMORY"
    )


def compile_pipeline(run: KubeflowRun, pipeline, parameters: dict) -> str:
    """Writes the KFP v2 pipeline job spec (runtime config: `parameters`) and, beside it, the `.kfp.yaml` the
    Kubeflow Pipelines UI uploads; returns the spec's path."""
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2.pipeline_builder import DEFAULT_IMAGE_PATH_KEY

    from runners import kfp_entrypoint, kubeflow_submit, runtime_parameters

    images = {DEFAULT_IMAGE_PATH_KEY: run.kubeflow.image}  # by component id, else the default
    if run.kubeflow.gpu():
        images[ids.TRAINER] = run.kubeflow.trainer_image()
    # Schema 2.1 (typed parameters, `parameterValues`): what KFP 2.x and Vertex AI read; each task is then also
    # passed its inputs spec, which the entrypoint types its inputs by.
    config = tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
        default_image=images, default_commands=kfp_entrypoint.COMMAND, use_pipeline_spec_2_1=True
    )
    job = tfx.orchestration.experimental.KubeflowV2DagRunner(config).run(
        pipeline, parameter_values=parameters, write_out=False
    )
    kfp_entrypoint.use_in_spec(job)
    runtime_parameters.record_defaults(job, pipeline)
    # The SDK's `pipeline_root=` field; the backend itself takes the run's root, else its kfp-launcher
    # ConfigMap's (docs/kubeflow.md, step 5).
    job["pipelineSpec"]["defaultPipelineRoot"] = run.config.root
    spec_path = os.path.abspath(run.kubeflow.output_file)
    os.makedirs(os.path.dirname(spec_path), exist_ok=True)
    with open(spec_path, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
    kubeflow_submit.kfp_package(spec_path)
    return spec_path
