"""Every knob of the imdb-bert-tfx pipeline with its default (its paths, `DataConfig`, `EvaluationConfig`, the
training recipes), and `PipelineConfig`: the one typed, frozen value the runners build from their flags and
`pipeline.create_pipeline` takes whole (data, training, evaluation and serving, each its own dataclass with its
checks, as Model Garden nests its experiment configs).

Paths can also be moved with environment variables (`IMDB_BERT_TFX_OUTPUT`, `IMDB_BERT_TFX_CACHE`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from config.examples import (
    EVAL_SPLIT,
    LENGTH_BUCKET_FEATURE,
    RATING_FEATURE,
    SPAN_SPEC,
    TEST_SPLIT,
    TRAIN_SPLIT,
    has_spans,
)
from config.settings import ConfigError, bounds, check_settings, fraction, integer, setting
from config.training import TRAINING_FIELDS, TrainingConfig, TuningConfig

PIPELINE_NAME = "imdb-bert-tfx"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Where pipeline artifacts, ML Metadata and pushed models go.
OUTPUT_DIR = os.environ.get("IMDB_BERT_TFX_OUTPUT", str(PROJECT_ROOT / "tfx_output"))
# Where offline defaults (synthetic corpus, locally built encoders) are built once and reused.
CACHE_DIR = os.environ.get("IMDB_BERT_TFX_CACHE", str(PROJECT_ROOT / ".cache"))
# The curated schema every split is validated against (ImportSchemaGen + ExampleValidator), and what
# DistributionValidator compares (this span vs the previous one, eval vs train) with its bounds.
SCHEMA_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "schema.pbtxt")
DRIFT_CONFIG_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "drift.pbtxt")
# aclImdb/train is divided into these splits by hash buckets of the review id (train 4 : eval 1).
TRAIN_SPLIT_BUCKETS: Mapping[str, int] = MappingProxyType({TRAIN_SPLIT: 4, EVAL_SPLIT: 1})


def download_dir(cache_dir: str = CACHE_DIR) -> str:
    """Downloaded and extracted corpus archives are cached here."""
    return os.path.join(cache_dir, "imdb")


def quick_look_dir(output_dir: str = OUTPUT_DIR) -> str:
    """The quick look (the synthetic corpus) keeps its artifacts, metadata and served models apart, here."""
    return os.path.join(output_dir, "quick-look")


def serving_model_dir(output_dir: str = OUTPUT_DIR) -> str:
    """Pushed models land in `<this>/<version>/` (TF Serving's layout)."""
    return os.path.join(output_dir, "serving_model", PIPELINE_NAME)


def pipeline_root(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "pipelines", PIPELINE_NAME)


def metadata_path(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "metadata", PIPELINE_NAME, "metadata.db")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What ImdbExampleGen reads, how it splits it, and what the data is validated against.

    `source`: an aclImdb folder ({train,test}/{pos,neg}/<id>_<rating>.txt, local or gs://...), a .tar.gz of one,
    an http(s)/file URL of the tarball, or a series of such folders with TFX's `{SPAN}` (e.g.
    gs://BUCKET/reviews/span-{SPAN}), of which a run reads the newest `spans`. aclImdb/train is divided into
    `train_split_buckets` by hash buckets of the review id; aclImdb/test is `test_split`.
    """

    source: str = setting(help="aclImdb folder, .tar.gz, or URL of the tarball", flag=False)
    sha256: str | None = setting(
        None, "expected SHA-256 of the corpus tarball (known for the official URL)", flag="data_sha256"
    )
    download_dir: str = setting(download_dir(), "where a downloaded tarball is cached and extracted", flag=False)
    train_split_buckets: Mapping[str, int] = dataclasses.field(default_factory=lambda: TRAIN_SPLIT_BUCKETS)
    test_split: str = setting(TEST_SPLIT, "split made from aclImdb/test; '' for a train-only corpus")
    spans: int | None = setting(
        None, "with --data holding {SPAN} (e.g. reviews/span-{SPAN}): read the newest K spans (default: 1)", integer(1)
    )
    schema_file: str = setting(SCHEMA_FILE, "curated schema the data must match")
    drift_config_file: str = setting(
        DRIFT_CONFIG_FILE, "what DistributionValidator compares and its bounds", flag="drift_config"
    )
    stop_on_drift: bool = setting(False, "stop before training when drift or skew is beyond a bound of --drift-config")

    def __post_init__(self):
        check_settings(self)
        if self.spans is not None and not has_spans(self.source):
            raise ConfigError(
                f"--spans {self.spans}: --data must name a series of spans with "
                f"{SPAN_SPEC}, e.g. reviews/span-{SPAN_SPEC}"
            )
        if not os.path.exists(self.drift_config_file):
            raise ConfigError(f"--drift-config {self.drift_config_file!r}: no such file")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The gate: bless only at or above `accuracy_threshold` on `split` (a model that learned nothing scores
    about 0.5), and at most `max_accuracy_drop` below the served model (TFMA ignores this on the first run).
    Metrics are also reported per value of each of `slice_features`. The test split is evaluated by a second
    Evaluator, for the report only."""

    accuracy_threshold: float = setting(0.7, "bless only at or above this eval accuracy", fraction(closed=True))
    max_accuracy_drop: float = setting(
        0.02, "bless only if at most this far below the served model's accuracy", fraction(closed=True)
    )
    split: str = setting(EVAL_SPLIT, "split the gate evaluates", bounds(bool, "must name a split"), flag=False)
    slice_features: tuple[str, ...] = setting(
        (LENGTH_BUCKET_FEATURE, RATING_FEATURE),
        "comma-separated example features to report metrics per value of ('' for the overall slice only)",
    )

    def __post_init__(self):
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline: where it writes (`root`, local path or gs://...), its data, the Trainer's settings
    (`training`, its custom_config: encoder handles and hyperparameters), TFX's Tuner first with `tuning`, the
    gate, and `serving_model_dir`, where blessed models are pushed whole to `<this>/<version>/`. `beam_args` go to
    the Beam-based components; `enable_cache` reuses finished executions whose inputs and properties are
    unchanged."""

    root: str
    data: DataConfig
    training: TrainingConfig
    serving_model_dir: str
    evaluation: EvaluationConfig = EvaluationConfig()
    train_steps: int | None = setting(
        None, "total optimizer steps (unset: --epochs passes over the train split)", integer(1), recipe=True
    )
    # From the eval split's first (label-mixed) records; the Evaluator scores the exported epoch on all of it.
    eval_steps: int | None = setting(
        None,
        "validation batches per epoch, the eval split's first records (0: the whole eval split)",
        integer(1),
        label="validated on {} batches",
        recipe=True,
    )
    tuning: TuningConfig | None = None
    beam_args: tuple[str, ...] = ()
    enable_cache: bool = False
    name: str = PIPELINE_NAME

    def __post_init__(self):
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        check_settings(self)
        schema_file, slice_features = self.data.schema_file, self.evaluation.slice_features
        if not os.path.exists(schema_file):  # the Kubeflow image's path may not be here
            return
        try:  # every slice feature must be a feature of the schema the data is validated against
            with open(schema_file, encoding="utf-8") as f:
                features = {feature.name for feature in text_format.Parse(f.read(), schema_pb2.Schema()).feature}
        except (OSError, text_format.ParseError) as error:
            raise ConfigError(f"--schema-file {schema_file!r}: cannot be read as a schema ({error})") from error
        unknown = [f for f in slice_features if f not in features]
        if unknown:
            raise ConfigError(
                f"--slice-features {','.join(slice_features)!r}: {', '.join(unknown)} "
                f"not in the schema {schema_file}; allowed: {', '.join(sorted(features))}"
            )


# Overlays of the settings declared `recipe` (TrainingConfig's and PipelineConfig's; a flag wins over them), each
# measured on the real train archive with the offline MiniLM (their accuracy and time: bench/RESULTS.md, "Time to
# accuracy", and docs/training.md's recipe table). "best": 900 steps of 32, the first of 5 epochs on reviews cut to
# 128 tokens (a cheaper step), the last 4 on 512 tokens of each review's head and tail (the whole review, nearly
# always), lr 5e-5, no attention dropout (drawing its random masks cost much of a step at 512 tokens), validated on
# the whole eval split after the last 2 epochs, the better exported (a 40-batch subset's standard error is larger
# than the epochs' differences: it picks the wrong one).
# "two-pass": 1,250 steps all at 512 with the encoder's attention dropout, validated after each fifth: the most
# accurate, at about three times the time. "fast": 256 tokens, one pass.
# "tutorial": "Classify text with BERT" exactly (the fields' defaults).
# "quick-look": the synthetic offline corpus, whose short, formulaic reviews are learned within the first epoch.
RECIPES: dict[str, dict[str, Any]] = {
    "best": dict(
        seq_length=512,
        truncation="head+tail",
        learning_rate=5e-5,
        train_steps=900,
        short_seq_length=128,
        short_seq_epochs=1,
        validated_epochs=2,
        attention_dropout_rate=0.0,
    ),
    "two-pass": dict(seq_length=512, truncation="head+tail", learning_rate=5e-5, train_steps=1250),
    "fast": dict(seq_length=256, truncation="head+tail", learning_rate=5e-5, train_steps=625),
    "tutorial": {},
    "quick-look": dict(epochs=2, train_steps=30),
}
# A recipe's curriculum and validation schedule, which hold for its own epochs and length only.
SCHEDULE_FIELDS = ("short_seq_length", "short_seq_epochs", "validated_epochs")
REAL_DATA_RECIPE = "best"  # with --data (any real corpus)
SYNTHETIC_DATA_RECIPE = "quick-look"  # without it
RECIPE_FIELDS = {
    field.name: field
    for config in (TrainingConfig, PipelineConfig)
    for field in dataclasses.fields(config)
    if field.metadata.get("recipe")
}
# The settings a run is shown by (the recipe line, the run history), in this order.
LABELLED_FIELDS = {
    **TRAINING_FIELDS,
    **{field.name: field for field in dataclasses.fields(PipelineConfig) if field.metadata.get("label")},
}


def recipe(name: str) -> dict[str, Any]:
    """Every setting a recipe may set: the recipe's value, else the field's default."""
    return {name: field.default for name, field in RECIPE_FIELDS.items()} | RECIPES[name]
