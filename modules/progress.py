"""Training progress at least every `interval` seconds, on a terminal or not (Keras prints one line per epoch when
its output is not a terminal): step / total, examples per second, elapsed time and ETA of the epoch and of the
training. Logged to `LOGGER`, which the local runner's console shows."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import tf_keras

LOGGER = logging.getLogger("imdb_bert_tfx.progress")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(max(0, round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class ProgressLogger(tf_keras.callbacks.Callback):
    """Logs `epoch e/E  step s/S  n ex/s  epoch elapsed (ETA)  training elapsed (ETA)` every `interval` seconds
    and at the end of each epoch, with its validation accuracy.

    The rate is the current fit's, validation passes left out: a curriculum fits each sequence length of
    `epoch_seq_lengths` ((length, epochs) in order) apart, and a step at 512 tokens costs several times one at
    128 (bench/RESULTS.md). The ETAs count the passes still to come after `validation_epochs` (1-based; None:
    every epoch) at the last pass's duration, once one was timed. While epochs at another length follow, the
    training ETA is that of this length's epochs, and the line says what follows."""

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        batch_size: int,
        interval: float = 30.0,
        *,
        epoch_seq_lengths: Sequence[tuple[int, int]] = (),
        validation_epochs: Sequence[int] | None = None,
    ):
        super().__init__()
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size
        self.interval = interval
        self.epoch_lengths = [length for length, count in epoch_seq_lengths for _ in range(count)]
        self.validation_epochs = set(range(1, epochs + 1) if validation_epochs is None else validation_epochs)
        self.step: int | None = None  # set when the first epoch begins (a resumed training: a later one)
        self.fit_first_step: int | None = None
        self.validation_seconds: float | None = None  # the last validation pass's
        self.epochs_done = 0
        self.train_start: float | None = None

    def on_train_begin(self, logs=None):  # once per fit: the curriculum fits each of its sequence lengths
        self.fit_start = self.last = time.monotonic()
        self.fit_validating = 0.0
        self.fit_first_step = self.step
        if self.train_start is None:
            self.train_start = self.fit_start

    def on_epoch_begin(self, epoch, logs=None):
        if self.step is None:  # a resumed training starts at a later epoch
            self.step = epoch * self.steps_per_epoch
        if self.fit_first_step is None:
            self.fit_first_step = self.step
        self.epoch, self.epoch_start, self.epoch_step = epoch, time.monotonic(), 0
        self.epochs_done = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.step = (self.step or 0) + 1
        self.epoch_step += 1
        if time.monotonic() - self.last >= self.interval:
            self._log()

    def on_test_begin(self, logs=None):
        self.test_start = time.monotonic()

    def on_test_end(self, logs=None):
        self.validation_seconds = time.monotonic() - self.test_start
        self.fit_validating += self.validation_seconds

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        accuracy = (logs or {}).get("val_binary_accuracy")
        self._log(f", validation accuracy {accuracy:.4f}" if accuracy is not None else "")

    def _length_of(self, epoch: int) -> int | None:
        return self.epoch_lengths[epoch] if epoch < len(self.epoch_lengths) else None

    def _validations_left(self, epochs: range) -> float:
        """Seconds of the validation passes still to come after `epochs` (0-based), if one was timed."""
        passes = sum(1 for epoch in epochs if epoch + 1 in self.validation_epochs and epoch >= self.epochs_done)
        return passes * (self.validation_seconds or 0.0)

    def _log(self, suffix: str = "") -> None:
        now, step = time.monotonic(), self.step or 0
        self.last = now
        total = self.epochs * self.steps_per_epoch
        training = now - self.fit_start - self.fit_validating
        rate = (step - (self.fit_first_step or 0)) / training if training > 0 else 0.0
        length = self._length_of(self.epoch)
        last_epoch = self.epoch  # the last epoch at this length
        while last_epoch + 1 < self.epochs and self._length_of(last_epoch + 1) == length:
            last_epoch += 1
        steps_left = (last_epoch + 1) * self.steps_per_epoch - step
        epoch_eta = (self.steps_per_epoch - self.epoch_step) / rate if rate else 0.0
        epoch_eta += self._validations_left(range(self.epoch, self.epoch + 1))
        train_eta = (steps_left / rate if rate else 0.0) + self._validations_left(range(self.epoch, last_epoch + 1))
        following = ""
        if last_epoch + 1 < self.epochs:
            later, next_length = self.epochs - last_epoch - 1, self._length_of(last_epoch + 1)
            following = f" at seq {length}, then {later} epoch{'s' * (later > 1)} at seq {next_length}"
        LOGGER.info(
            "epoch %d/%d  step %d/%d  %.1f ex/s  epoch %s (ETA %s)  training %s (ETA %s%s)%s",
            self.epoch + 1,
            self.epochs,
            step,
            total,
            rate * self.batch_size,
            _clock(now - self.epoch_start),
            _clock(epoch_eta),
            _clock(now - (self.train_start or now)),
            _clock(train_eta),
            following,
            suffix,
        )
