"""The Trainer's settings, `TrainingConfig` (its `custom_config`), and what TFX's Tuner searches, `TuningConfig`,
each setting declared once (`settings.setting`), with the names they are shown and tuned by. No TensorFlow:
runners check a configuration before any work; the Trainer again."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from config.settings import BOOLEAN, HANDLE, POSITIVE, ConfigError, check, check_settings, fraction, integer, setting

AUTO, FLOAT32, MIXED_BFLOAT16 = "auto", "float32", "mixed_bfloat16"
PRECISIONS = (AUTO, FLOAT32, MIXED_BFLOAT16)
# Which tokens of a review longer than the sequence are read (modules/review_text.py cuts it so).
HEAD, TAIL, HEAD_AND_TAIL = "head", "tail", "head+tail"
TRUNCATIONS = (HEAD, TAIL, HEAD_AND_TAIL)
# Special tokens bert_pack_inputs adds to one segment: [CLS] ... [SEP].
SPECIAL_TOKENS = 2
# The longest input any BERT on TF Hub embeds; the encoder at hand may embed fewer (checked when it loads).
MAX_SEQ_LENGTH = 512
MIN_SEQ_LENGTH = SPECIAL_TOKENS + 1


def check_steps(field: str, steps: int | None) -> None:
    """Train or eval steps: unset (None: whole passes), or at least 1."""
    if steps is not None:
        integer(1)(field, steps)


def length_label(epochs: int, run: Mapping[str, Any]) -> str:
    return (f"{run['train_steps']} steps in " if run.get("train_steps") else "") + f"{epochs} epochs"


def short_seq_label(short_seq_length: int, run: Mapping[str, Any]) -> str:
    epochs = run.get("short_seq_epochs", 0)
    return f"first {'epoch' if epochs == 1 else f'{epochs} epochs'} at seq {short_seq_length}" if epochs else ""


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The Trainer's `custom_config`; defaults are the tutorial's (`config/pipeline.py`'s recipes overlay some).
    Labelled fields are shown in this order; the Tuner draws the tunable ones in this order."""

    preprocess_handle: str = setting(
        help="TF Hub handle (URL or SavedModel dir) of the BERT preprocessor", bounds=HANDLE
    )
    encoder_handle: str = setting(help="TF Hub handle (URL or SavedModel dir) of the BERT encoder", bounds=HANDLE)
    truncation: str = setting(
        HEAD,
        "which tokens of a review longer than --seq-length are read",
        choices=TRUNCATIONS,
        label="seq {seq_length}, {}",
        recipe=True,
    )
    learning_rate: float = setting(
        3e-5, "peak AdamW rate", POSITIVE, label="lr {:g}", recipe=True, search=(2e-5, 3e-5, 5e-5, 8e-5)
    )  # around bench/RESULTS.md's best recipe
    warmup_fraction: float = setting(0.1, "share of steps the rate warms up in", fraction(), search=(0.06, 0.1, 0.2))
    seq_length: int = setting(
        128,
        "tokens per review, at most the encoder's position embeddings",
        integer(MIN_SEQ_LENGTH, MAX_SEQ_LENGTH),
        recipe=True,
        search=(),
    )
    epochs: int = setting(
        5, "passes over the data, or validations with --train-steps", integer(1), label=length_label, recipe=True
    )
    # A curriculum: the first epochs' steps read fewer tokens, each costing about a third of a step at 512
    # (attention grows with the square of the length); the last epochs learn from whole reviews.
    short_seq_length: int | None = setting(
        None,
        "tokens per review in the first --short-seq-epochs epochs; unset: --seq-length throughout",
        integer(MIN_SEQ_LENGTH, MAX_SEQ_LENGTH),
        label=short_seq_label,
        recipe=True,
    )
    short_seq_epochs: int = setting(0, "epochs at --short-seq-length", integer(0), recipe=True)
    # A validation pass over the whole eval split costs minutes: skip the early epochs, never the best ones.
    validated_epochs: int | None = setting(
        None,
        "validate after the last N epochs only, and export the best of them; unset: after every epoch",
        integer(1),
        label="validated after the last {}",
        recipe=True,
    )
    batch_size: int = setting(32, "examples per step", integer(1))
    dropout_rate: float = setting(0.1, "dropout before the classifier", fraction())
    # Dropout on the encoder's attention probabilities, (batch, heads, length, length) random numbers a layer and
    # step: the costliest op of a step at long sequences on a CPU (bench/RESULTS.md).
    attention_dropout_rate: float | None = setting(
        None,
        "dropout on the encoder's attention probabilities; unset: the encoder's own",
        fraction(),
        label="attention dropout {:g}",
        recipe=True,
    )
    shuffle_buffer: int = setting(10_000, "examples shuffled together", integer(1), flag=False)
    seed: int = setting(42, "seed of the weights' initialization and the shuffling", integer(0), flag=False)
    precision: str = setting(AUTO, "auto: mixed_bfloat16 where the hardware has native bfloat16", choices=PRECISIONS)
    warm_start: bool = setting(
        False,
        "fine-tune the served model (the newest pushed version) if there is one, with "
        "--warm-start-learning-rate and --warm-start-epochs",
        BOOLEAN,
        label="warm start",
    )
    warm_start_learning_rate: float = setting(
        1e-5, "peak AdamW rate of a warm start (a trained model needs less)", POSITIVE
    )
    warm_start_epochs: int = setting(1, "epochs of a warm start", integer(1))
    backup_root: str = setting(
        "", "per-run epoch backups; '' keeps them in model_run (no resume across executions)", flag=False
    )

    def __post_init__(self):
        """Raises ConfigError naming the first value out of its range."""
        check_settings(self)
        check(
            "short_seq_epochs",
            self.short_seq_epochs,
            self.short_seq_epochs < self.epochs and (self.short_seq_length is not None or not self.short_seq_epochs),
            f"must be fewer than --epochs ({self.epochs}), and 0 without --short-seq-length",
        )
        if self.short_seq_length is not None:
            check(
                "short_seq_length",
                self.short_seq_length,
                self.short_seq_length < self.seq_length,
                f"must be less than --seq-length ({self.seq_length})",
            )
        if self.validated_epochs is not None:
            check(
                "validated_epochs",
                self.validated_epochs,
                self.validated_epochs <= self.epochs,
                f"must be at most --epochs ({self.epochs})",
            )

    def epoch_seq_lengths(self) -> list[tuple[int, int]]:
        """(sequence length, epochs at it), in order: the curriculum's short epochs first, if any."""
        long = (self.seq_length, self.epochs - self.short_seq_epochs)
        short = (self.short_seq_length or self.seq_length, self.short_seq_epochs)
        return [short, long] if self.short_seq_epochs else [long]

    def validation_epochs(self) -> list[int]:
        """The epochs (1-based) validated after, the best of which is exported."""
        return list(range(self.epochs - (self.validated_epochs or self.epochs) + 1, self.epochs + 1))

    def tuned(self, hyperparameters: dict[str, Any] | None) -> TrainingConfig:
        """With the values of TFX's `best_hyperparameters` (a KerasTuner config: {"space", "values"}), if any."""
        values = (hyperparameters or {}).get("values", {})
        return dataclasses.replace(self, **{k: v for k, v in values.items() if k in TUNABLE_FIELDS})

    def warm_started(self) -> TrainingConfig:
        """The settings a warm-started run trains with: its own learning rate and epochs."""
        return dataclasses.replace(
            self,
            learning_rate=self.warm_start_learning_rate,
            epochs=self.warm_start_epochs,
            short_seq_length=None,
            short_seq_epochs=0,
            validated_epochs=None,
        )

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any] | None) -> TrainingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(custom_config or {}) - known)
        if unknown:
            raise ConfigError(f"Trainer custom_config has unknown keys {unknown}; known keys: {sorted(known)}")
        # A missing handle is refused by __post_init__, as an empty one is.
        return cls(**{"preprocess_handle": "", "encoder_handle": "", **(custom_config or {})})


TRAINING_FIELDS = {field.name: field for field in dataclasses.fields(TrainingConfig)}
# What TFX's Tuner may set (modules/tuner.py); the Trainer takes the best values found.
TUNABLE_FIELDS = tuple(name for name, field in TRAINING_FIELDS.items() if field.metadata["search"] is not None)


def describe_settings(run: Mapping[str, Any], fields: Mapping[str, dataclasses.Field] = TRAINING_FIELDS) -> str:
    """The labelled settings of `fields` that `run` (a TrainingConfig's fields, `train_steps`...) sets, in their
    order, in a few words: "seq 512, head+tail, lr 5e-05, 800 steps in 4 epochs"."""
    words = []
    for name, field in fields.items():
        label, value = field.metadata["label"], run.get(name)
        if label and value is not None and value is not False:
            words.append(label(value, run) if callable(label) else label.format(value, **run))
    return ", ".join(word for word in words if word)


def tune_flag(name: str) -> str:
    """The flag (without dashes) of the values the Tuner tries of a tunable setting: tune_learning_rates."""
    return f"tune_{name}s"


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """What TFX's Tuner searches: `trials` draws from `values` (each tunable setting's, by default its `search`),
    each trained `steps` steps, scored on `eval_steps` batches (None: all)."""

    trials: int = setting(4, "trials", integer(1))
    steps: int = setting(100, "training steps of each trial", integer(1))
    eval_steps: int | None = setting(
        40, "validation batches scoring each trial, a subset of the eval split (0: all of it)", integer(1)
    )
    values: tuple[tuple[str, tuple], ...] = tuple(
        (name, TRAINING_FIELDS[name].metadata["search"]) for name in TUNABLE_FIELDS
    )

    def __post_init__(self):
        check_settings(self, prefix="tune_")
        for name, values in self.values:
            check_value, default = TRAINING_FIELDS[name].metadata["bounds"], TRAINING_FIELDS[name].metadata["search"]
            for value in values:
                check_value(tune_flag(name), value)
            check(tune_flag(name), values, bool(values) or not default, "must name at least one")

    def custom_config(self) -> dict[str, Any]:
        """As the Tuner's custom_config holds it: trials, steps, eval_steps and each `tune_flag`'s values."""
        config = dataclasses.asdict(self)
        values = config.pop("values")
        return {**config, **{tune_flag(name).removeprefix("tune_"): list(tried) for name, tried in values}}

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any]) -> TuningConfig:
        config = dict(custom_config)
        values = tuple((name, tuple(config.pop(tune_flag(name).removeprefix("tune_")))) for name in TUNABLE_FIELDS)
        return cls(**config, values=values)
