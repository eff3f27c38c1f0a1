"""Compiles the imdb-bert-tfx pipeline for Kubeflow Pipelines v2 and, with --submit, starts a run.

    python kubeflow_runner.py --pipeline-root gs://BUCKET/imdb-bert-tfx --data gs://BUCKET/aclImdb \\
        --serving-model-dir gs://BUCKET/serving/imdb-bert-tfx --image REGISTRY/imdb-bert-tfx:TAG \\
        [--target kfp | --submit kfp --kfp-host http://localhost:8080 | --submit vertex --vertex-project PROJECT]

writes the pipeline job spec JSON (`--output-file`, KubeflowV2DagRunner's format), every task a container of
`--image` (see Dockerfile; `make image push IMAGE=...` builds and pushes it), which open-source Kubeflow
Pipelines, Vertex AI Pipelines and kfp.local run. The Trainer's encoder is, as locally, the offline MiniLM,
which the image holds (--encoder or the handles for another).
`--target` says where, for the path checks: a cluster's pods (kfp, vertex) open artifacts with TensorFlow's
filesystems, so the roots must be folders in a gs:// bucket; kfp.local's DockerRunner (`kfp-local`) mounts
absolute local paths.
The data source, TrainArgs, EvalArgs and the TFMA EvalConfig (accuracy threshold) are pipeline parameters
(config/kubeflow.py): set them per run with `--parameter NAME=VALUE` or in the KFP / Vertex UI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from config import images, task_resources
from config import kubeflow as kubeflow_config
from config import pipeline as configs
from config.kubeflow import KubeflowConfig
from runners import cli, kubeflow_spec, kubeflow_submit, offline_assets


def flags() -> cli.Parser:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_flags(parser, KubeflowConfig)
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="runtime parameter value for this run, repeatable; names: "
        + ", ".join(kubeflow_config.RUNTIME_PARAMETERS),
    )
    group = parser.add_argument_group(kubeflow_config.RESOURCES)
    group.add_argument(
        "--task-resources",
        action="append",
        default=[],
        metavar="ID=CPU,MEMORY",
        help="requests of one task (a component id, or `default` for the rest), repeatable; defaults: "
        + "; ".join(f"{k}={c},{m}" for k, (c, m) in kubeflow_config.TASK_RESOURCES.items()),
    )
    group.add_argument(
        "--node-shape",
        default=",".join(kubeflow_config.NODE_SHAPE),
        metavar="CPU,MEMORY",
        help="capacity of the cluster's nodes: compiling for kfp warns when a task's requests cannot "
        "fit one (default: %(default)s)",
    )
    cli.add_flags(group, KubeflowConfig, title=kubeflow_config.RESOURCES)
    for title in (kubeflow_config.DATAFLOW, kubeflow_config.SUBMISSION):
        cli.add_flags(parser.add_argument_group(title), KubeflowConfig, title=title, defaults={"target": None})
    cli.add_model_flags(parser, data_defaults={"schema_file": None})
    return parser


def kubeflow(parser: argparse.ArgumentParser, args: argparse.Namespace) -> KubeflowConfig:
    """The Kubeflow settings the flags give, checked (a bad one exits with code 2 and one line)."""
    if args.target and args.submit and args.target != args.submit:
        parser.error(f"--submit {args.submit} runs the spec on {args.submit}, not --target {args.target}")
    target = args.target or args.submit or "kfp"
    try:
        # --image first: a bad one ends here, before the resource flags load the kubernetes package (a second).
        images.check_image("--image", args.image, target)
        return KubeflowConfig(
            **{**cli.flag_values(KubeflowConfig, args), "target": target},
            parameter_values=parameter_values(parser, args.parameter),
            task_resources=MappingProxyType(task_resources.parse_task_resources(args.task_resources)),
            node_shape=task_resources.parse_node_shape(args.node_shape),
        )
    except (cli.ConfigError, task_resources.ResourceError) as error:
        parser.error(str(error))


def parse_args(argv: list[str] | None = None) -> kubeflow_spec.KubeflowRun:
    """The compilation the flags describe, every value checked (a bad one exits with code 2 and one line)."""
    parser = flags()
    args = parser.parse_args(argv)
    settings = kubeflow(parser, args)
    # On a cluster the encoder (the local default: the offline MiniLM) and the curated schema come from the image.
    handles = (
        cli.checked(parser, lambda: cli.encoder_handles(args))
        or offline_assets.minilm_paths(
            os.path.join(settings.image_project_root, kubeflow_config.IMAGE_CACHE_DIR)
        ).handles()
    )
    schema_file = args.schema_file or os.path.join(
        settings.image_project_root, os.path.relpath(configs.SCHEMA_FILE, configs.PROJECT_ROOT)
    )
    recipe = cli.recipe_name(args, real_data=True)
    config = cli.checked(
        parser,
        lambda: cli.pipeline_config(
            args,
            root=settings.pipeline_root,
            handles=handles,
            serving_model_dir=settings.serving_model_dir,
            data=cli.data_config(
                args, source=settings.data, download_dir=settings.download_dir, schema_file=schema_file
            ),
            recipe=recipe,
            beam_args=(*settings.beam_args(), *args.beam_arg),
        ),
    )
    return kubeflow_spec.KubeflowRun(config, recipe, settings)


def parameter_values(parser: argparse.ArgumentParser, items: list[str]) -> Mapping[str, str]:
    """--parameter NAME=VALUE items, each NAME a runtime parameter."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in kubeflow_config.RUNTIME_PARAMETERS:
            parser.error(
                f"--parameter {item!r}: expected NAME=VALUE with NAME one of "
                f"{', '.join(kubeflow_config.RUNTIME_PARAMETERS)}"
            )
        values[name] = value
    return MappingProxyType(values)


def main(argv: list[str] | None = None) -> str:
    run = parse_args(argv)
    from runners import console

    try:  # TensorFlow's, TFX's and absl's own lines go to a log beside the spec, not to the console
        with console.RunConsole(os.path.splitext(os.path.abspath(run.kubeflow.output_file))[0] + ".log"):
            from runners import runtime_parameters  # loads TFX, and TensorFlow

            pipeline, parameters = kubeflow_spec.build_pipeline(run)
            spec_path = kubeflow_spec.compile_pipeline(run, pipeline, parameters)
    except (runtime_parameters.ParameterError, task_resources.ResourceError) as error:
        print(f"kubeflow_runner.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    warning = kubeflow_spec.node_shape_warning(run, pipeline)
    if warning:
        print(f"kubeflow_runner.py: warning: {warning}", file=sys.stderr)
    print(cli.recipe_line(run.recipe, run.config))
    print(f"Pipeline spec written to {spec_path} (and {kubeflow_submit.package_path(spec_path)} for the KFP UI)")
    if run.kubeflow.submit:
        kubeflow_submit.submit(run, spec_path, parameters)
    return spec_path


if __name__ == "__main__":
    try:
        main()
    except kubeflow_submit.SubmitError as error:  # its message is the whole story; no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
