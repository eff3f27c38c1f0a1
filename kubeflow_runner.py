"""Compiles the imdb-bert-tfx pipeline for Kubeflow Pipelines v2 (KubeflowV2DagRunner pipeline spec).

    python kubeflow_runner.py --pipeline-root gs://BUCKET/imdb-bert-tfx --data gs://BUCKET/aclImdb \\
        --serving-model-dir gs://BUCKET/serving/imdb-bert-tfx --image REGISTRY/imdb-bert-tfx:TAG

writes the pipeline spec JSON (`--output-file`), ready to upload to Kubeflow Pipelines or Vertex AI.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere

import argparse

from pipeline import cli, configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline-root", required=True, help="artifact root the cluster can write (gs://...)")
    parser.add_argument("--data", required=True,
                        help="aclImdb folder the cluster can read (gs://...), or the tarball's URL")
    parser.add_argument("--download-dir", default="/tmp/imdb-bert-tfx",
                        help="where the ExampleGen container caches and extracts a downloaded tarball")
    parser.add_argument("--serving-model-dir", required=True, help="blessed models are pushed to <this>/<version>/")
    parser.add_argument("--image", default=configs.KUBEFLOW_IMAGE, help="component image (default: %(default)s)")
    parser.add_argument("--output-file", default=configs.KUBEFLOW_PIPELINE_SPEC, help="compiled spec (JSON)")
    cli.add_model_flags(parser)
    parser.set_defaults(preprocess_handle=configs.KUBEFLOW_PREPROCESS_HANDLE,
                        encoder_handle=configs.KUBEFLOW_ENCODER_HANDLE,
                        schema_file=os.path.join(configs.KUBEFLOW_IMAGE_PROJECT_ROOT,
                                                 os.path.relpath(configs.SCHEMA_FILE, configs.PROJECT_ROOT)))
    args = parser.parse_args(argv)
    args.handles = cli.encoder_handles(parser, args)
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)

    from pipeline.pipeline import create_pipeline
    from tfx import v1 as tfx

    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=args.pipeline_root,
        data_source=args.data,
        download_dir=args.download_dir,
        serving_model_dir=args.serving_model_dir,
        **cli.pipeline_kwargs(args, preprocess_handle=args.handles.preprocess, encoder_handle=args.handles.encoder),
    )
    output_dir, output_filename = os.path.split(os.path.abspath(args.output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=args.image),
        output_dir=output_dir,
        output_filename=output_filename,
    )
    runner.run(pipeline)
    spec_path = os.path.join(output_dir, output_filename)
    print(f"Pipeline spec written to {spec_path}")
    return spec_path


if __name__ == "__main__":
    main()
