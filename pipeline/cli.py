"""Command-line flags shared by the runners: training and evaluation knobs, defaults from configs, and the
checks every value passes before any work (one line on stderr and exit code 2 for a bad one)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile

from modules import review_text, training_config
from components import imdb_spans
from modules.training_config import ConfigError, TrainingConfig, TuningConfig, check_int, check_steps
from pipeline import configs
from pipeline.evaluation_config import EvaluationConfig


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the flag, the value, what is allowed) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def check_writable_dir(flag: str, path: str) -> None:
    """`path` (local) exists or can be made, and a file can be written in it."""
    if "://" in path:
        return
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigError(f"{flag} {path!r}: cannot be written ({error.strerror or error}); "
                          f"give a folder you can write") from error


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Data checksum, encoder, training and evaluation flags, each defaulting to its `configs` value."""
    parser.add_argument("--data-sha256", default=configs.DATA_SHA256,
                        help="expected SHA-256 of the corpus tarball (known for the official URL)")
    parser.add_argument("--schema-file", default=None,
                        help=f"curated schema the data must match (default: {configs.SCHEMA_FILE})")
    parser.add_argument("--test-split", default=configs.TEST_SPLIT,
                        help="split made from aclImdb/test; '' for a train-only corpus (default: %(default)s)")
    parser.add_argument("--spans", type=int, default=None,
                        help="with --data holding {SPAN} (e.g. reviews/span-{SPAN}): read the newest K spans "
                             f"(default: {configs.SPANS})")
    parser.add_argument("--drift-config", default=configs.DRIFT_CONFIG_FILE,
                        help="what DistributionValidator compares and its bounds (default: %(default)s)")
    parser.add_argument("--stop-on-drift", action="store_true", default=configs.STOP_ON_DRIFT,
                        help="stop before training when drift or skew is beyond a bound of --drift-config")
    group = parser.add_argument_group("encoder")
    group.add_argument("--encoder", default=configs.ENCODER_NAME,
                       help="a TF Hub BERT by the tutorial's name, e.g. small_bert/bert_en_uncased_L-4_H-512_A-8 "
                            "(all names: modules/encoders.py)")
    group.add_argument("--preprocess-handle", default=configs.PREPROCESS_HANDLE,
                       help="TF Hub handle (URL or SavedModel dir) of the BERT preprocessor")
    group.add_argument("--encoder-handle", default=configs.ENCODER_HANDLE,
                       help="TF Hub handle (URL or SavedModel dir) of the BERT encoder")
    group = parser.add_argument_group("training")
    group.add_argument("--recipe", choices=tuple(configs.RECIPES),
                       help=f"training settings the flags below start from (default: {configs.REAL_DATA_RECIPE} "
                            f"with --data, {configs.SYNTHETIC_DATA_RECIPE} on the synthetic corpus): "
                            + "; ".join(f"{name}: {recipe.describe()}" for name, recipe in configs.RECIPES.items()))
    group.add_argument("--epochs", type=int, default=None, help="passes over the data, or validations with "
                                                                "--train-steps (default: the recipe's)")
    group.add_argument("--batch-size", type=int, default=configs.BATCH_SIZE)
    group.add_argument("--learning-rate", type=float, default=None, help="peak AdamW rate (default: the recipe's)")
    group.add_argument("--warmup-fraction", type=float, default=configs.WARMUP_FRACTION)
    group.add_argument("--dropout-rate", type=float, default=configs.DROPOUT_RATE)
    group.add_argument("--seq-length", type=int, default=None,
                       help="tokens per review, at most the encoder's position embeddings (default: the recipe's)")
    group.add_argument("--truncation", default=None, choices=review_text.TRUNCATIONS,
                       help="which tokens of a longer review are read (default: the recipe's)")
    group.add_argument("--precision", default=configs.PRECISION, choices=training_config.PRECISIONS,
                       help="auto: mixed_bfloat16 where the hardware has native bfloat16 (default: %(default)s)")
    group.add_argument("--warm-start", action="store_true", default=configs.WARM_START,
                       help="fine-tune the served model (the newest pushed version) if there is one, with "
                            "--warm-start-learning-rate and --warm-start-epochs")
    group.add_argument("--warm-start-learning-rate", type=float, default=configs.WARM_START_LEARNING_RATE)
    group.add_argument("--warm-start-epochs", type=int, default=configs.WARM_START_EPOCHS)
    group.add_argument("--train-steps", type=int, default=None,
                       help="total optimizer steps (default: the recipe's; none: --epochs passes over the train split)")
    group.add_argument("--eval-steps", type=int, default=configs.EVAL_NUM_STEPS,
                       help="validation batches per epoch; default: one pass over the eval split")
    group = parser.add_argument_group("tuning (TFX's Tuner before the Trainer; modules/tuner.py)")
    tuning = TuningConfig()
    group.add_argument("--tune", action="store_true",
                       help="search the learning rate and warm-up (and --tune-seq-lengths) first; the Trainer "
                            "trains with the best values")
    group.add_argument("--tune-trials", type=int, default=tuning.trials, help="trials (default: %(default)s)")
    group.add_argument("--tune-steps", type=int, default=tuning.steps,
                       help="training steps of each trial (default: %(default)s)")
    group.add_argument("--tune-eval-steps", type=int, default=tuning.eval_steps,
                       help="validation batches scoring each trial, a subset of the eval split (default: "
                            "%(default)s; 0: all of it)")
    group.add_argument("--tune-learning-rates", default=",".join(map(str, tuning.learning_rates)),
                       help="values tried (default: %(default)s)")
    group.add_argument("--tune-warmup-fractions", default=",".join(map(str, tuning.warmup_fractions)),
                       help="values tried (default: %(default)s)")
    group.add_argument("--tune-seq-lengths", default="",
                       help="sequence lengths tried, e.g. 256,384 (default: the training's only)")
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


def apply_recipe(args: argparse.Namespace, *, real_data: bool) -> configs.Recipe:
    """Fills every training flag left unset from `--recipe` (default: by the data); returns the recipe. A
    length flag (--epochs or --train-steps) given alone keeps its meaning: --epochs alone trains that many
    passes, not the recipe's steps."""
    args.recipe = args.recipe or (configs.REAL_DATA_RECIPE if real_data else configs.SYNTHETIC_DATA_RECIPE)
    recipe = configs.RECIPES[args.recipe]
    for field in ("seq_length", "truncation", "learning_rate"):
        if getattr(args, field) is None:
            setattr(args, field, getattr(recipe, field))
    if args.epochs is None and args.train_steps is None:
        args.epochs, args.train_steps = recipe.epochs, recipe.train_steps
    elif args.epochs is None:
        args.epochs = recipe.epochs
    return recipe


def recipe_line(args: argparse.Namespace) -> str:
    """What a run trains with, for the console: the recipe and the flags that changed it."""
    recipe = configs.RECIPES[args.recipe]
    used = configs.Recipe(args.seq_length, args.truncation, args.learning_rate, args.epochs, args.train_steps)
    changed = [f"--{f.name.replace('_', '-')} {getattr(used, f.name)}" for f in dataclasses.fields(configs.Recipe)
               if getattr(used, f.name) != getattr(recipe, f.name)]
    return f"Training recipe: {args.recipe} ({used.describe()})" + (
        f", changed by {' '.join(changed)}" if changed else "")


def checked(parser: argparse.ArgumentParser, build):
    """`build()`, with a ConfigError turned into the parser's one-line error (exit code 2)."""
    try:
        return build()
    except ConfigError as error:
        parser.error(str(error))


def evaluation_config(args: argparse.Namespace) -> EvaluationConfig:
    evaluation = EvaluationConfig(
        accuracy_threshold=args.accuracy_threshold,
        max_accuracy_drop=args.max_accuracy_drop,
        split=configs.EVAL_SPLIT,
        slice_features=tuple(f.strip() for f in args.slice_features.split(",") if f.strip()),
    )
    if os.path.exists(args.schema_file or configs.SCHEMA_FILE):  # the Kubeflow image's path may not be here
        evaluation.check_slice_features(args.schema_file or configs.SCHEMA_FILE)
    return evaluation


def pipeline_kwargs(args: argparse.Namespace, *, preprocess_handle: str, encoder_handle: str) -> dict:
    """The `create_pipeline` arguments that the shared flags set; raises ConfigError for a value out of range."""
    check_steps("train_steps", args.train_steps)
    check_steps("eval_steps", args.eval_steps)
    spans = None
    if imdb_spans.has_spans(args.data or ""):
        spans = configs.SPANS if args.spans is None else args.spans
        check_int("spans", spans, 1)
    elif args.spans is not None:
        check_int("spans", args.spans, 1)
        raise ConfigError(f"--spans {args.spans}: --data must name a series of spans with "
                          f"{imdb_spans.SPAN_SPEC}, e.g. reviews/span-{imdb_spans.SPAN_SPEC}")
    if not os.path.exists(args.drift_config):
        raise ConfigError(f"--drift-config {args.drift_config!r}: no such file")
    return dict(
        training=TrainingConfig(
            preprocess_handle=preprocess_handle,
            encoder_handle=encoder_handle,
            epochs=configs.EPOCHS if args.epochs is None else args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_fraction=args.warmup_fraction,
            dropout_rate=args.dropout_rate,
            seq_length=args.seq_length,
            truncation=args.truncation,
            seed=configs.SEED,
            precision=args.precision,
            warm_start=args.warm_start,
            warm_start_learning_rate=args.warm_start_learning_rate,
            warm_start_epochs=args.warm_start_epochs,
        ),
        data_sha256=args.data_sha256,
        schema_file=args.schema_file or configs.SCHEMA_FILE,
        train_split_buckets=configs.TRAIN_SPLIT_BUCKETS,
        test_split=args.test_split,
        train_num_steps=args.train_steps,
        eval_num_steps=args.eval_steps,
        evaluation=evaluation_config(args),
        beam_pipeline_args=args.beam_arg,
        spans=spans,
        drift_config_file=args.drift_config,
        stop_on_drift=args.stop_on_drift,
        tuning=tuning_config(args),
    )


def number_list(flag: str, text: str, kind: type) -> tuple:
    try:
        return tuple(kind(item) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers") from error


def tuning_config(args: argparse.Namespace) -> TuningConfig | None:
    """The Tuner's search and budget with --tune; None without."""
    if not args.tune:
        return None
    return TuningConfig(
        trials=args.tune_trials, steps=args.tune_steps, eval_steps=args.tune_eval_steps or None,
        learning_rates=number_list("--tune-learning-rates", args.tune_learning_rates, float),
        warmup_fractions=number_list("--tune-warmup-fractions", args.tune_warmup_fractions, float),
        seq_lengths=number_list("--tune-seq-lengths", args.tune_seq_lengths, int))
