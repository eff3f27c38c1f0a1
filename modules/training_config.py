"""`TrainingConfig` (the Trainer's `custom_config`) and `TuningConfig`: hyperparameters, defaults and allowed
ranges. No TensorFlow, so runners and the pipeline check a configuration before any work; the Trainer checks again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modules import review_text

AUTO, FLOAT32, MIXED_BFLOAT16 = "auto", "float32", "mixed_bfloat16"
PRECISIONS = (AUTO, FLOAT32, MIXED_BFLOAT16)
# The longest input any BERT on TF Hub embeds; the encoder at hand may embed fewer (checked when it loads).
MAX_SEQ_LENGTH = 512
MIN_SEQ_LENGTH = review_text.SPECIAL_TOKENS + 1
# What TFX's Tuner may set (modules/tuner.py); the Trainer takes the best values found.
TUNABLE_FIELDS = ("learning_rate", "warmup_fraction", "seq_length")


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


def check_int(field: str, value: Any, low: int, high: int | None = None) -> None:
    in_range = is_number(value) and isinstance(value, int) and low <= value and (high is None or value <= high)
    check(field, value, in_range, f"must be an integer >= {low}" + (f" and <= {high}" if high is not None else ""))


def check_unit_interval(field: str, value: Any, *, closed: bool) -> None:
    """`value` in [0, 1] (`closed`) or [0, 1)."""
    check(field, value, is_number(value) and 0 <= value and (value <= 1 if closed else value < 1),
          f"must be a number in [0, 1{']' if closed else ')'}")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The Trainer's `custom_config`; defaults are the tutorial's (`pipeline/configs.py` sets the pipeline's)."""

    preprocess_handle: str
    encoder_handle: str
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_fraction: float = 0.1
    dropout_rate: float = 0.1
    # Dropout on the encoder's attention probabilities, (batch, heads, length, length) random numbers a layer and
    # step: the costliest op of a step at long sequences on a CPU (bench/RESULTS.md). None: the encoder's own.
    attention_dropout_rate: float | None = None
    seq_length: int = 128
    # Which tokens of a review longer than seq_length are read (review_text.TRUNCATIONS).
    truncation: str = review_text.HEAD
    shuffle_buffer: int = 10_000
    seed: int = 42
    # One of PRECISIONS; "auto": mixed_bfloat16 where the hardware computes bfloat16 natively (modules/hardware.py).
    precision: str = AUTO
    # With a served model (the Trainer's base_model), fine-tune it instead of the pretrained encoder, with its
    # own learning rate and epochs (new data on a trained model needs less); without one, train as usual.
    warm_start: bool = False
    warm_start_learning_rate: float = 1e-5
    warm_start_epochs: int = 1
    # Per-run epoch backups; "" keeps them in model_run (no resume across executions).
    backup_root: str = ""

    def __post_init__(self):
        """Raises ConfigError naming the first value out of its range."""
        for field in ("preprocess_handle", "encoder_handle"):
            check(field, getattr(self, field), isinstance(getattr(self, field), str) and bool(getattr(self, field)),
                  "must name a TF Hub handle (URL) or a SavedModel folder")
        check_int("epochs", self.epochs, 1)
        check_int("warm_start_epochs", self.warm_start_epochs, 1)
        check("warm_start", self.warm_start, isinstance(self.warm_start, bool), "must be true or false")
        check_int("batch_size", self.batch_size, 1)
        for field in ("learning_rate", "warm_start_learning_rate"):
            value = getattr(self, field)
            check(field, value, is_number(value) and 0 < value < float("inf"), "must be a number > 0")
        check_unit_interval("warmup_fraction", self.warmup_fraction, closed=False)
        check_unit_interval("dropout_rate", self.dropout_rate, closed=False)
        if self.attention_dropout_rate is not None:
            check_unit_interval("attention_dropout_rate", self.attention_dropout_rate, closed=False)
        check_int("seq_length", self.seq_length, MIN_SEQ_LENGTH, MAX_SEQ_LENGTH)
        check("truncation", self.truncation, self.truncation in review_text.TRUNCATIONS,
              f"must be one of {', '.join(review_text.TRUNCATIONS)}")
        check_int("shuffle_buffer", self.shuffle_buffer, 1)
        check_int("seed", self.seed, 0)
        check("precision", self.precision, self.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}")

    def tuned(self, hyperparameters: dict[str, Any] | None) -> "TrainingConfig":
        """With the values of TFX's `best_hyperparameters` (a KerasTuner config: {"space", "values"}), if any."""
        values = (hyperparameters or {}).get("values", {})
        return dataclasses.replace(self, **{k: v for k, v in values.items() if k in TUNABLE_FIELDS})

    def warm_started(self) -> "TrainingConfig":
        """The settings a warm-started run trains with: its own learning rate and epochs."""
        return dataclasses.replace(self, learning_rate=self.warm_start_learning_rate, epochs=self.warm_start_epochs)

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any] | None) -> "TrainingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(custom_config or {}) - known)
        if unknown:
            raise ConfigError(f"Trainer custom_config has unknown keys {unknown}; known keys: {sorted(known)}")
        # A missing handle is refused by __post_init__, as an empty one is.
        return cls(**{"preprocess_handle": "", "encoder_handle": "", **(custom_config or {})})


def check_steps(field: str, steps: int | None) -> None:
    """Train or eval steps: unset (None: whole passes), or at least 1."""
    if steps is not None:
        check_int(field, steps, 1)


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """What TFX's Tuner searches: `trials` draws from the value lists (around bench/RESULTS.md's best recipe; no
    `seq_lengths`: the training's), each trained `steps` steps, scored on `eval_steps` batches (None: all)."""

    trials: int = 4
    steps: int = 100
    eval_steps: int | None = 40
    learning_rates: tuple[float, ...] = (2e-5, 3e-5, 5e-5, 8e-5)
    warmup_fractions: tuple[float, ...] = (0.06, 0.1, 0.2)
    seq_lengths: tuple[int, ...] = ()

    def __post_init__(self):
        check_int("tune_trials", self.trials, 1)
        check_int("tune_steps", self.steps, 1)
        check_steps("tune_eval_steps", self.eval_steps)
        for value in self.learning_rates:
            check("tune_learning_rates", value, is_number(value) and value > 0, "must be numbers > 0")
        for value in self.warmup_fractions:
            check_unit_interval("tune_warmup_fractions", value, closed=False)
        for value in self.seq_lengths:
            check_int("tune_seq_lengths", value, MIN_SEQ_LENGTH, MAX_SEQ_LENGTH)
        check("tune_learning_rates", self.learning_rates, bool(self.learning_rates), "must name at least one")
        check("tune_warmup_fractions", self.warmup_fractions, bool(self.warmup_fractions), "must name at least one")
