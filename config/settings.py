"""How a setting is declared once (`setting`: a dataclass field with its help, bounds, label and search space,
which the flags, recipes, run history and Tuner read), its bounds, and `check_settings`, which checks a
configuration against them. No TensorFlow: runners check a configuration before any work; the Trainer again."""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable
from typing import Any

Bounds = Callable[[str, Any], None]  # (field, value): raises ConfigError naming the field's flag


class ConfigError(ValueError):
    """A configuration value outside its range; the message names the flag, the value and what is allowed."""


def flag(field: str) -> str:
    """The runners' flag for a configuration field."""
    return "--" + field.replace("_", "-")


def check(field: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{flag(field)} {value!r}: {allowed}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def bounds(ok: Callable[[Any], bool], allowed: str) -> Bounds:
    """The bounds of the values `ok` accepts; out of them, ConfigError "--flag value: `allowed`"."""
    return lambda field, value: check(field, value, ok(value), allowed)


def integer(low: int, high: int | None = None) -> Bounds:
    return bounds(
        lambda value: is_number(value) and isinstance(value, int) and low <= value and (high is None or value <= high),
        f"must be an integer >= {low}" + ("" if high is None else f" and <= {high}"),
    )


def fraction(*, closed: bool = False) -> Bounds:
    """[0, 1] (`closed`) or [0, 1)."""
    return bounds(
        lambda value: is_number(value) and 0 <= value and (value <= 1 if closed else value < 1),
        f"must be a number in [0, 1{']' if closed else ')'}",
    )


def one_of(choices: tuple[str, ...]) -> Bounds:
    return bounds(lambda value: value in choices, f"must be one of {', '.join(choices)}")


POSITIVE = bounds(lambda value: is_number(value) and 0 < value < math.inf, "must be a number > 0")
BOOLEAN = bounds(lambda value: isinstance(value, bool), "must be true or false")
HANDLE = bounds(
    lambda value: isinstance(value, str) and bool(value), "must name a TF Hub handle (URL) or a SavedModel folder"
)


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    bounds: Bounds | None = None,
    *,
    choices: tuple[str, ...] = (),
    label: str | Callable | None = None,
    search: tuple | None = None,
    recipe: bool = False,
    flag: str | bool = True,
    group: str = "",
) -> Any:
    """A field declared once. `default` (the type is the annotation); `help`, its runners' flag's (`flag`: the
    flag's name where it is not the field's, False for no flag); `bounds`, its check (`choices`: also the flag's);
    `label`, how the console and the run history show a value (a format string given it and, by name, the run's
    other settings, or a function of both); `search`, the values TFX's Tuner tries by default (a tunable setting;
    (): the training's value only); `recipe`: --recipe sets it (config/pipeline.py), so its flag defaults to the
    recipe's; `group`: the --help group its flag is listed in."""
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "bounds": bounds or (one_of(choices) if choices else None),
            "choices": choices,
            "label": label,
            "search": search,
            "recipe": recipe,
            "flag": flag,
            "group": group,
        },
    )


def flag_name(field: dataclasses.Field, prefix: str = "") -> str:
    """The name of the field's flag without its dashes (`prefix` + the field's, or the one `setting` names)."""
    return field.metadata["flag"] if isinstance(field.metadata.get("flag"), str) else prefix + field.name


@functools.cache
def field_types(config_class: Any) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def check_settings(config: Any, prefix: str = "") -> None:
    """Raises ConfigError naming the first field of `config` outside its bounds (None passes where it may be)."""
    for field in dataclasses.fields(config):
        value, check_value = getattr(config, field.name), field.metadata.get("bounds")
        if check_value and not (
            value is None and type(None) in typing.get_args(field_types(config.__class__)[field.name])
        ):
            check_value(flag_name(field, prefix), value)
