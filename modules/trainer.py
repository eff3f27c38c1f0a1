"""The TFX Trainer module: `run_fn` fine-tunes the classifier (`custom_config`: a `TrainingConfig`) and exports
its best epoch. `TrainArgs.num_steps` is the total steps over `epochs`, or unset for whole passes (likewise
`EvalArgs`). Epoch backups live in a folder keyed by the configuration and the data, so a re-run after a crash
resumes from the last finished epoch, though the new Trainer execution has new output folders.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os

import tensorflow as tf
from absl import logging
from official.nlp import optimization
from tfx import v1 as tfx

from config.examples import LABEL_FEATURE, TEXT_FEATURE
from config.training import TrainingConfig, check_steps
from modules import figures, hardware, progress, serving_versions, stop_request
from modules import model as model_lib
from modules.model_interface import BEST_EPOCH_METRIC, INPUT_MASK, TRAINING_HISTORY_CSV

TRAINING_HISTORY_PLOT = "training_history.png"
BACKUP_CHECKPOINT_DIR = "checkpoint"
EPOCH_LOG = "epochs.json"
MAX_INTERLEAVED_FILES = 16
LENGTH_BUCKET_WIDTH = 32


def classifier_spec(config: TrainingConfig) -> model_lib.ClassifierSpec:
    return model_lib.ClassifierSpec(
        config.preprocess_handle,
        config.encoder_handle,
        config.seq_length,
        config.dropout_rate,
        config.truncation,
        config.attention_dropout_rate,
    )


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """Size of a split and an order-independent fingerprint of its records."""

    num_examples: int
    fingerprint: str


def _parse_batch(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    features = tf.io.parse_example(
        serialized,
        {TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string), LABEL_FEATURE: tf.io.FixedLenFeature([], tf.int64)},
    )
    return features[TEXT_FEATURE], tf.cast(features[LABEL_FEATURE], tf.float32)


def _record_files(file_patterns: list[str]) -> list[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    return files


def summarize_split(file_patterns: list[str]) -> SplitSummary:
    """Counts and fingerprints the records of the gzipped TFRecords (the same in any order and sharding)."""
    dataset = tf.data.TFRecordDataset(_record_files(file_patterns), compression_type="GZIP")
    count, digest_sum = 0, 0
    for batch in dataset.batch(4096).as_numpy_iterator():
        count += len(batch)
        digest_sum += sum(int.from_bytes(hashlib.sha256(record).digest(), "big") for record in batch)
    return SplitSummary(count, f"{count}:{digest_sum % (1 << 256):064x}")


def read_records(file_patterns: list[str]) -> tf.data.Dataset:
    """The gzipped TFRecords' records, one from each file in turn, so a prefix of the split samples every shard."""
    files = _record_files(file_patterns)
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=min(len(files), MAX_INTERLEAVED_FILES),
        block_length=1,
    )


def length_bucket_boundaries(seq_length: int) -> list[int]:
    """Token-length bucket edges (the widths batches are padded to): every LENGTH_BUCKET_WIDTH tokens, and
    seq_length."""
    return sorted({*range(LENGTH_BUCKET_WIDTH, seq_length, LENGTH_BUCKET_WIDTH), seq_length})


def _unpadded(encoder_inputs: dict[str, tf.Tensor], label: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    length = tf.reduce_sum(encoder_inputs[INPUT_MASK])
    return {name: tensor[:length] for name, tensor in encoder_inputs.items()}, label


def _length_grouped(dataset: tf.data.Dataset, batch_size: int, seq_length: int) -> tf.data.Dataset:
    """Unbatched (encoder inputs, label) pairs, unpadded, rebatched by token length (buckets of
    LENGTH_BUCKET_WIDTH), each batch padded to its bucket's upper edge: its reviews are close in length, and the
    batches come in few shapes (oneDNN builds its kernels for each new shape: a batch of any width took longer
    than a full batch of 256 tokens)."""
    edges = length_bucket_boundaries(seq_length)
    return (
        dataset.unbatch()
        .map(_unpadded, num_parallel_calls=tf.data.AUTOTUNE)
        .bucket_by_sequence_length(
            lambda inputs, label: tf.shape(inputs[INPUT_MASK])[0],
            bucket_boundaries=[edge + 1 for edge in edges],  # a length equal to an edge stays in its bucket
            bucket_batch_sizes=[batch_size] * (len(edges) + 1),
            pad_to_bucket_boundary=True,  # to the bucket's edge
        )
    )


def _tokenized(dataset: tf.data.Dataset, preprocessor: model_lib.Preprocessor) -> tf.data.Dataset:
    return dataset.map(_parse_batch, num_parallel_calls=tf.data.AUTOTUNE).map(
        lambda text, label: (preprocessor(text), label), num_parallel_calls=tf.data.AUTOTUNE
    )


def make_dataset(
    file_patterns: list[str],
    batch_size: int,
    *,
    seed: int,
    preprocessor: model_lib.Preprocessor,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Training batches, (encoder inputs, label), repeated forever: shuffled, then grouped by token length, each
    batch padded to its longest review only, as the export does."""
    dataset = read_records(file_patterns).shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = _tokenized(dataset.repeat().batch(batch_size), preprocessor)
    return _length_grouped(dataset, batch_size, preprocessor.seq_length).prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(
    file_patterns: list[str], batch_size: int, *, preprocessor: model_lib.Preprocessor, num_examples: int | None = None
) -> tf.data.Dataset:
    """Validation batches: one pass over the first `num_examples` records (None: all), grouped by token length as
    training's are (in the records' order a batch is padded to its longest review, most often the whole
    sequence length: about twice the arithmetic), tokenized once and cached in memory for the next passes."""
    dataset = read_records(file_patterns)
    if num_examples is not None:
        dataset = dataset.take(num_examples)
    dataset = _tokenized(dataset.batch(256), preprocessor)
    return _length_grouped(dataset, batch_size, preprocessor.seq_length).cache().prefetch(tf.data.AUTOTUNE)


def train_dataset(
    fn_args: tfx.components.FnArgs, config: TrainingConfig, preprocessor: model_lib.Preprocessor
) -> tf.data.Dataset:
    """The Trainer's (and the Tuner's) training batches, at the preprocessor's sequence length."""
    return make_dataset(
        fn_args.train_files,
        config.batch_size,
        seed=config.seed,
        preprocessor=preprocessor,
        shuffle_buffer=config.shuffle_buffer,
    )


def eval_dataset(
    fn_args: tfx.components.FnArgs, config: TrainingConfig, preprocessor: model_lib.Preprocessor
) -> tf.data.Dataset:
    """Validation batches: `eval_steps` batches' worth of the eval split's first records, or all of it."""
    num_eval_examples = fn_args.eval_steps * config.batch_size if fn_args.eval_steps else None
    return make_eval_dataset(
        fn_args.eval_files, config.batch_size, preprocessor=preprocessor, num_examples=num_eval_examples
    )


class StopWhenAsked(tf.keras.callbacks.Callback):
    """Stops the training at the batch's end if a stop was recorded (modules/stop_request.py): a Ctrl-C whose
    exception Python dropped still stops it within a step."""

    def on_train_batch_end(self, batch, logs=None):
        stop_request.check()

    def on_test_batch_end(self, batch, logs=None):
        stop_request.check()


class EpochLog(tf.keras.callbacks.Callback):
    """Keeps every epoch's metrics and the best epoch's weights (a tie goes to the later) so both outlive a crash:
    the weights are saved before the log naming them, and the log is rewritten whole (GCS cannot append)."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory
        self.path = os.path.join(directory, EPOCH_LOG)
        self.epochs: dict[int, dict[str, float]] = {}
        self.best_epoch: int | None = None

    def on_train_begin(self, logs=None):
        if tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path) as f:
                saved = json.load(f)
            self.epochs = {int(epoch): metrics for epoch, metrics in saved["epochs"].items()}
            self.best_epoch = saved["best_epoch"]

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = {name: float(value) for name, value in logs.items()}
        previous_best = self.best_epoch
        # An epoch run again after a crash compares with its own new metrics: it stays the best. An epoch not
        # validated after (TrainingConfig.validated_epochs) is never the best.
        validated = BEST_EPOCH_METRIC in logs
        if validated and (
            previous_best is None or logs[BEST_EPOCH_METRIC] >= self.epochs[previous_best][BEST_EPOCH_METRIC]
        ):
            self.model.save_weights(self._weights_prefix(epoch))
            self.best_epoch = epoch
        with tf.io.gfile.GFile(self.path, "w") as f:
            json.dump({"epochs": self.epochs, "best_epoch": self.best_epoch}, f)
        if previous_best is not None and previous_best != self.best_epoch:
            tf.io.gfile.rmtree(os.path.dirname(self._weights_prefix(previous_best)))

    def _weights_prefix(self, epoch: int) -> str:
        return os.path.join(self.directory, f"best_epoch_{epoch + 1}", "weights")

    def restore_best(self, model: tf.keras.Model) -> int:
        """Loads the best epoch's weights into `model`; returns that epoch (1-based)."""
        assert self.best_epoch is not None, "restore_best after at least one validated epoch"
        model.load_weights(self._weights_prefix(self.best_epoch)).expect_partial()
        return self.best_epoch + 1

    def history(self) -> dict[str, list[float]]:
        """Metric name -> one value per epoch, in epoch order (NaN where an epoch was not validated)."""
        epochs = [self.epochs[epoch] for epoch in sorted(self.epochs)]
        names = dict.fromkeys(name for metrics in epochs for name in metrics)
        return {name: [metrics.get(name, math.nan) for metrics in epochs] for name in names}


def write_history(history: dict[str, list[float]], best_epoch: int, model_run_dir: str) -> None:
    """TRAINING_HISTORY_CSV: a row per epoch (1-based) with its metrics and `best` (1 on the exported epoch); and
    TRAINING_HISTORY_PLOT: training and validation loss and accuracy per epoch as the tutorial draws them."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing to close

    with tf.io.gfile.GFile(os.path.join(model_run_dir, TRAINING_HISTORY_CSV), "w") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *history, "best"])
        for epoch, values in enumerate(zip(*history.values()), start=1):
            writer.writerow([epoch, *values, int(epoch == best_epoch)])
    epochs = range(1, len(history["loss"]) + 1)
    figure = Figure(figsize=(8, 7))
    loss_axes, accuracy_axes = figure.subplots(2, 1, sharex=True)
    for axes, metric, title in ((loss_axes, "loss", "Loss"), (accuracy_axes, "binary_accuracy", "Accuracy")):
        axes.plot(epochs, history[metric], "r", label=f"Training {title.lower()}")
        axes.plot(epochs, history[f"val_{metric}"], "bo-", label=f"Validation {title.lower()}")
        axes.axvline(best_epoch, color="g", linestyle="--", label=f"Best epoch ({best_epoch}, exported)")
        axes.set(title=f"Training and validation {title.lower()}", ylabel=title)
        axes.legend()
    accuracy_axes.set_xlabel("Epochs")
    figure.tight_layout()
    figures.write_png(figure, os.path.join(model_run_dir, TRAINING_HISTORY_PLOT))


def backup_dir(
    config: TrainingConfig, fn_args: tfx.components.FnArgs, train: SplitSummary, evaluation: SplitSummary
) -> str:
    """This run's backup folder: the same configuration, step counts and data give the same folder."""
    identity = {
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "backup_root"},
        "train_steps": fn_args.train_steps,
        "eval_steps": fn_args.eval_steps,
        "train": train.fingerprint,
        "eval": evaluation.fingerprint,
        "base_model": fn_args.base_model,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(config.backup_root or os.path.join(fn_args.model_run_dir, "backup"), key)


class WarmStartError(ValueError):
    """The served model's weights do not fit the classifier being trained; the message says what to change."""


def warm_start_model(config: TrainingConfig, base_model: str | None) -> str | None:
    """With --warm-start, `base_model` if it holds a served model; None otherwise (train from the encoder)."""
    if not config.warm_start:
        return None
    served_model = serving_versions.served_model(base_model)  # None: the served baseline artifact is empty
    if served_model is None:
        logging.info("--warm-start: no model is served yet, so this run trains from the pretrained encoder")
    return served_model


def restore_served_weights(classifier: model_lib.ClassifierParts, served_model: str) -> None:
    """Loads the served SavedModel's weights (its `logit_model`, which ServingModule tracks) into `classifier`."""
    checkpoint = tf.train.Checkpoint(logit_model=classifier.logit_model)
    try:
        # Every classifier weight must come from the served model; the rest (the preprocessor's tables) is not.
        status = checkpoint.read(os.path.join(served_model, "variables", "variables"))
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise WarmStartError(
            f"--warm-start: the served model {served_model} does not fit this classifier ({error}); it was "
            f"trained with another encoder or head. Train without --warm-start, or with the served model's "
            f"encoder."
        ) from error
    logging.info("Warm start: the weights of %s", served_model)


def compile_classifier(classifier: model_lib.ClassifierParts, config: TrainingConfig, total_steps: int) -> None:
    """AdamW with linear warm-up then linear decay (`official.nlp.optimization`, as the tutorial)."""
    optimizer = optimization.create_optimizer(
        init_lr=config.learning_rate,
        num_train_steps=total_steps,
        num_warmup_steps=int(config.warmup_fraction * total_steps),
        optimizer_type="adamw",
    )
    classifier.logit_model.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
    )


def distribution_and_precision(config: TrainingConfig) -> tuple[tf.distribute.Strategy, str]:
    """Mirrored over the GPUs if there are several (else the default strategy), and the precision to train in."""
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    precision = hardware.resolve_precision(config.precision)
    devices = ", ".join(d.name for d in gpus or tf.config.list_physical_devices("CPU"))
    logging.info(
        "Training with %s with %d replica(s) on %s; precision %s",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        devices,
        precision,
    )
    return strategy, precision


def epoch_steps(
    fn_args: tfx.components.FnArgs, config: TrainingConfig, train_summary: SplitSummary, eval_summary: SplitSummary
) -> int:
    """Steps per epoch: `train_steps` spread over the epochs, else one pass over the train split."""
    steps_per_epoch = (
        math.ceil(fn_args.train_steps / config.epochs)
        if fn_args.train_steps
        else math.ceil(train_summary.num_examples / config.batch_size)
    )
    validation_examples = min(eval_summary.num_examples, (fn_args.eval_steps or math.inf) * config.batch_size)
    logging.info(
        "Training %d epochs x %d steps (batch %d) on %d examples, validating on %d of %d examples",
        config.epochs,
        steps_per_epoch,
        config.batch_size,
        train_summary.num_examples,
        validation_examples,
        eval_summary.num_examples,
    )
    return steps_per_epoch


def fit_curriculum(
    classifier: model_lib.ClassifierParts,
    config: TrainingConfig,
    fn_args: tfx.components.FnArgs,
    steps_per_epoch: int,
    run_backup_dir: str,
) -> EpochLog:
    """Fits `config.epochs` epochs, one fit per sequence length of the curriculum, validating at the exported
    length after `config.validation_epochs()`; returns the log that knows the best epoch."""
    epoch_log = EpochLog(run_backup_dir)
    callbacks = [
        StopWhenAsked(),
        tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        # Logged before the backup is taken: a crash between the two repeats an epoch, never loses one.
        epoch_log,
        # Kept across the curriculum's fits (each resumes from it; a finished one runs no epoch); removed at the end.
        tf.keras.callbacks.BackupAndRestore(
            os.path.join(run_backup_dir, BACKUP_CHECKPOINT_DIR), delete_checkpoint=False
        ),
        progress.ProgressLogger(
            config.epochs,
            steps_per_epoch,
            config.batch_size,
            epoch_seq_lengths=config.epoch_seq_lengths(),
            validation_epochs=config.validation_epochs(),
        ),
    ]
    validation = eval_dataset(fn_args, config, classifier.preprocessor)  # at the exported length
    first_epoch = 0
    for seq_length, epochs in config.epoch_seq_lengths():
        preprocessor = classifier.preprocessor
        if seq_length != preprocessor.seq_length:
            preprocessor = model_lib.Preprocessor(config.preprocess_handle, seq_length, config.truncation)
        classifier.logit_model.fit(
            train_dataset(fn_args, config, preprocessor),
            initial_epoch=first_epoch,
            epochs=first_epoch + epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation,
            validation_freq=config.validation_epochs(),
            callbacks=callbacks,
            verbose=0,  # progress.ProgressLogger: a line every 30 s, on a terminal or not
        )
        first_epoch += epochs
    return epoch_log


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point: fine-tunes (from the Tuner's best `hyperparameters` and, with `warm_start`, the
    served `base_model`), writes TensorBoard logs and the history, exports the best epoch. Raises ConfigError (a
    value out of range, before any training) and WarmStartError (the served model does not fit)."""
    config = TrainingConfig.from_custom_config(fn_args.custom_config).tuned(fn_args.hyperparameters)
    if fn_args.hyperparameters:
        logging.info("Tuned by the Tuner: %s", fn_args.hyperparameters.get("values"))
    served_model = warm_start_model(config, fn_args.base_model)
    if served_model:
        config = config.warm_started()
    check_steps("train_steps", fn_args.train_steps)
    check_steps("eval_steps", fn_args.eval_steps)
    tf.keras.utils.set_random_seed(config.seed)
    strategy, precision = distribution_and_precision(config)
    train_summary, eval_summary = summarize_split(fn_args.train_files), summarize_split(fn_args.eval_files)
    steps_per_epoch = epoch_steps(fn_args, config, train_summary, eval_summary)
    with strategy.scope():
        classifier = model_lib.build_classifier(classifier_spec(config), precision)
        if served_model:
            restore_served_weights(classifier, served_model)
        compile_classifier(classifier, config, steps_per_epoch * config.epochs)
    classifier.logit_model.summary(print_fn=logging.info)

    run_backup_dir = backup_dir(config, fn_args, train_summary, eval_summary)
    if tf.io.gfile.exists(os.path.join(run_backup_dir, BACKUP_CHECKPOINT_DIR)):
        logging.info("Resuming from the backup in %s", run_backup_dir)
    tf.io.gfile.makedirs(run_backup_dir)
    epoch_log = fit_curriculum(classifier, config, fn_args, steps_per_epoch, run_backup_dir)
    best_epoch = epoch_log.restore_best(classifier.logit_model)
    logging.info(
        "Exporting the weights of epoch %d of %d, the best by %s", best_epoch, config.epochs, BEST_EPOCH_METRIC
    )
    write_history(epoch_log.history(), best_epoch, fn_args.model_run_dir)
    model_lib.export_serving_model(classifier, fn_args.serving_model_dir)
    tf.io.gfile.rmtree(run_backup_dir)
