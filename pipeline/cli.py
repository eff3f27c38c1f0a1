"""Command-line flags shared by the runners: training and evaluation knobs, defaults from configs."""

from __future__ import annotations

import argparse

from pipeline import configs


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Data checksum, encoder, training and evaluation flags, each defaulting to its `configs` value."""
    parser.add_argument("--data-sha256", default=configs.DATA_SHA256,
                        help="expected SHA-256 of the corpus tarball (known for the official URL)")
    parser.add_argument("--schema-file", default=None,
                        help=f"curated schema the data must match (default: {configs.SCHEMA_FILE})")
    parser.add_argument("--test-split", default=configs.TEST_SPLIT,
                        help="split made from aclImdb/test; '' for a train-only corpus (default: %(default)s)")
    group = parser.add_argument_group("encoder")
    group.add_argument("--encoder", default=configs.ENCODER_NAME,
                       help="a TF Hub BERT by the tutorial's name, e.g. small_bert/bert_en_uncased_L-4_H-512_A-8 "
                            "(all names: modules/encoders.py)")
    group.add_argument("--preprocess-handle", default=configs.PREPROCESS_HANDLE,
                       help="TF Hub handle (URL or SavedModel dir) of the BERT preprocessor")
    group.add_argument("--encoder-handle", default=configs.ENCODER_HANDLE,
                       help="TF Hub handle (URL or SavedModel dir) of the BERT encoder")
    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=configs.EPOCHS)
    group.add_argument("--batch-size", type=int, default=configs.BATCH_SIZE)
    group.add_argument("--learning-rate", type=float, default=configs.LEARNING_RATE)
    group.add_argument("--warmup-fraction", type=float, default=configs.WARMUP_FRACTION)
    group.add_argument("--dropout-rate", type=float, default=configs.DROPOUT_RATE)
    group.add_argument("--seq-length", type=int, default=configs.SEQ_LENGTH)
    group.add_argument("--precision", default=configs.PRECISION, choices=("auto", "float32", "mixed_bfloat16"),
                       help="auto: mixed_bfloat16 where the hardware has native bfloat16 (default: %(default)s)")
    group.add_argument("--train-steps", type=int, default=configs.TRAIN_NUM_STEPS,
                       help="total optimizer steps; default: --epochs passes over the train split")
    group.add_argument("--eval-steps", type=int, default=configs.EVAL_NUM_STEPS,
                       help="validation batches per epoch; default: one pass over the eval split")
    group = parser.add_argument_group("evaluation")
    group.add_argument("--accuracy-threshold", type=float, default=configs.EVAL_ACCURACY_THRESHOLD,
                       help="bless only at or above this eval accuracy")
    group.add_argument("--max-accuracy-drop", type=float, default=configs.EVAL_MAX_ACCURACY_DROP,
                       help="bless only if at most this far below the last blessed model's accuracy")
    group.add_argument("--slice-features", default=",".join(configs.EVAL_SLICE_FEATURES),
                       help="comma-separated example features to report metrics per value of "
                            "(default: %(default)s; '' for the overall slice only)")
    parser.add_argument("--beam-arg", action="append", default=list(configs.BEAM_PIPELINE_ARGS),
                        help="extra Beam pipeline option, repeatable (e.g. --beam-arg=--runner=DataflowRunner)")


def encoder_handles(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The handles the flags name: --encoder NAME, or both explicit handles; None if neither is given."""
    from modules import encoders

    if (args.preprocess_handle is None) != (args.encoder_handle is None):
        parser.error("give both --preprocess-handle and --encoder-handle, or neither")
    if args.encoder and args.encoder_handle:
        parser.error("give --encoder NAME or the two handles, not both")
    if args.encoder:
        try:
            return encoders.by_name(args.encoder)
        except encoders.EncoderError as error:
            parser.error(str(error))
    if args.encoder_handle:
        return encoders.EncoderHandles(encoder=args.encoder_handle, preprocess=args.preprocess_handle)
    return None


def pipeline_kwargs(args: argparse.Namespace, *, preprocess_handle: str, encoder_handle: str) -> dict:
    """The `create_pipeline` arguments that the shared flags set."""
    from modules.trainer import TrainingConfig

    return dict(
        training=TrainingConfig(
            preprocess_handle=preprocess_handle,
            encoder_handle=encoder_handle,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_fraction=args.warmup_fraction,
            dropout_rate=args.dropout_rate,
            seq_length=args.seq_length,
            seed=configs.SEED,
            precision=args.precision,
        ),
        data_sha256=args.data_sha256,
        schema_file=args.schema_file or configs.SCHEMA_FILE,
        train_split_buckets=configs.TRAIN_SPLIT_BUCKETS,
        test_split=args.test_split,
        train_num_steps=args.train_steps,
        eval_num_steps=args.eval_steps,
        eval_accuracy_threshold=args.accuracy_threshold,
        eval_max_accuracy_drop=args.max_accuracy_drop,
        eval_split=configs.EVAL_SPLIT,
        eval_slice_features=tuple(f.strip() for f in args.slice_features.split(",") if f.strip()),
        beam_pipeline_args=args.beam_arg,
    )
