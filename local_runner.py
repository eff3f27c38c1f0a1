"""Runs the imdb-bert-tfx pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

    python local_runner.py                      # offline default: synthetic corpus, pretrained MiniLM BERT
    python local_runner.py --data ~/aclImdb --preprocess-handle URL_OR_DIR --encoder-handle URL_OR_DIR
    python local_runner.py --data https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz ...
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from components import imdb_source
from modules import encoders
from pipeline import configs
from runners import cli, offline_assets, run_lock

REAL_CORPUS_HINT = """
That was the quick first look: a synthetic corpus, learned in a few steps. For a real sentiment model, train
on the Large Movie Review Dataset (84 MB download, or a local aclImdb folder or tarball):
  .venv/bin/python local_runner.py --data https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz
  .venv/bin/python local_runner.py --data ~/aclImdb_train.tar.gz --test-split ''
On real data the defaults are the best recipe measured (--recipe best: about 0.91 eval accuracy after 30-45
training minutes on 2 CPU cores); --recipe tutorial trains exactly as the tutorial does. See README, "Real
data and real encoders"; a GPU is used when there is one."""
EXAMPLE_SENTENCES = ["This movie was a delight, brilliant and moving.",
                     "A dull, tedious film. I hated every minute."]


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """What one `local_runner.py` invocation runs: the pipeline's config and where this machine keeps things."""

    config: configs.PipelineConfig
    recipe: str
    output_dir: str
    cache_dir: str
    synthetic: bool  # the offline default corpus (no --data): a quick look


def flags() -> cli.Parser:
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR,
                        help="pipeline artifacts, ML Metadata and pushed models (default: %(default)s)")
    parser.add_argument("--cache-dir", default=configs.CACHE_DIR, help="offline defaults are built here")
    parser.add_argument("--data", help="aclImdb folder, .tar.gz, or URL of the tarball; default: the synthetic "
                                       "offline corpus")
    cli.add_model_flags(parser)
    parser.add_argument("--cache", action="store_true",
                        help="reuse finished executions of earlier runs whose inputs and settings are unchanged "
                             "(TFX caching), e.g. to rerun after a crash")
    return parser


def parse_args(argv: list[str] | None = None) -> LocalRun:
    """The run the flags describe, every value checked (a bad one exits with code 2 and one line)."""
    parser = flags()
    args = parser.parse_args(argv)
    if args.data is not None:
        try:
            imdb_source.check_local_source(args.data)
        except imdb_source.SourceError as error:
            parser.error(f"--data {error}")
    for flag, path in (("--output-dir", args.output_dir), ("--cache-dir", args.cache_dir)):
        cli.checked(parser, lambda: cli.check_writable_dir(flag, path))
    handles = cli.checked(parser, lambda: cli.encoder_handles(args))
    if handles is None:  # the offline default, converted into the cache by set-up (or on first use)
        handles = offline_assets.minilm_paths(args.cache_dir).handles()
    source = args.data or str(offline_assets.synthetic_corpus_path(args.cache_dir, synthetic_corpus_spec()))
    recipe = cli.recipe_name(args, real_data=args.data is not None)
    config = cli.checked(parser, lambda: cli.pipeline_config(
        args, root=configs.pipeline_root(args.output_dir),
        data=cli.data_config(args, source if "://" in source else os.path.abspath(os.path.expanduser(source)),
                             configs.download_dir(args.cache_dir), args.schema_file or configs.SCHEMA_FILE),
        handles=handles, serving_model_dir=configs.serving_model_dir(args.output_dir), recipe=recipe,
        enable_cache=args.cache))
    return LocalRun(config, recipe, args.output_dir, args.cache_dir, synthetic=args.data is None)


def synthetic_corpus_spec():
    from components.synthetic_corpus import SyntheticCorpusSpec

    return SyntheticCorpusSpec(reviews_per_label=configs.SYNTHETIC_REVIEWS_PER_LABEL)


def main(argv: list[str] | None = None) -> None:
    local_run = parse_args(argv)
    try:
        with run_lock.hold(local_run.output_dir):
            run(local_run)
    except run_lock.RunLockHeld as error:
        print(f"local_runner.py: error: {error}", file=sys.stderr)
        sys.exit(run_lock.EXIT_CODE)


def prepare(local_run: LocalRun) -> None:
    """Builds the offline defaults the run uses (cached), and fails fast on an encoder that cannot serve."""
    config = local_run.config
    if local_run.synthetic:
        offline_assets.synthetic_corpus_dir(local_run.cache_dir, synthetic_corpus_spec())
    if config.training.encoder_handle == str(offline_assets.minilm_paths(local_run.cache_dir).encoder):
        offline_assets.pretrained_minilm(local_run.cache_dir)
    handles = encoders.EncoderHandles(encoder=config.training.encoder_handle,
                                      preprocess=config.training.preprocess_handle)
    try:
        encoders.check_handles(handles, config.training.seq_length)  # before any Beam work
    except encoders.EncoderError as error:
        print(f"local_runner.py: error: {error}", file=sys.stderr)
        sys.exit(2)


def run(local_run: LocalRun) -> None:
    from absl import logging
    from tfx import v1 as tfx

    from components import evaluation_report
    from modules import predict
    from pipeline.pipeline import create_pipeline

    logging.set_verbosity(logging.INFO)
    prepare(local_run)
    config = local_run.config
    metadata_path = configs.metadata_path(local_run.output_dir)
    os.makedirs(os.path.dirname(metadata_path), exist_ok=True)
    metadata_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    before = predict.latest_pushed_model_or_none(config.serving_model_dir)
    print(cli.recipe_line(local_run.recipe, config), flush=True)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata_config))
    after = predict.latest_pushed_model_or_none(config.serving_model_dir)

    print()
    report = evaluation_report.latest_report_path(metadata_config)
    if report:
        print(f"Evaluation report: {report}")
    if after is None:
        print(f"No model is pushed yet in {config.serving_model_dir}: this run's model was not blessed.")
        return
    print(f"Pushed model: {after}" if after != before else
          f"This run's model was not blessed; the serving model is still {after}")
    for prediction in predict.classify(after, EXAMPLE_SENTENCES):
        print(f"  {prediction.probability:.3f}  {prediction.label:<8}  {prediction.text}")
    if local_run.synthetic:
        print(REAL_CORPUS_HINT)


if __name__ == "__main__":
    main()
