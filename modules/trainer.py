"""The TFX Trainer module: `run_fn` fine-tunes the Hub BERT classifier and exports it for serving.

Every hyperparameter arrives in the Trainer's `custom_config` (see `TrainingConfig`), so the pipeline's
configs and the runners' flags set them. Training length: `TrainArgs.num_steps`, when set, is the total
number of optimizer steps, spread over `epochs`; when unset, each epoch is one pass over the train split.
`EvalArgs.num_steps`, when unset, means one pass over the eval split.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from typing import Any

import tensorflow as tf
from absl import logging
from official.nlp import optimization
from tfx import v1 as tfx

from modules import model as model_lib

TRAINING_HISTORY_PLOT = "training_history.png"


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyperparameters of the fine-tuning; defaults are the tutorial's."""

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


def count_examples(file_patterns: list[str]) -> int:
    """Number of records in the gzipped TFRecord files matching `file_patterns`."""
    dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def make_dataset(file_patterns: list[str], batch_size: int, *, shuffle: bool, seed: int,
                 shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """(text, label) batches from gzipped tf.Example TFRecords, repeated forever."""
    dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return (dataset.repeat()
            .batch(batch_size)
            .map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


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


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: fine-tunes, writes TensorBoard logs and a plot, exports the model."""
    config = TrainingConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)

    if fn_args.train_steps:
        steps_per_epoch = math.ceil(fn_args.train_steps / config.epochs)
    else:
        steps_per_epoch = math.ceil(count_examples(fn_args.train_files) / config.batch_size)
    validation_steps = fn_args.eval_steps or math.ceil(count_examples(fn_args.eval_files) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    logging.info("Training %d epochs x %d steps (batch %d), validating on %d batches",
                 config.epochs, steps_per_epoch, config.batch_size, validation_steps)

    train_dataset = make_dataset(fn_args.train_files, config.batch_size, shuffle=True, seed=config.seed,
                                 shuffle_buffer=config.shuffle_buffer)
    eval_dataset = make_dataset(fn_args.eval_files, config.batch_size, shuffle=False, seed=config.seed)

    classifier = model_lib.build_classifier(
        config.preprocess_handle, config.encoder_handle,
        seq_length=config.seq_length, dropout_rate=config.dropout_rate)
    optimizer = optimization.create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(config.warmup_fraction * total_steps),
        optimizer_type="adamw",
    )
    classifier.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    classifier.summary(print_fn=logging.info)
    history = classifier.fit(
        train_dataset,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=validation_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=1 if sys.stdout.isatty() else 2,  # progress bars on a terminal, a line per epoch in logs
    )
    plot_history(history.history, os.path.join(fn_args.model_run_dir, TRAINING_HISTORY_PLOT))
    model_lib.export_serving_model(classifier, fn_args.serving_model_dir)
