"""Runs the imdb-bert-tfx pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

    python local_runner.py                      # offline default: synthetic corpus, pretrained MiniLM BERT
    python local_runner.py --data ~/aclImdb --preprocess-handle URL_OR_DIR --encoder-handle URL_OR_DIR
    python local_runner.py --data https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz ...
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere

import argparse

from absl import logging

from pipeline import cli, configs

EXAMPLE_SENTENCES = ["This movie was a delight, brilliant and moving.",
                     "A dull, tedious film. I hated every minute."]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR,
                        help="pipeline artifacts, ML Metadata and pushed models (default: %(default)s)")
    parser.add_argument("--cache-dir", default=configs.CACHE_DIR, help="offline defaults are built here")
    parser.add_argument("--data", default=configs.DATA_SOURCE,
                        help="aclImdb folder, .tar.gz, or URL of the tarball; default: the synthetic offline corpus")
    cli.add_model_flags(parser)
    args = parser.parse_args(argv)
    args.handles = cli.encoder_handles(parser, args)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.set_verbosity(logging.INFO)

    from components import evaluation_report
    from components.synthetic_corpus import SyntheticCorpusSpec
    from modules import encoders, predict
    from pipeline import offline_defaults
    from pipeline.pipeline import create_pipeline
    from tfx import v1 as tfx

    data_source = args.data or offline_defaults.synthetic_corpus_dir(
        args.cache_dir, SyntheticCorpusSpec(reviews_per_label=configs.SYNTHETIC_REVIEWS_PER_LABEL))
    handles = args.handles
    if handles is None:
        bert = offline_defaults.pretrained_minilm(args.cache_dir)
        handles = encoders.EncoderHandles(encoder=str(bert.encoder), preprocess=str(bert.preprocess))
    encoders.check_handles(handles)  # fail fast, before any Beam work
    serving_model_dir = configs.serving_model_dir(args.output_dir)
    metadata_path = configs.metadata_path(args.output_dir)
    os.makedirs(os.path.dirname(metadata_path), exist_ok=True)

    metadata_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=configs.pipeline_root(args.output_dir),
        data_source=data_source if "://" in data_source else os.path.abspath(os.path.expanduser(data_source)),
        download_dir=configs.download_dir(args.cache_dir),
        serving_model_dir=serving_model_dir,
        metadata_connection_config=metadata_config,
        **cli.pipeline_kwargs(args, preprocess_handle=handles.preprocess, encoder_handle=handles.encoder),
    )
    before = predict.latest_pushed_model_or_none(serving_model_dir)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    after = predict.latest_pushed_model_or_none(serving_model_dir)

    print()
    report = evaluation_report.latest_report_path(metadata_config)
    if report:
        print(f"Evaluation report: {report}")
    if after is None:
        print(f"No model is pushed yet in {serving_model_dir}: this run's model was not blessed.")
        return
    if after == before:
        print(f"This run's model was not blessed; the serving model is still {after}")
    else:
        print(f"Pushed model: {after}")
    for prediction in predict.classify(after, EXAMPLE_SENTENCES):
        print(f"  {prediction.probability:.3f}  {prediction.label:<8}  {prediction.text}")


if __name__ == "__main__":
    main()
