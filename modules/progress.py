"""Training progress at least every `interval` seconds, on a terminal or not (Keras prints one line per epoch when
its output is not a terminal): step / total, examples per second, elapsed time and ETA of the epoch and of the
training. Logged to `LOGGER`, which the local runner's console shows."""

from __future__ import annotations

import logging
import time

import tf_keras

LOGGER = logging.getLogger("imdb_bert_tfx.progress")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(max(0, round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class ProgressLogger(tf_keras.callbacks.Callback):
    """Logs `epoch e/E  step s/S  n ex/s  epoch elapsed (ETA)  training elapsed (ETA)` every `interval` seconds
    and at the end of each epoch, with its validation accuracy."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, interval: float = 30.0):
        super().__init__()
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size
        self.interval = interval
        self.step: int | None = None  # set when the first epoch begins (a resumed training: a later one)
        self.first_step = 0

    def on_train_begin(self, logs=None):  # once per fit: the curriculum fits each of its sequence lengths
        if self.step is None:
            self.train_start = self.last = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        if self.step is None:  # a resumed training starts at a later epoch
            self.step = self.first_step = epoch * self.steps_per_epoch
        self.epoch, self.epoch_start, self.epoch_step = epoch, time.monotonic(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.step = (self.step or 0) + 1
        self.epoch_step += 1
        if time.monotonic() - self.last >= self.interval:
            self._log()

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_binary_accuracy")
        self._log(f", validation accuracy {accuracy:.4f}" if accuracy is not None else "")

    def _log(self, suffix: str = "") -> None:
        now, step = time.monotonic(), self.step or 0
        self.last = now
        total = self.epochs * self.steps_per_epoch
        epoch_elapsed, train_elapsed = now - self.epoch_start, now - self.train_start
        rate = (step - self.first_step) / train_elapsed if train_elapsed else 0.0
        epoch_eta = (self.steps_per_epoch - self.epoch_step) / rate if rate else 0.0
        train_eta = (total - step) / rate if rate else 0.0
        LOGGER.info(
            "epoch %d/%d  step %d/%d  %.1f ex/s  epoch %s (ETA %s)  training %s (ETA %s)%s",
            self.epoch + 1,
            self.epochs,
            self.step,
            total,
            rate * self.batch_size,
            _clock(epoch_elapsed),
            _clock(epoch_eta),
            _clock(train_elapsed),
            _clock(train_eta),
            suffix,
        )
