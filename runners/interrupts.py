"""Ctrl-C (SIGINT) and `kill` (SIGTERM) during a local run: the first one stops the run by raising `Interrupted`
wherever the main thread is (the component running stops; nothing it half-wrote is published, as after a crash),
and any further one while the run stops is noted in the log and otherwise ignored, so the stop is never cut short:
the console's one line, the log and the run lock are always finished. What may not be cut in two (the Pusher's
rename and record) defers signals itself (components/serving/atomic_pusher.py)."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import signal
import threading
from collections.abc import Iterator

from runners import failures

EXIT_CODES = {signal.SIGINT: failures.INTERRUPTED, signal.SIGTERM: failures.TERMINATED}
SIGNALS = tuple(EXIT_CODES)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by `signal_number` (one of SIGNALS), whose exit code is EXIT_CODES'."""

    def __init__(self, signal_number: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number
        self.exit_code = EXIT_CODES[signal.Signals(signal_number)]


def _first(signal_number: int, _frame) -> None:
    stopping()
    raise Interrupted(signal_number)


def _again(signal_number: int, _frame) -> None:
    logging.warning("%s while the run stops: ignored, the run is already stopping", signal.Signals(signal_number).name)


def stopping() -> None:
    """From now on, signals no longer interrupt: the run is ending (after an interrupt or a failure)."""
    if threading.current_thread() is threading.main_thread():
        for signal_number in SIGNALS:
            signal.signal(signal_number, _again)


@contextlib.contextmanager
def trapped(until_exit: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` (once) inside the block; the previous handlers come back after, unless
    the run stopped and `until_exit` (a command's own process): then both are ignored until the process exits, since
    the interpreter's shutdown puts the default handlers back, and a signal then would end the process with the
    signal's own status instead of the printed exit code."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread can handle signals
        yield
        return
    previous = {signal_number: signal.signal(signal_number, _first) for signal_number in SIGNALS}
    try:
        yield
    finally:
        stopped = signal.getsignal(SIGNALS[0]) is _again
        for signal_number, handler in previous.items():
            signal.signal(signal_number, signal.SIG_IGN if until_exit and stopped else handler)


def signal_name(error: BaseException) -> str:
    return signal.Signals(error.signal_number).name if isinstance(error, Interrupted) else "SIGINT"


def interrupted_by(error: BaseException) -> int | None:
    """The exit code of an interrupt (130 for SIGINT, also Python's own KeyboardInterrupt; 143 for SIGTERM), None
    for any other exception."""
    if isinstance(error, Interrupted):
        return error.exit_code
    return failures.INTERRUPTED if isinstance(error, KeyboardInterrupt) else None


def trainer_epochs_kept(backup_root: str) -> int:
    """How many epochs the newest Trainer backup under `backup_root` holds (modules/trainer.py's backup_dir: a rerun
    with the same settings and data resumes after them); 0 if none."""
    checkpoints = glob.glob(os.path.join(backup_root, "*", "checkpoint", "chief", "checkpoint"))
    if not checkpoints:
        return 0
    import tensorflow as tf  # loaded already: the Trainer was running

    newest = tf.train.latest_checkpoint(os.path.dirname(max(checkpoints, key=os.path.getmtime)))
    # tf_keras' BackupAndRestore saves the index of the last finished epoch with the weights.
    return int(tf.train.load_variable(newest, "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")) + 1 if newest else 0
