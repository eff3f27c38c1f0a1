"""The runners' shared flags and `pipeline_config`, which turns them into one checked `PipelineConfig` (a bad value:
one line on stderr and exit code 2, before any work)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable, TypeVar

from modules import encoders, review_text, training_config
from modules.training_config import ConfigError, TrainingConfig, TuningConfig
from pipeline import configs

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the flag, the value, what is allowed) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def checked(parser: argparse.ArgumentParser, build: Callable[[], T]) -> T:
    """`build()`, with a ConfigError turned into the parser's one-line error (exit code 2)."""
    try:
        return build()
    except (ConfigError, encoders.EncoderError) as error:
        parser.error(str(error))


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    data = configs.DataConfig
    parser.add_argument("--data-sha256", help="expected SHA-256 of the corpus tarball (known for the official URL)")
    parser.add_argument("--schema-file", help=f"curated schema the data must match (default: {configs.SCHEMA_FILE})")
    parser.add_argument("--test-split", default=data.test_split,
                        help="split made from aclImdb/test; '' for a train-only corpus (default: %(default)s)")
    parser.add_argument("--spans", type=int, help="with --data holding {SPAN} (e.g. reviews/span-{SPAN}): read the "
                                                  "newest K spans (default: 1)")
    parser.add_argument("--drift-config", default=configs.DRIFT_CONFIG_FILE,
                        help="what DistributionValidator compares and its bounds (default: %(default)s)")
    parser.add_argument("--stop-on-drift", action="store_true",
                        help="stop before training when drift or skew is beyond a bound of --drift-config")
    parser.add_argument("--beam-arg", action="append", default=[],
                        help="extra Beam pipeline option, repeatable (e.g. --beam-arg=--direct_num_workers=0)")


def add_encoder_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("encoder")
    group.add_argument("--encoder", help="a TF Hub BERT by the tutorial's name, e.g. "
                                         "small_bert/bert_en_uncased_L-4_H-512_A-8 (all names: modules/encoders.py)")
    group.add_argument("--preprocess-handle", help="TF Hub handle (URL or SavedModel dir) of the BERT preprocessor")
    group.add_argument("--encoder-handle", help="TF Hub handle (URL or SavedModel dir) of the BERT encoder")


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Training flags; those a recipe sets default to None (the recipe's), the rest to TrainingConfig's."""
    group = parser.add_argument_group("training")
    group.add_argument("--recipe", choices=tuple(configs.RECIPES),
                       help=f"training settings the flags below start from (default: {configs.REAL_DATA_RECIPE} "
                            f"with --data, {configs.SYNTHETIC_DATA_RECIPE} on the synthetic corpus): "
                            + "; ".join(f"{name}: {recipe.describe()}" for name, recipe in configs.RECIPES.items()))
    group.add_argument("--epochs", type=int, help="passes over the data, or validations with --train-steps "
                                                  "(default: the recipe's)")
    group.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    group.add_argument("--learning-rate", type=float, help="peak AdamW rate (default: the recipe's)")
    group.add_argument("--warmup-fraction", type=float, default=TrainingConfig.warmup_fraction)
    group.add_argument("--dropout-rate", type=float, default=TrainingConfig.dropout_rate)
    group.add_argument("--attention-dropout-rate", type=float,
                       help="dropout on the encoder's attention probabilities (default: the recipe's, else the "
                            "encoder's own)")
    group.add_argument("--seq-length", type=int,
                       help="tokens per review, at most the encoder's position embeddings (default: the recipe's)")
    group.add_argument("--truncation", choices=review_text.TRUNCATIONS,
                       help="which tokens of a longer review are read (default: the recipe's)")
    group.add_argument("--precision", default=TrainingConfig.precision, choices=training_config.PRECISIONS,
                       help="auto: mixed_bfloat16 where the hardware has native bfloat16 (default: %(default)s)")
    group.add_argument("--warm-start", action="store_true",
                       help="fine-tune the served model (the newest pushed version) if there is one, with "
                            "--warm-start-learning-rate and --warm-start-epochs")
    group.add_argument("--warm-start-learning-rate", type=float, default=TrainingConfig.warm_start_learning_rate)
    group.add_argument("--warm-start-epochs", type=int, default=TrainingConfig.warm_start_epochs)
    group.add_argument("--train-steps", type=int, help="total optimizer steps (default: the recipe's; none: "
                                                       "--epochs passes over the train split)")
    group.add_argument("--eval-steps", type=int, help="validation batches per epoch, the eval split's first "
                                                      "records (default: the recipe's; 0: the whole eval split)")


def add_tuning_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tuning (TFX's Tuner before the Trainer; modules/tuner.py)")
    tuning = TuningConfig()
    group.add_argument("--tune", action="store_true", help="search the learning rate and warm-up (and "
                                                           "--tune-seq-lengths) first; the Trainer uses the best")
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


def add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("evaluation")
    evaluation = configs.EvaluationConfig()
    group.add_argument("--accuracy-threshold", type=float, default=evaluation.accuracy_threshold,
                       help="bless only at or above this eval accuracy")
    group.add_argument("--max-accuracy-drop", type=float, default=evaluation.max_accuracy_drop,
                       help="bless only if at most this far below the served model's accuracy")
    group.add_argument("--slice-features", default=",".join(evaluation.slice_features),
                       help="comma-separated example features to report metrics per value of "
                            "(default: %(default)s; '' for the overall slice only)")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag both runners share."""
    for add in (add_data_flags, add_encoder_flags, add_training_flags, add_tuning_flags, add_evaluation_flags):
        add(parser)


def encoder_handles(args: argparse.Namespace) -> encoders.EncoderHandles | None:
    """The handles the flags name: --encoder NAME, or both explicit handles; None if neither is given."""
    if (args.preprocess_handle is None) != (args.encoder_handle is None):
        raise ConfigError("give both --preprocess-handle and --encoder-handle, or neither")
    if args.encoder and args.encoder_handle:
        raise ConfigError("give --encoder NAME or the two handles, not both")
    if args.encoder:
        return encoders.by_name(args.encoder)
    if args.encoder_handle:
        return encoders.EncoderHandles(encoder=args.encoder_handle, preprocess=args.preprocess_handle)
    return None


def recipe_name(args: argparse.Namespace, *, real_data: bool) -> str:
    return args.recipe or (configs.REAL_DATA_RECIPE if real_data else configs.SYNTHETIC_DATA_RECIPE)


def recipe_line(name: str, config: configs.PipelineConfig) -> str:
    """What a run trains with, for the console: the recipe and the flags that changed it."""
    recipe, training = configs.RECIPES[name], config.training
    used = configs.Recipe(training.seq_length, training.truncation, training.learning_rate, training.epochs,
                          config.train_steps, training.attention_dropout_rate, config.eval_steps)
    changed = [f"{training_config.flag(f.name)} {getattr(used, f.name)}" for f in dataclasses.fields(configs.Recipe)
               if getattr(used, f.name) != getattr(recipe, f.name)]
    return f"Training recipe: {name} ({used.describe()})" + (f", changed by {' '.join(changed)}" if changed else "")


def number_list(flag: str, text: str, kind: type) -> tuple:
    try:
        return tuple(kind(item) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers") from error


def pipeline_config(args: argparse.Namespace, *, root: str, data: configs.DataConfig,
                    handles: encoders.EncoderHandles, serving_model_dir: str, recipe: str,
                    enable_cache: bool = False, beam_args: tuple[str, ...] | None = None) -> configs.PipelineConfig:
    """The `PipelineConfig` the shared flags describe; raises ConfigError for a value out of range."""
    # The recipe with the flags given over it. A length flag given alone keeps its meaning: --epochs alone trains
    # that many passes, not the recipe's steps.
    given = {field.name: getattr(args, field.name) for field in dataclasses.fields(configs.Recipe)
             if getattr(args, field.name) is not None}
    if "epochs" in given and "train_steps" not in given:
        given["train_steps"] = None
    settings = dataclasses.replace(configs.RECIPES[recipe], **given)
    training = TrainingConfig(
        preprocess_handle=handles.preprocess, encoder_handle=handles.encoder, epochs=settings.epochs,
        batch_size=args.batch_size, learning_rate=settings.learning_rate, warmup_fraction=args.warmup_fraction,
        dropout_rate=args.dropout_rate, attention_dropout_rate=settings.attention_dropout_rate,
        seq_length=settings.seq_length, truncation=settings.truncation,
        precision=args.precision, warm_start=args.warm_start,
        warm_start_learning_rate=args.warm_start_learning_rate, warm_start_epochs=args.warm_start_epochs)
    evaluation = configs.EvaluationConfig(
        accuracy_threshold=args.accuracy_threshold, max_accuracy_drop=args.max_accuracy_drop,
        slice_features=tuple(f.strip() for f in args.slice_features.split(",") if f.strip()))
    tuning = TuningConfig(
        trials=args.tune_trials, steps=args.tune_steps, eval_steps=args.tune_eval_steps or None,
        learning_rates=number_list("--tune-learning-rates", args.tune_learning_rates, float),
        warmup_fractions=number_list("--tune-warmup-fractions", args.tune_warmup_fractions, float),
        seq_lengths=number_list("--tune-seq-lengths", args.tune_seq_lengths, int)) if args.tune else None
    return configs.PipelineConfig(
        root=root, data=data, training=training, serving_model_dir=serving_model_dir, evaluation=evaluation,
        train_steps=settings.train_steps, eval_steps=settings.eval_steps or None, tuning=tuning,
        beam_args=tuple(args.beam_arg if beam_args is None else beam_args), enable_cache=enable_cache)


def data_config(args: argparse.Namespace, source: str, download_dir: str, schema_file: str) -> configs.DataConfig:
    return configs.DataConfig(
        source=source, sha256=args.data_sha256, download_dir=download_dir, test_split=args.test_split,
        spans=args.spans, schema_file=schema_file, drift_config_file=args.drift_config,
        stop_on_drift=args.stop_on_drift)
