"""Runs the imdb-bert-tfx pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

    python local_runner.py                      # offline default: synthetic corpus, built-in encoder
    python local_runner.py --data-root ~/aclImdb --encoder-handle URL_OR_DIR --preprocess-handle URL_OR_DIR
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere

import argparse
import dataclasses

from absl import logging

from pipeline import configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR,
                        help="pipeline artifacts, ML Metadata and pushed models (default: %(default)s)")
    parser.add_argument("--cache-dir", default=configs.CACHE_DIR, help="offline defaults are built here")
    parser.add_argument("--data-root", default=configs.DATA_ROOT,
                        help="an extracted aclImdb folder; default: the synthetic offline corpus")
    parser.add_argument("--preprocess-handle", default=configs.PREPROCESS_HANDLE,
                        help="TF Hub handle (URL or SavedModel dir) of the BERT preprocessor")
    parser.add_argument("--encoder-handle", default=configs.ENCODER_HANDLE,
                        help="TF Hub handle (URL or SavedModel dir) of the BERT encoder")
    parser.add_argument("--epochs", type=int, default=configs.EPOCHS)
    parser.add_argument("--batch-size", type=int, default=configs.BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help=f"default {configs.LEARNING_RATE} ({configs.RANDOM_ENCODER_LEARNING_RATE} "
                             "for the built-in random encoder)")
    parser.add_argument("--warmup-fraction", type=float, default=configs.WARMUP_FRACTION)
    parser.add_argument("--dropout-rate", type=float, default=configs.DROPOUT_RATE)
    parser.add_argument("--seq-length", type=int, default=configs.SEQ_LENGTH)
    parser.add_argument("--train-steps", type=int, default=configs.TRAIN_NUM_STEPS,
                        help="total optimizer steps; default: --epochs passes over the train split")
    parser.add_argument("--eval-steps", type=int, default=configs.EVAL_NUM_STEPS)
    parser.add_argument("--accuracy-threshold", type=float, default=configs.EVAL_ACCURACY_THRESHOLD)
    parser.add_argument("--max-accuracy-drop", type=float, default=configs.EVAL_MAX_ACCURACY_DROP)
    parser.add_argument("--beam-arg", action="append", default=list(configs.BEAM_PIPELINE_ARGS),
                        help="extra Beam pipeline option, repeatable")
    args = parser.parse_args(argv)
    if (args.preprocess_handle is None) != (args.encoder_handle is None):
        parser.error("give both --preprocess-handle and --encoder-handle, or neither (built-in encoder)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.set_verbosity(logging.INFO)

    from components.synthetic_corpus import SyntheticCorpusSpec
    from modules import predict
    from modules.trainer import TrainingConfig
    from pipeline import offline_defaults
    from pipeline.pipeline import create_pipeline
    from tfx import v1 as tfx

    data_root = args.data_root or offline_defaults.synthetic_corpus_dir(
        args.cache_dir, SyntheticCorpusSpec(reviews_per_label=configs.SYNTHETIC_REVIEWS_PER_LABEL))
    learning_rate = args.learning_rate
    if args.encoder_handle is None:
        bert = offline_defaults.random_bert(args.cache_dir)
        preprocess_handle, encoder_handle = str(bert.preprocess), str(bert.encoder)
        learning_rate = learning_rate or configs.RANDOM_ENCODER_LEARNING_RATE
    else:
        preprocess_handle, encoder_handle = args.preprocess_handle, args.encoder_handle
    training = TrainingConfig(
        preprocess_handle=preprocess_handle,
        encoder_handle=encoder_handle,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=learning_rate or configs.LEARNING_RATE,
        warmup_fraction=args.warmup_fraction,
        dropout_rate=args.dropout_rate,
        seq_length=args.seq_length,
        seed=configs.SEED,
    )
    serving_model_dir = configs.serving_model_dir(args.output_dir)
    metadata_path = configs.metadata_path(args.output_dir)
    os.makedirs(os.path.dirname(metadata_path), exist_ok=True)

    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=configs.pipeline_root(args.output_dir),
        data_root=os.path.abspath(data_root),
        train_split_buckets=configs.TRAIN_SPLIT_BUCKETS,
        test_split=configs.TEST_SPLIT,
        training=training,
        train_num_steps=args.train_steps,
        eval_num_steps=args.eval_steps,
        eval_accuracy_threshold=args.accuracy_threshold,
        eval_max_accuracy_drop=args.max_accuracy_drop,
        serving_model_dir=serving_model_dir,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=args.beam_arg,
    )
    logging.info("Running %s with %s", configs.PIPELINE_NAME, dataclasses.asdict(training))
    before = _latest_or_none(predict, serving_model_dir)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    after = _latest_or_none(predict, serving_model_dir)

    print()
    if after is None:
        print(f"No model is pushed yet in {serving_model_dir}: this run's model was not blessed.")
        return
    if after == before:
        print(f"This run's model was not blessed; the serving model is still {after}")
    else:
        print(f"Pushed model: {after}")
    for prediction in predict.classify(after, ["This movie was a delight, brilliant and moving.",
                                               "A dull, tedious film. I hated every minute."]):
        print(f"  {prediction.probability:.3f}  {prediction.label:<8}  {prediction.text}")


def _latest_or_none(predict, serving_model_dir: str) -> str | None:
    try:
        return predict.latest_pushed_model(serving_model_dir)
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    main()
