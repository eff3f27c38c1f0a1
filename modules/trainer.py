"""The TFX Trainer module: `run_fn` fine-tunes the Hub BERT classifier and exports it for serving.

Every hyperparameter arrives in the Trainer's `custom_config` (see `TrainingConfig`), so the pipeline's
configs and the runners' flags set them. Training length: `TrainArgs.num_steps`, when set, is the total
number of optimizer steps, spread over `epochs`; when unset, each epoch is one pass over the train split.
`EvalArgs.num_steps`, when unset, means one pass over the eval split.

Training survives a crash: each epoch is backed up (`BackupAndRestore`) under `backup_root`, in a folder
keyed by the configuration and the content of the data, so re-running the pipeline after a crash resumes
from the last finished epoch, even though the new Trainer execution has new output folders.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import sys
from typing import Any

import tensorflow as tf
from absl import logging
from official.nlp import optimization
from tfx import v1 as tfx

from modules import hardware
from modules import model as model_lib

TRAINING_HISTORY_PLOT = "training_history.png"
TRAINING_HISTORY_CSV = "training_history.csv"
BACKUP_CHECKPOINT_DIR = "checkpoint"
EPOCH_LOG = "epochs.json"


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The Trainer's `custom_config`; hyperparameter defaults are the tutorial's."""

    preprocess_handle: str
    encoder_handle: str
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_fraction: float = 0.1
    dropout_rate: float = 0.1
    seq_length: int = 128
    shuffle_buffer: int = 10_000
    seed: int = 42
    # "auto" (mixed_bfloat16 where the hardware computes bfloat16 natively), "float32" or "mixed_bfloat16".
    precision: str = hardware.AUTO
    # Where per-run epoch backups live; "" keeps them in the Trainer's model_run folder (no resume across
    # executions). The pipeline sets <pipeline_root>/Trainer/backup.
    backup_root: str = ""

    @classmethod
    def from_custom_config(cls, custom_config: dict[str, Any] | None) -> "TrainingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        config = dict(custom_config or {})
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"Trainer custom_config has unknown keys {unknown}; known keys: {sorted(known)}")
        missing = [k for k in ("preprocess_handle", "encoder_handle") if not config.get(k)]
        if missing:
            raise ValueError(f"Trainer custom_config must set {missing} (TF Hub handles or SavedModel dirs)")
        return cls(**config)

    @property
    def classifier_spec(self) -> model_lib.ClassifierSpec:
        return model_lib.ClassifierSpec(self.preprocess_handle, self.encoder_handle, self.seq_length,
                                        self.dropout_rate)


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """Size of a split and an order-independent fingerprint of its records."""

    num_examples: int
    fingerprint: str


def _parse_batch(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    features = tf.io.parse_example(serialized, {
        model_lib.TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string),
        model_lib.LABEL_FEATURE: tf.io.FixedLenFeature([], tf.int64),
    })
    return features[model_lib.TEXT_FEATURE], tf.cast(features[model_lib.LABEL_FEATURE], tf.float32)


def _record_files(file_patterns: list[str]) -> list[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    return files


def summarize_split(file_patterns: list[str]) -> SplitSummary:
    """Counts the records of the gzipped TFRecord files matching `file_patterns` and fingerprints them:
    the same records in any order and sharding give the same fingerprint."""
    dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
    count, digest_sum = 0, 0
    for batch in dataset.batch(4096).as_numpy_iterator():
        count += len(batch)
        digest_sum += sum(int.from_bytes(hashlib.sha256(record).digest(), "big") for record in batch)
    return SplitSummary(count, f"{count}:{digest_sum % (1 << 256):064x}")


def make_dataset(file_patterns: list[str], batch_size: int, *, shuffle: bool, seed: int,
                 preprocessor: tf.keras.Model, shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """(encoder inputs, label) batches from gzipped tf.Example TFRecords, repeated forever. Tokenizing
    here, in parallel with training, keeps it off the training step."""
    dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return (dataset.repeat()
            .batch(batch_size)
            .map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .map(lambda text, label: (preprocessor(text), label), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


class EpochLog(tf.keras.callbacks.Callback):
    """Keeps every finished epoch's metrics in a JSON file, so the history outlives a crash and a resume.
    The file is rewritten whole each epoch (object stores such as GCS cannot append)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.epochs: dict[int, dict[str, float]] = {}

    def on_train_begin(self, logs=None):
        if tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path) as f:
                self.epochs = {int(epoch): metrics for epoch, metrics in json.load(f).items()}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = {name: float(value) for name, value in (logs or {}).items()}
        with tf.io.gfile.GFile(self.path, "w") as f:
            json.dump(self.epochs, f)

    def history(self) -> dict[str, list[float]]:
        """Metric name -> one value per epoch, in epoch order."""
        epochs = [self.epochs[epoch] for epoch in sorted(self.epochs)]
        return {name: [metrics[name] for metrics in epochs] for name in (epochs[0] if epochs else {})}


def write_history_csv(history: dict[str, list[float]], path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *history])
        for epoch, values in enumerate(zip(*history.values()), start=1):
            writer.writerow([epoch, *values])


def plot_history(history: dict[str, list[float]], path: str) -> None:
    """Draws training and validation loss and accuracy per epoch, as the tutorial does."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    figure, (loss_axes, accuracy_axes) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for axes, metric, title in ((loss_axes, "loss", "Loss"), (accuracy_axes, "binary_accuracy", "Accuracy")):
        axes.plot(epochs, history[metric], "r", label=f"Training {title.lower()}")
        if f"val_{metric}" in history:
            axes.plot(epochs, history[f"val_{metric}"], "b", label=f"Validation {title.lower()}")
        axes.set_title(f"Training and validation {title.lower()}")
        axes.set_ylabel(title)
        axes.legend()
    accuracy_axes.set_xlabel("Epochs")
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as f:
        figure.savefig(f, format="png")
    plt.close(figure)


def backup_dir(config: TrainingConfig, fn_args: tfx.components.FnArgs, train: SplitSummary,
               evaluation: SplitSummary) -> str:
    """This run's backup folder: the same configuration, step counts and data give the same folder."""
    identity = {
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "backup_root"},
        "train_steps": fn_args.train_steps, "eval_steps": fn_args.eval_steps,
        "train": train.fingerprint, "eval": evaluation.fingerprint,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(config.backup_root or os.path.join(fn_args.model_run_dir, "backup"), key)


def compile_classifier(classifier: model_lib.BertClassifier, config: TrainingConfig, total_steps: int) -> None:
    """AdamW with linear warm-up then linear decay (`official.nlp.optimization`, as the tutorial)."""
    optimizer = optimization.create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(config.warmup_fraction * total_steps),
        optimizer_type="adamw",
    )
    classifier.token_classifier.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: fine-tunes, writes TensorBoard logs and a plot, exports the model."""
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    strategy = hardware.distribution_strategy()
    precision = hardware.resolve_precision(config.precision)
    logging.info("Training with %s", hardware.describe(strategy, precision))

    train_summary, eval_summary = summarize_split(fn_args.train_files), summarize_split(fn_args.eval_files)
    steps_per_epoch = (math.ceil(fn_args.train_steps / config.epochs) if fn_args.train_steps
                       else math.ceil(train_summary.num_examples / config.batch_size))
    validation_steps = fn_args.eval_steps or math.ceil(eval_summary.num_examples / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    logging.info("Training %d epochs x %d steps (batch %d) on %d examples, validating on %d batches of %d",
                 config.epochs, steps_per_epoch, config.batch_size, train_summary.num_examples,
                 validation_steps, eval_summary.num_examples)

    with strategy.scope():
        classifier = model_lib.build_classifier(config.classifier_spec, precision)
        compile_classifier(classifier, config, total_steps)
    classifier.token_classifier.summary(print_fn=logging.info)
    train_dataset = make_dataset(fn_args.train_files, config.batch_size, shuffle=True, seed=config.seed,
                                 preprocessor=classifier.preprocessor, shuffle_buffer=config.shuffle_buffer)
    eval_dataset = make_dataset(fn_args.eval_files, config.batch_size, shuffle=False, seed=config.seed,
                                preprocessor=classifier.preprocessor)

    run_backup_dir = backup_dir(config, fn_args, train_summary, eval_summary)
    epoch_log = EpochLog(os.path.join(run_backup_dir, EPOCH_LOG))
    if tf.io.gfile.exists(os.path.join(run_backup_dir, BACKUP_CHECKPOINT_DIR)):
        logging.info("Resuming from the backup in %s", run_backup_dir)
    tf.io.gfile.makedirs(run_backup_dir)
    classifier.token_classifier.fit(
        train_dataset,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=validation_steps,
        callbacks=[
            tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
            # Logged before the backup is taken: a crash between the two repeats an epoch, never loses one.
            epoch_log,
            tf.keras.callbacks.BackupAndRestore(os.path.join(run_backup_dir, BACKUP_CHECKPOINT_DIR)),
        ],
        verbose=1 if sys.stdout.isatty() else 2,  # progress bars on a terminal, a line per epoch in logs
    )
    history = epoch_log.history()
    write_history_csv(history, os.path.join(fn_args.model_run_dir, TRAINING_HISTORY_CSV))
    plot_history(history, os.path.join(fn_args.model_run_dir, TRAINING_HISTORY_PLOT))
    model_lib.export_serving_model(classifier, fn_args.serving_model_dir)
    tf.io.gfile.rmtree(run_backup_dir)
