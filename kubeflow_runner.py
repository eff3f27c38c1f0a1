"""Compiles the imdb-bert-tfx pipeline for Kubeflow Pipelines v2 and, with --submit, starts a run.

    python kubeflow_runner.py --pipeline-root gs://BUCKET/imdb-bert-tfx --data gs://BUCKET/aclImdb \\
        --serving-model-dir gs://BUCKET/serving/imdb-bert-tfx --image REGISTRY/imdb-bert-tfx:TAG \\
        [--target kfp | --submit kfp --kfp-host http://localhost:8080 | --submit vertex --vertex-project PROJECT]

writes the pipeline job spec JSON (`--output-file`, KubeflowV2DagRunner's format) whose every task runs in
`--image` (see Dockerfile) as a container: open-source Kubeflow Pipelines, Vertex AI Pipelines and kfp.local
run it. `--target` says where, for the checks on paths: on a cluster (kfp, vertex) the pods open artifacts
with TensorFlow's filesystems, so the roots must be gs://; `kfp-local` (kfp.local's DockerRunner) takes
absolute local paths, mounted into the containers. The data source, TrainArgs, EvalArgs and the TFMA EvalConfig (accuracy
threshold) are pipeline parameters (configs.KUBEFLOW_RUNTIME_PARAMETERS): set them per run with
`--parameter NAME=VALUE` here or in the KFP / Vertex AI UI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from pipeline import cli, configs, kubeflow_resources


def add_kubeflow_flags(parser: argparse.ArgumentParser) -> None:
    """Image, runtime parameter, Dataflow and submission flags."""
    parser.add_argument("--image", default=configs.KUBEFLOW_IMAGE, help="component image (default: %(default)s)")
    parser.add_argument("--image-project-root", default=configs.KUBEFLOW_IMAGE_PROJECT_ROOT,
                        help="where the image holds the project (Dockerfile's PROJECT_ROOT; default: %(default)s)")
    parser.add_argument("--output-file", default=configs.KUBEFLOW_PIPELINE_SPEC, help="compiled spec (JSON)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="runtime parameter value for this run, repeatable; names: "
                             + ", ".join(configs.KUBEFLOW_RUNTIME_PARAMETERS))
    group = parser.add_argument_group("resources (each task's pod; see pipeline/kubeflow_resources.py)")
    group.add_argument("--task-resources", action="append", default=[], metavar="ID=CPU,MEMORY",
                       help="requests of one task (a component id, or `default` for the rest), repeatable; "
                            "defaults: " + "; ".join(f"{k}={c},{m}" for k, (c, m) in configs.KUBEFLOW_TASK_RESOURCES.items()))
    group.add_argument("--trainer-gpus", type=int, default=0, metavar="N",
                       help="GPUs for the Trainer, which then runs in --gpu-image (default: none)")
    group.add_argument("--gpu-type", help="accelerator the Trainer asks for (default: nvidia.com/gpu on KFP, "
                                          "NVIDIA_TESLA_T4 on Vertex AI)")
    group.add_argument("--gpu-image", help="the Trainer's image with --trainer-gpus: the Dockerfile's `gpu` "
                                           f"target (default: --image with {configs.KUBEFLOW_GPU_IMAGE_SUFFIX} "
                                           "after its tag)")
    group = parser.add_argument_group("Dataflow (Beam components run on Dataflow, workers use --image)")
    group.add_argument("--dataflow-project", help="GCP project to run Dataflow jobs in")
    group.add_argument("--dataflow-region", default=configs.VERTEX_REGION, help="default: %(default)s")
    group = parser.add_argument_group("submission")
    group.add_argument("--target", choices=tuple(configs.KUBEFLOW_TARGETS),
                       help="where the spec will run, for the path checks (default: --submit's, else kfp)")
    group.add_argument("--submit", choices=("kfp", "vertex"),
                       help="after compiling, start a run there (implies --target of the same name)")
    group.add_argument("--kfp-host", default=configs.KFP_HOST, help="KFP API endpoint (default: %(default)s)")
    group.add_argument("--kfp-namespace", help="KFP namespace (multi-user deployments)")
    group.add_argument("--experiment", default=configs.PIPELINE_NAME, help="KFP experiment (default: %(default)s)")
    group.add_argument("--run-name", help="run name shown in the UI")
    group.add_argument("--vertex-project", help="GCP project for Vertex AI Pipelines")
    group.add_argument("--vertex-region", default=configs.VERTEX_REGION, help="default: %(default)s")
    group.add_argument("--service-account", help="service account the Vertex AI run uses")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", required=True,
                        help="artifact root the cluster can write (gs://..., or any filesystem TFX supports)")
    parser.add_argument("--data", required=True,
                        help="aclImdb folder the cluster can read (gs://...), or the tarball's URL")
    parser.add_argument("--download-dir", default="/tmp/imdb-bert-tfx",
                        help="where the ExampleGen container caches and extracts a downloaded tarball")
    parser.add_argument("--serving-model-dir", required=True, help="blessed models are pushed to <this>/<version>/")
    add_kubeflow_flags(parser)
    cli.add_model_flags(parser)
    args = parser.parse_args(argv)
    cli.apply_recipe(args, real_data=True)
    if not (args.encoder or args.encoder_handle or args.preprocess_handle):  # on a cluster: a TF Hub BERT
        args.preprocess_handle = configs.KUBEFLOW_PREPROCESS_HANDLE
        args.encoder_handle = configs.KUBEFLOW_ENCODER_HANDLE
    if args.schema_file is None:  # the curated schema, where the image holds it
        args.schema_file = os.path.join(args.image_project_root,
                                        os.path.relpath(configs.SCHEMA_FILE, configs.PROJECT_ROOT))
    if args.target and args.submit and args.target != args.submit:
        parser.error(f"--submit {args.submit} runs the spec on {args.submit}, not --target {args.target}")
    args.target = args.target or args.submit or "kfp"
    check_paths_for_target(parser, args)
    args.handles = cli.encoder_handles(parser, args)
    args.parameter_values = {}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep or name not in configs.KUBEFLOW_RUNTIME_PARAMETERS:
            parser.error(f"--parameter {item!r}: expected NAME=VALUE with NAME one of "
                         f"{', '.join(configs.KUBEFLOW_RUNTIME_PARAMETERS)}")
        args.parameter_values[name] = value
    if args.submit == "vertex" and not args.vertex_project:
        parser.error("--submit vertex needs --vertex-project")
    if args.dataflow_project:
        args.beam_arg = [*configs.DATAFLOW_BEAM_ARGS, f"--project={args.dataflow_project}",
                         f"--region={args.dataflow_region}",
                         f"--temp_location={args.pipeline_root.rstrip('/')}/beam-temp",
                         f"--sdk_container_image={args.image}", *args.beam_arg]
    if args.trainer_gpus < 0:
        parser.error(f"--trainer-gpus {args.trainer_gpus}: expected 0 or more")
    try:
        args.task_resources = kubeflow_resources.parse_task_resources(args.task_resources)
        args.gpu = kubeflow_resources.GpuRequest(args.trainer_gpus, args.gpu_type or configs.KUBEFLOW_GPU_TYPES[
            args.target]) if args.trainer_gpus else None
        if args.gpu:
            kubeflow_resources.check_gpu_type(args.gpu, args.target)
    except kubeflow_resources.ResourceError as error:
        parser.error(str(error))
    args.gpu_image = args.gpu_image or gpu_image(args.image)
    args.pipeline_kwargs = cli.checked(parser, lambda: cli.pipeline_kwargs(
        args, preprocess_handle=args.handles.preprocess, encoder_handle=args.handles.encoder))
    return args


def gpu_image(image: str) -> str:
    """`image` with the GPU suffix after its tag (REGISTRY/NAME:TAG -> REGISTRY/NAME:TAG-gpu)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        name, tag = image, "latest"
    return f"{name}:{tag}{configs.KUBEFLOW_GPU_IMAGE_SUFFIX}"


def check_paths_for_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stops with one line unless the artifact and serving roots and the data are paths the target's pods open
    (configs.KUBEFLOW_TARGETS)."""
    schemes = configs.KUBEFLOW_TARGETS[args.target]
    for flag, value, extra in (("--pipeline-root", args.pipeline_root, ()),
                               ("--serving-model-dir", args.serving_model_dir, ()),
                               ("--data", args.data, ("http://", "https://"))):
        if schemes:
            if not value.startswith(schemes + extra):
                parser.error(f"{flag} {value}: the pipeline's pods open it with TensorFlow's filesystems, which "
                             f"read {', '.join(schemes + extra)} on a cluster ({configs.KUBEFLOW_FILESYSTEMS_NOTE}); "
                             f"use {schemes[0]}BUCKET/PATH")
        elif not (os.path.isabs(value) or value.startswith(extra)):
            parser.error(f"{flag} {value}: --target kfp-local mounts absolute local paths into the containers; "
                         f"use {os.path.abspath(value)}")


def exposed_properties() -> list:
    """configs.KUBEFLOW_RUNTIME_PARAMETERS as `runtime_parameters.ExposedProperty`s."""
    from pipeline import runtime_parameters

    return [runtime_parameters.ExposedProperty(name, component_id, exec_property, description)
            for name, (component_id, exec_property, description) in configs.KUBEFLOW_RUNTIME_PARAMETERS.items()]


def build_pipeline(args: argparse.Namespace):
    """The pipeline the flags describe, each task's resources set, its runtime parameters exposed; returns it
    and their defaults."""
    from pipeline import runtime_parameters
    from pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=args.pipeline_root,
        data_source=args.data,
        download_dir=args.download_dir,
        serving_model_dir=args.serving_model_dir,
        **args.pipeline_kwargs,
    )
    kubeflow_resources.apply(pipeline, configs.KUBEFLOW_TASK_RESOURCES, args.task_resources, args.gpu, args.target)
    return pipeline, runtime_parameters.expose(pipeline, exposed_properties())


def compile_pipeline(args: argparse.Namespace, pipeline, defaults: dict) -> str:
    """Writes the KFP v2 pipeline job spec (runtime config: defaults, then --parameter values) and, beside it,
    the `.kfp.yaml` the Kubeflow Pipelines UI uploads; returns the spec's path."""
    from tfx import v1 as tfx

    from pipeline import kfp_entrypoint, kubeflow_submit, runtime_parameters

    args.parameter_values = {name: type(defaults[name])(value) for name, value in args.parameter_values.items()}
    runtime_parameters.check_values(pipeline, exposed_properties(), args.parameter_values)
    output_dir, output_filename = os.path.split(os.path.abspath(args.output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=args.image, use_pipeline_spec_2_1=configs.KUBEFLOW_USE_PIPELINE_SPEC_2_1),
        output_dir=output_dir,
        output_filename=output_filename,
    )
    job = runner.run(pipeline, parameter_values={**defaults, **args.parameter_values}, write_out=False)
    kfp_entrypoint.use_in_spec(job)
    if args.gpu:
        kubeflow_resources.use_image(job, kubeflow_resources.TRAINER, args.gpu_image)
    runtime_parameters.record_defaults(job, exposed_properties(), defaults)
    # The SDK's `pipeline_root=` field; the backend itself takes the run's root, else its kfp-launcher
    # ConfigMap's (README: "Deploy on Kubeflow Pipelines").
    job["pipelineSpec"]["defaultPipelineRoot"] = args.pipeline_root
    spec_path = os.path.join(output_dir, output_filename)
    os.makedirs(output_dir, exist_ok=True)
    with open(spec_path, "w") as f:
        json.dump(job, f, indent=2, sort_keys=True)
    kubeflow_submit.kfp_package(spec_path)
    return spec_path


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    from pipeline import runtime_parameters

    try:
        spec_path = compile_pipeline(args, *build_pipeline(args))
    except (runtime_parameters.ParameterError, kubeflow_resources.ResourceError) as error:
        print(f"kubeflow_runner.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    from pipeline import kubeflow_submit

    print(cli.recipe_line(args))
    print(f"Pipeline spec written to {spec_path} (and {kubeflow_submit.package_path(spec_path)} for the KFP UI)")
    if args.submit:
        if args.submit == "kfp":
            run_id = kubeflow_submit.submit_to_kfp(
                spec_path, host=args.kfp_host, pipeline_root=args.pipeline_root, parameters=args.parameter_values,
                experiment=args.experiment, run_name=args.run_name, namespace=args.kfp_namespace)
            print(f"Submitted to Kubeflow Pipelines at {args.kfp_host}: run {run_id}")
        else:
            job_name = kubeflow_submit.submit_to_vertex(
                spec_path, project=args.vertex_project, region=args.vertex_region,
                pipeline_root=args.pipeline_root, parameters=args.parameter_values, run_name=args.run_name,
                service_account=args.service_account)
            print(f"Submitted to Vertex AI Pipelines: {job_name}")
    return spec_path


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the submit error's message is the whole story; no traceback
        from pipeline.kubeflow_submit import SubmitError

        if not isinstance(error, SubmitError):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
