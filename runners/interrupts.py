"""Ctrl-C (SIGINT) and `kill` (SIGTERM) during a local run. The first one is recorded (modules/stop_request.py)
before it raises `Interrupted` wherever the main thread is (the component running stops; nothing it half-wrote is
published, as after a crash). Python drops an exception raised where it runs a weakref callback or a `__del__`, so
the run also stops at the next point it controls (each training batch, each component's start and end, the Pusher's
publishing, the run's end), and whatever exception then ends the run is told as the recorded interrupt.

A second one before the stop took effect (its exception lost, or the stop stuck) ends the process at once, with
the run's one line (`last_words`) and exit code; the kernel releases the run lock (a flock). Once the runner stops
the run (`stopping()`), further ones are noted in the log and ignored, so the console's one line, the log and the
run lock are always finished. What may not be cut in two (the Pusher's rename and record) defers signals itself
(components/serving/atomic_pusher.py)."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import NoReturn

from modules import stop_request
from runners import failures

EXIT_CODES = {signal.SIGINT: failures.INTERRUPTED, signal.SIGTERM: failures.TERMINATED}
SIGNALS = tuple(EXIT_CODES)
Interrupted = stop_request.Interrupted


def _default_last_words(error: Interrupted) -> None:
    print(
        f"{os.path.basename(sys.argv[0])}: interrupted ({error}) again before the run stopped: stopped at once "
        f"(exit code {error.exit_code})",
        file=sys.stderr,
    )


_last_words: Callable[[Interrupted], object] = _default_last_words


def _on_signal(signal_number: int, frame) -> None:
    if stop_request.requested() is None:
        stop_request.record(signal_number)  # first: the raise below may be dropped
        raise Interrupted(signal_number)
    _escalate(signal_number, frame)


def _escalate(signal_number: int, frame) -> NoReturn:
    """A signal after a stop was recorded that has not taken effect: ends the process now, with the exit code of
    the recorded stop, after `last_words`. Never returns."""
    stopping()  # a third signal while the last words are said is only noted
    request = stop_request.requested()
    assert request is not None
    code = request.exit_code
    try:
        if logging.getLogger().handlers:  # a log file (else, logging's last resort would print it on stderr)
            logging.warning(
                "%s after %s, before the run stopped: stopping at once; the main thread was at:\n%s",
                signal.Signals(signal_number).name,
                request.name,
                "".join(traceback.format_stack(frame)),
            )
        _last_words(Interrupted(request.signal_number))
    except BaseException:  # noqa: BLE001  (the process ends with the code whatever the last words did)
        if logging.getLogger().handlers:
            logging.exception("The last words of an interrupted run failed")
    finally:
        for stream in (sys.stdout, sys.stderr, *(getattr(h, "stream", None) for h in logging.getLogger().handlers)):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        os._exit(code)


def _again(signal_number: int, _frame) -> None:
    logging.warning("%s while the run stops: ignored, the run is already stopping", signal.Signals(signal_number).name)


def stopping() -> None:
    """From now on, signals no longer interrupt: the run is ending (after an interrupt or a failure)."""
    if threading.current_thread() is threading.main_thread():
        for signal_number in SIGNALS:
            signal.signal(signal_number, _again)


def check() -> None:
    """Raises `Interrupted` if a stop is recorded (the runner's own check points: components' starts and ends, the
    run's end)."""
    stop_request.check()


@contextlib.contextmanager
def last_words(say: Callable[[Interrupted], object]) -> Iterator[None]:
    """In the block, a second signal calls `say` (the run's one line) before it ends the process."""
    global _last_words
    previous, _last_words = _last_words, say
    try:
        yield
    finally:
        _last_words = previous


@contextlib.contextmanager
def trapped(until_exit: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM are recorded (for the block) and raise `Interrupted` inside the block; a second one before
    the stop took effect ends the process. The previous handlers come back after, unless the run stopped and
    `until_exit` (a command's own process): then both are ignored until the process exits, since the interpreter's
    shutdown puts the default handlers back, and a signal then would end the process with the signal's own status
    instead of the printed exit code."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread can handle signals
        yield
        return
    stop_request.clear()
    previous = {signal_number: signal.signal(signal_number, _on_signal) for signal_number in SIGNALS}
    try:
        yield
    finally:
        stopped = signal.getsignal(SIGNALS[0]) is _again
        for signal_number, handler in previous.items():
            signal.signal(signal_number, signal.SIG_IGN if until_exit and stopped else handler)
        stop_request.clear()  # the record is this block's: code run after it (a test's next run) is not stopped


def signal_name(error: BaseException) -> str:
    """The recorded stop's signal, else the interrupt's (Python's own KeyboardInterrupt: SIGINT)."""
    request = stop_request.requested()
    if request is not None:
        return request.name
    return signal.Signals(error.signal_number).name if isinstance(error, Interrupted) else "SIGINT"


def interrupted_by(error: BaseException) -> int | None:
    """The exit code of an interrupt (130 for SIGINT, also Python's own KeyboardInterrupt; 143 for SIGTERM), None
    for any other exception. While a stop is recorded, every exception is that interrupt: Beam wraps one raised in
    a DoFn in a RuntimeError, and a lost one leaves the check point's, or a failure it caused, to end the run."""
    request = stop_request.requested()
    if request is not None:
        return request.exit_code
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
