"""Compiles the imdb-bert-tfx pipeline for Kubeflow Pipelines v2 and, with --submit, starts a run.

    python kubeflow_runner.py --pipeline-root gs://BUCKET/imdb-bert-tfx --data gs://BUCKET/aclImdb \\
        --serving-model-dir gs://BUCKET/serving/imdb-bert-tfx --image REGISTRY/imdb-bert-tfx:TAG \\
        [--target kfp | --submit kfp --kfp-host http://localhost:8080 | --submit vertex --vertex-project PROJECT]

writes the pipeline job spec JSON (`--output-file`, KubeflowV2DagRunner's format), every task a container of
`--image` (see Dockerfile; `make image push IMAGE=...` builds and pushes it), which open-source Kubeflow
Pipelines, Vertex AI Pipelines and kfp.local run. The Trainer's encoder is, as locally, the offline MiniLM,
which the image holds (--encoder or the handles for another).
`--target` says where, for the path checks: a cluster's pods (kfp, vertex) open artifacts with TensorFlow's
filesystems, so the roots must be gs://; kfp.local's DockerRunner (`kfp-local`) mounts absolute local paths.
The data source, TrainArgs, EvalArgs and the TFMA EvalConfig (accuracy threshold) are pipeline parameters
(configs.KUBEFLOW_RUNTIME_PARAMETERS): set them per run with `--parameter NAME=VALUE` or in the KFP / Vertex UI.
"""

from __future__ import annotations

import argparse
import os
import sys

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from pipeline import configs
from runners import cli, kubeflow_resources, kubeflow_spec, kubeflow_submit, offline_assets


def flags() -> cli.Parser:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", required=True,
                        help="artifact root the cluster can write (gs://..., or any filesystem TFX supports)")
    parser.add_argument("--data", required=True,
                        help="aclImdb folder the cluster can read (gs://...), or the tarball's URL")
    parser.add_argument("--download-dir", default="/tmp/imdb-bert-tfx",
                        help="where the ExampleGen container caches and extracts a downloaded tarball")
    parser.add_argument("--serving-model-dir", required=True, help="blessed models are pushed to <this>/<version>/")
    parser.add_argument("--image", default=configs.KUBEFLOW_IMAGE,
                        help="component image, in a registry the cluster pulls from for --target kfp or vertex "
                             f"({configs.KUBEFLOW_IMAGE_BUILD_HINT}; default: %(default)s, for kfp-local)")
    parser.add_argument("--image-project-root", default=configs.KUBEFLOW_IMAGE_PROJECT_ROOT,
                        help="where the image holds the project (Dockerfile's PROJECT_ROOT; default: %(default)s)")
    parser.add_argument("--output-file", default=configs.KUBEFLOW_PIPELINE_SPEC, help="compiled spec (JSON)")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="runtime parameter value for this run, repeatable; names: "
                             + ", ".join(configs.KUBEFLOW_RUNTIME_PARAMETERS))
    group = parser.add_argument_group("resources (each task's pod; see runners/kubeflow_resources.py)")
    group.add_argument("--task-resources", action="append", default=[], metavar="ID=CPU,MEMORY",
                       help="requests of one task (a component id, or `default` for the rest), repeatable; defaults: "
                            + "; ".join(f"{k}={c},{m}" for k, (c, m) in configs.KUBEFLOW_TASK_RESOURCES.items()))
    group.add_argument("--node-shape", default=",".join(configs.KUBEFLOW_NODE_SHAPE), metavar="CPU,MEMORY",
                       help="capacity of the cluster's nodes: compiling for kfp warns when a task's requests cannot "
                            "fit one (default: %(default)s)")
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
    cli.add_model_flags(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> kubeflow_spec.KubeflowRun:
    """The compilation the flags describe, every value checked (a bad one exits with code 2 and one line)."""
    parser = flags()
    args = parser.parse_args(argv)
    if args.target and args.submit and args.target != args.submit:
        parser.error(f"--submit {args.submit} runs the spec on {args.submit}, not --target {args.target}")
    target = args.target or args.submit or "kfp"
    check_paths_for_target(parser, args, target)
    check_image_for_target(parser, args.image, target)
    if args.submit == "vertex" and not args.vertex_project:
        parser.error("--submit vertex needs --vertex-project")
    try:
        gpu_type = args.gpu_type or configs.KUBEFLOW_GPU_TYPES[target]
        gpu = kubeflow_resources.gpu_request(args.trainer_gpus, gpu_type, target)
        task_resources = kubeflow_resources.parse_task_resources(args.task_resources)
        node_shape = kubeflow_resources.parse_node_shape(args.node_shape)
    except kubeflow_resources.ResourceError as error:
        parser.error(str(error))
    # On a cluster the encoder (the local default: the offline MiniLM) and the curated schema come from the image.
    handles = cli.checked(parser, lambda: cli.encoder_handles(args)) or offline_assets.minilm_paths(
        os.path.join(args.image_project_root, configs.KUBEFLOW_IMAGE_CACHE_DIR)).handles()
    schema_file = args.schema_file or os.path.join(args.image_project_root,
                                                   os.path.relpath(configs.SCHEMA_FILE, configs.PROJECT_ROOT))
    dataflow_args = [*configs.DATAFLOW_BEAM_ARGS, f"--project={args.dataflow_project}",
                     f"--region={args.dataflow_region}", f"--temp_location={args.pipeline_root.rstrip('/')}/beam-temp",
                     f"--sdk_container_image={args.image}"] if args.dataflow_project else []
    recipe = cli.recipe_name(args, real_data=True)
    config = cli.checked(parser, lambda: cli.pipeline_config(
        args, root=args.pipeline_root, data=cli.data_config(args, args.data, args.download_dir, schema_file),
        handles=handles, serving_model_dir=args.serving_model_dir, recipe=recipe,
        beam_args=(*dataflow_args, *args.beam_arg)))
    return kubeflow_spec.KubeflowRun(config, recipe, target, parameter_values(parser, args.parameter), task_resources,
                                     gpu, args.gpu_image or kubeflow_spec.gpu_image(args.image), args, node_shape)


def parameter_values(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """--parameter NAME=VALUE items, each NAME a runtime parameter."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in configs.KUBEFLOW_RUNTIME_PARAMETERS:
            parser.error(f"--parameter {item!r}: expected NAME=VALUE with NAME one of "
                         f"{', '.join(configs.KUBEFLOW_RUNTIME_PARAMETERS)}")
        values[name] = value
    return values


def check_paths_for_target(parser: argparse.ArgumentParser, args: argparse.Namespace, target: str) -> None:
    """Stops with one line unless the artifact and serving roots and the data are paths the target's pods open
    (configs.KUBEFLOW_TARGETS)."""
    schemes = configs.KUBEFLOW_TARGETS[target]
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


def check_image_for_target(parser: argparse.ArgumentParser, image: str, target: str) -> None:
    """Stops with one line if a cluster (--target kfp or vertex) cannot pull `image`: a name with no registry or
    namespace (such as the default, the local tag `make image` builds) resolves to Docker Hub's official images."""
    if target != "kfp-local" and "/" not in image:
        parser.error(f"--image {image}: a cluster pulls each task's image from a registry, and this names none; "
                     f"build and push one ({configs.KUBEFLOW_IMAGE_BUILD_HINT}, e.g. "
                     f"us-docker.pkg.dev/PROJECT/REPOSITORY/imdb-bert-tfx:TAG) and pass it as --image")


def main(argv: list[str] | None = None) -> str:
    run = parse_args(argv)
    from runners import console

    try:  # TensorFlow's, TFX's and absl's own lines go to a log beside the spec, not to the console
        with console.RunConsole(os.path.splitext(os.path.abspath(run.flags.output_file))[0] + ".log"):
            from runners import runtime_parameters  # loads TFX, and TensorFlow

            pipeline, parameters = kubeflow_spec.build_pipeline(run)
            spec_path = kubeflow_spec.compile_pipeline(run, pipeline, parameters)
    except (runtime_parameters.ParameterError, kubeflow_resources.ResourceError) as error:
        print(f"kubeflow_runner.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    warning = kubeflow_spec.node_shape_warning(run, pipeline)
    if warning:
        print(f"kubeflow_runner.py: warning: {warning}", file=sys.stderr)
    print(cli.recipe_line(run.recipe, run.config))
    print(f"Pipeline spec written to {spec_path} (and {kubeflow_submit.package_path(spec_path)} for the KFP UI)")
    if run.flags.submit:
        kubeflow_submit.submit(run, spec_path, parameters)
    return spec_path


if __name__ == "__main__":
    try:
        main()
    except kubeflow_submit.SubmitError as error:  # its message is the whole story; no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
