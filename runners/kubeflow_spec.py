"""The Kubeflow Pipelines v2 job spec of a `KubeflowRun`: the pipeline with each task's resources and runtime
parameters, compiled by TFX's KubeflowV2DagRunner, every task pointed at our entrypoint; and its submission."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from pipeline import configs
from runners import kubeflow_resources


@dataclasses.dataclass(frozen=True)
class KubeflowRun:
    """What one `kubeflow_runner.py` invocation compiles (and submits): the pipeline's config and the spec's
    Kubeflow settings; `flags` holds the rest of the Kubeflow flags as given."""

    config: configs.PipelineConfig
    recipe: str
    target: str
    parameter_values: dict[str, str]
    task_resources: dict[str, kubeflow_resources.TaskResources]
    gpu: kubeflow_resources.GpuRequest | None
    gpu_image: str
    flags: argparse.Namespace


def gpu_image(image: str) -> str:
    """`image` with the GPU suffix after its tag (REGISTRY/NAME:TAG -> REGISTRY/NAME:TAG-gpu)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        name, tag = image, "latest"
    return f"{name}:{tag}{configs.KUBEFLOW_GPU_IMAGE_SUFFIX}"


def exposed_properties() -> list:
    """configs.KUBEFLOW_RUNTIME_PARAMETERS as `runtime_parameters.ExposedProperty`s."""
    from runners import runtime_parameters

    return [runtime_parameters.ExposedProperty(name, component_id, exec_property, description)
            for name, (component_id, exec_property, description) in configs.KUBEFLOW_RUNTIME_PARAMETERS.items()]


def build_pipeline(run: KubeflowRun):
    """The pipeline of `run`, each task's resources set, its runtime parameters exposed; returns it and their
    defaults."""
    from pipeline.pipeline import create_pipeline
    from runners import runtime_parameters

    pipeline = create_pipeline(run.config)
    kubeflow_resources.apply(pipeline, configs.KUBEFLOW_TASK_RESOURCES, run.task_resources, run.gpu, run.target)
    return pipeline, runtime_parameters.expose(pipeline, exposed_properties())


def compile_pipeline(run: KubeflowRun, pipeline, defaults: dict) -> str:
    """Writes the KFP v2 pipeline job spec (runtime config: defaults, then --parameter values) and, beside it,
    the `.kfp.yaml` the Kubeflow Pipelines UI uploads; returns the spec's path."""
    from tfx import v1 as tfx

    from runners import kfp_entrypoint, kubeflow_submit, runtime_parameters

    values = typed_parameter_values(run, defaults)
    runtime_parameters.check_values(pipeline, exposed_properties(), values)
    output_dir, output_filename = os.path.split(os.path.abspath(run.flags.output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=run.flags.image, use_pipeline_spec_2_1=configs.KUBEFLOW_USE_PIPELINE_SPEC_2_1),
        output_dir=output_dir,
        output_filename=output_filename,
    )
    job = runner.run(pipeline, parameter_values={**defaults, **values}, write_out=False)
    kfp_entrypoint.use_in_spec(job)
    if run.gpu:
        kubeflow_resources.use_image(job, kubeflow_resources.TRAINER, run.gpu_image)
    runtime_parameters.record_defaults(job, exposed_properties(), defaults)
    # The SDK's `pipeline_root=` field; the backend itself takes the run's root, else its kfp-launcher
    # ConfigMap's (README: "Deploy on Kubeflow Pipelines").
    job["pipelineSpec"]["defaultPipelineRoot"] = run.config.root
    spec_path = os.path.join(output_dir, output_filename)
    os.makedirs(output_dir, exist_ok=True)
    with open(spec_path, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
    kubeflow_submit.kfp_package(spec_path)
    return spec_path


def typed_parameter_values(run: KubeflowRun, defaults: dict) -> dict:
    """The --parameter values, each of its parameter's type."""
    return {name: type(defaults[name])(value) for name, value in run.parameter_values.items()}


def submit(run: KubeflowRun, spec_path: str, parameters: dict) -> None:
    from runners import kubeflow_submit

    flags = run.flags
    if flags.submit == "kfp":
        run_id = kubeflow_submit.submit_to_kfp(
            spec_path, host=flags.kfp_host, pipeline_root=run.config.root, parameters=parameters,
            experiment=flags.experiment, run_name=flags.run_name, namespace=flags.kfp_namespace)
        print(f"Submitted to Kubeflow Pipelines at {flags.kfp_host}: run {run_id}")
    else:
        job_name = kubeflow_submit.submit_to_vertex(
            spec_path, project=flags.vertex_project, region=flags.vertex_region, pipeline_root=run.config.root,
            parameters=parameters, run_name=flags.run_name, service_account=flags.service_account)
        print(f"Submitted to Vertex AI Pipelines: {job_name}")


