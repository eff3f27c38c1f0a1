"""The runners' shared flags, each made from its setting's declaration (`config.settings.setting`: type, default,
bounds, help), and `pipeline_config`, which turns them into one checked `PipelineConfig` (a bad value: one line on
stderr and exit code 2, before any work)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from config import pipeline as configs
from config import training as training_config
from config.settings import ConfigError, field_types, flag, flag_name
from config.training import TRAINING_FIELDS, TrainingConfig, TuningConfig, tune_flag
from modules import encoders

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


def value_type(config_class: type, name: str) -> Any:
    """The type of a field's values: int for `int | None`."""
    kind = field_types(config_class)[name]
    return next(t for t in typing.get_args(kind) if t is not type(None)) if isinstance(kind, types.UnionType) else kind


def add_flags(
    group,
    config_class: type,
    names: Iterable[str] | None = None,
    *,
    prefix: str = "",
    defaults: dict[str, Any] | None = None,
    title: str = "",
) -> None:
    """A flag for each field of `config_class` that has one (of `names` if given, else of --help group `title`),
    from its `setting`: its type (a tuple: comma-separated), default (`defaults`' if given; none: a required flag;
    a recipe's setting: the recipe's), choices and help."""
    for field in dataclasses.fields(config_class):
        meta = field.metadata
        if not meta.get("flag") or (field.name not in names if names is not None else meta["group"] != title):
            continue
        kind, default = value_type(config_class, field.name), (defaults or {}).get(field.name, field.default)
        name = flag(flag_name(field, prefix))
        if kind is bool:
            group.add_argument(name, action="store_true", help=meta["help"])
            continue
        if typing.get_origin(kind) is tuple:
            kind, default = str, ",".join(map(str, default))
        required, default = (
            default is dataclasses.MISSING,
            None if meta["recipe"] or default is dataclasses.MISSING else default,
        )
        shown = " (default: the recipe's)" if meta["recipe"] else "" if default is None else " (default: %(default)s)"
        group.add_argument(
            name,
            type=kind,
            default=default,
            choices=meta["choices"] or None,
            required=required,
            help=meta["help"] + shown,
        )


def listed(dest: str, text: str, kind: type) -> tuple:
    """A comma-separated flag's items, as `kind`s."""
    try:
        return tuple(kind(item.strip()) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise ConfigError(f"{flag(dest)} {text!r}: expected comma-separated numbers") from error


def flag_values(config_class: type, args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    """What the flags in `args` give the fields of `config_class` (`add_flags`'), by field name."""
    values = {}
    for field in dataclasses.fields(config_class):
        dest, kind = flag_name(field, prefix), value_type(config_class, field.name)
        if field.metadata.get("flag") and hasattr(args, dest):
            values[field.name] = getattr(args, dest)
            if typing.get_origin(kind) is tuple:
                values[field.name] = listed(dest, values[field.name], typing.get_args(kind)[0])
    return values


def add_data_flags(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    add_flags(parser, configs.DataConfig, defaults=defaults)
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        help="extra Beam pipeline option, repeatable (e.g. --beam-arg=--direct_num_workers=0)",
    )


def add_encoder_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("encoder")
    group.add_argument(
        "--encoder",
        help="a TF Hub BERT by the tutorial's name, e.g. "
        "small_bert/bert_en_uncased_L-4_H-512_A-8 (all names: modules/encoders.py)",
    )
    handles = ("preprocess_handle", "encoder_handle")
    add_flags(group, TrainingConfig, handles, defaults=dict.fromkeys(handles))


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Training flags; those a recipe sets default to None (the recipe's), the rest to their fields'."""
    group, shown = parser.add_argument_group("training"), configs.LABELLED_FIELDS
    group.add_argument(
        "--recipe",
        choices=tuple(configs.RECIPES),
        help=f"training settings the flags below start from (default: {configs.REAL_DATA_RECIPE} "
        f"with --data, {configs.SYNTHETIC_DATA_RECIPE} on the synthetic corpus): "
        + "; ".join(
            f"{name}: " + training_config.describe_settings(configs.recipe(name), shown) for name in configs.RECIPES
        ),
    )
    add_flags(group, TrainingConfig, set(TRAINING_FIELDS) - {"preprocess_handle", "encoder_handle"})
    add_flags(group, configs.PipelineConfig)


def add_tuning_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tuning (TFX's Tuner before the Trainer; modules/tuner.py)")
    group.add_argument(
        "--tune",
        action="store_true",
        help=f"search the values of "
        f"{', '.join(map(flag, training_config.TUNABLE_FIELDS))} first; the Trainer uses the best",
    )
    add_flags(group, TuningConfig, prefix="tune_")
    for name, values in TuningConfig().values:
        group.add_argument(
            flag(tune_flag(name)),
            default=",".join(map(str, values)),
            help=(f"values of {flag(name)} tried (default: {'%(default)s' if values else 'the training value only'})"),
        )


def add_model_flags(parser: argparse.ArgumentParser, data_defaults: dict[str, Any] | None = None) -> None:
    """Every flag both runners share; `data_defaults`: a runner's own defaults of DataConfig's flags."""
    add_data_flags(parser, data_defaults)
    for add in (add_encoder_flags, add_training_flags, add_tuning_flags):
        add(parser)
    add_flags(parser.add_argument_group("evaluation"), configs.EvaluationConfig)


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
    recipe = configs.recipe(name)
    used = {field: getattr(config.training if field in TRAINING_FIELDS else config, field) for field in recipe}
    # Fields a length flag put back at their defaults (`pipeline_config`) go without saying.
    lengths_given = any(used[field] != recipe[field] for field in ("epochs", "seq_length"))
    dropped = ("train_steps", *configs.SCHEDULE_FIELDS) if lengths_given else ()
    changed = [
        f"{flag(field)} {value}"
        for field, value in used.items()
        if value != recipe[field] and not (field in dropped and value == configs.RECIPE_FIELDS[field].default)
    ]
    return f"Training recipe: {name} ({training_config.describe_settings(used, configs.LABELLED_FIELDS)})" + (
        f", changed by {' '.join(changed)}" if changed else ""
    )


def pipeline_config(
    args: argparse.Namespace,
    *,
    root: str,
    data: configs.DataConfig,
    handles: encoders.EncoderHandles,
    serving_model_dir: str,
    recipe: str,
    enable_cache: bool = False,
    beam_args: tuple[str, ...] | None = None,
) -> configs.PipelineConfig:
    """The `PipelineConfig` the shared flags describe; raises ConfigError for a value out of range."""
    # The recipe with the flags given over it. A length flag given alone keeps its meaning: --epochs alone trains
    # that many passes, not the recipe's steps; --epochs or --seq-length alone, every epoch at that length, each
    # validated (the recipe's curriculum and validation schedule were fitted to its own lengths).
    given = {field: getattr(args, field) for field in configs.RECIPE_FIELDS if getattr(args, field) is not None}
    if "epochs" in given and "train_steps" not in given:
        given["train_steps"] = None
    if given.keys() & {"epochs", "seq_length"} and not given.keys() & set(configs.SCHEDULE_FIELDS):
        given |= {field: TRAINING_FIELDS[field].default for field in configs.SCHEDULE_FIELDS}
    settings = {**configs.recipe(recipe), **given}
    settings["eval_steps"] = settings["eval_steps"] or None  # --eval-steps 0: validate on the whole eval split
    trained = {name: value for name, value in settings.items() if name in TRAINING_FIELDS}
    training = TrainingConfig(
        **{
            **flag_values(TrainingConfig, args),
            **trained,
            "preprocess_handle": handles.preprocess,
            "encoder_handle": handles.encoder,
        }
    )
    evaluation = configs.EvaluationConfig(**flag_values(configs.EvaluationConfig, args))
    tuning = (
        TuningConfig(
            **{**flag_values(TuningConfig, args, "tune_"), "eval_steps": args.tune_eval_steps or None},
            values=tuple(
                (name, listed(tune_flag(name), getattr(args, tune_flag(name)), value_type(TrainingConfig, name)))
                for name in training_config.TUNABLE_FIELDS
            ),
        )
        if args.tune
        else None
    )
    return configs.PipelineConfig(
        **{**flag_values(configs.PipelineConfig, args), **{k: v for k, v in settings.items() if k not in trained}},
        root=root,
        data=data,
        training=training,
        serving_model_dir=serving_model_dir,
        evaluation=evaluation,
        tuning=tuning,
        beam_args=tuple(args.beam_arg if beam_args is None else beam_args),
        enable_cache=enable_cache,
    )


def data_config(args: argparse.Namespace, **values: Any) -> configs.DataConfig:
    """The `DataConfig` of the flags, with `values` (source, download_dir) over them."""
    return configs.DataConfig(**{**flag_values(configs.DataConfig, args), **values})
