"""The console of a local run: a line when each component starts and ends (with what it decided), training
progress, and a summary; everything else (TFX, Beam, TensorFlow's own C++ lines) goes to the run's log file.

Inside `RunConsole`, file descriptors 1 and 2 point at the log file, so every library's output lands there
whole; `say` writes to the terminal the process started with. LocalDagRunner's "Component X is running" /
"is finished" log records and the Trainer's progress records (`modules.progress.LOGGER`) are echoed as console
lines; with `verbose`, the whole log is also copied to the console.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import typing
from collections.abc import Callable
from typing import TextIO

from absl import logging as absl_logging

from runners import interrupts

PROGRESS_LOGGER = "imdb_bert_tfx.progress"  # modules.progress.LOGGER (no TensorFlow imported here)
# No TFX hook tells a component's start: LocalDagRunner (TFX 1.21) calls each node's Launcher.launch() in a plain
# loop without listeners, and ML Metadata gets the execution only after input resolution, to be polled from another
# thread. The runner's two log records, matched by format string and node id (not parsed), are the only signal.
RUNNING, FINISHED = "Component %s is running.", "Component %s is finished."


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")
    )


def _own_stream(stream: TextIO, fd: int) -> TextIO:
    """A stream to the terminal the process started with: `stream` itself if it is not file descriptor `fd` (a
    test's redirect), else a copy of that descriptor that survives its redirection to the log file."""
    try:
        real = stream.fileno() == fd
    except (AttributeError, io.UnsupportedOperation, ValueError):
        real = False
    return os.fdopen(os.dup(fd), "w", buffering=1) if real else stream


class RunConsole(logging.Handler):
    """Routes a run's output: see the module docstring. As a logging handler, it echoes component starts and ends
    and progress records; `summarize(component_id)` says what a finished component decided or made (one line, may
    be empty)."""

    def __init__(self, log_path: str, summarize: Callable[[str], str] = lambda _: "", verbose: bool = False):
        super().__init__(logging.INFO)
        self.log_path, self.summarize, self.verbose = log_path, summarize, verbose
        self.running: str | None = None  # the component that started and has not finished
        self.finished: list[str] = []  # components that finished in this run (cached ones included), in order
        self.started: dict[str, float] = {}
        self._terminal: TextIO = sys.stdout
        self._errors: TextIO = sys.stderr

    def __enter__(self) -> RunConsole:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        sys.stdout.flush(), sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._terminal, self._errors = _own_stream(sys.stdout, 1), _own_stream(sys.stderr, 2)
        if not self.verbose:
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log_fd, 1), os.dup2(log_fd, 2)
            os.close(log_fd)
        # The whole log: to the log file (file descriptor 2 now), or with `verbose` to both.
        self._log = os.fdopen(os.dup(2), "w", buffering=1)  # the log file (with `verbose`, the console's stderr)
        full_log: list[logging.Handler] = [logging.StreamHandler(self._log)]
        if self.verbose:
            full_log.append(logging.FileHandler(self.log_path))
        for handler in full_log:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._handlers = [*full_log, self]
        for handler in self._handlers:
            logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        absl_logging.set_verbosity(absl_logging.INFO)  # else absl's flag default (WARNING) wins once parsed
        return self

    def __exit__(self, *exc_info) -> None:
        for handler in self._handlers:
            logging.getLogger().removeHandler(handler)
        # Never raises: on a full disk the log cannot take the last buffered lines, and an exception here would
        # replace the run's exit code.
        for stream in (sys.stdout, sys.stderr, self._log):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        with contextlib.suppress(OSError):
            self._log.close()
        os.dup2(self._saved[0], 1), os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        for stream, real in ((self._terminal, sys.stdout), (self._errors, sys.stderr)):
            if stream is not real:
                stream.close()
        self._terminal, self._errors = sys.stdout, sys.stderr

    @property
    def errors(self) -> TextIO:
        """The terminal's stderr (while file descriptor 2 points at the log file)."""
        return self._errors

    def say(self, line: str = "", failure: bool = False) -> None:
        """A line on the console (a failure's on its stderr), and in the log file."""
        with self.lock:  # type: ignore[union-attr]  # logging.Handler.__init__ creates it
            print(line, file=self._errors if failure else self._terminal, flush=True)
            if not self.verbose:
                with contextlib.suppress(OSError):  # a full disk: the console line is what matters
                    self._log.write(f"[console] {line}\n")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == PROGRESS_LOGGER:
            self.say(f"    {record.getMessage()}")
        if record.msg not in (RUNNING, FINISHED) or not record.args:
            return
        component, now = str(typing.cast(tuple, record.args)[0]), time.monotonic()
        if record.msg == RUNNING:
            # A stop whose exception was dropped: the next component does not start. Raised into LocalDagRunner's
            # loop (logging does not catch a handler's exception), as a signal there would have.
            interrupts.check()
            self.running, self.started[component] = component, now
            self.say(f"{time.strftime('%H:%M:%S')}  {component} ...")
            return
        self.running = None
        self.finished.append(component)
        took = duration(now - self.started.get(component, now))
        try:
            summary = self.summarize(component)
        except Exception as error:  # a summary must never fail the run
            logging.warning("No summary for %s: %s", component, error)
            summary = ""
        self.say(f"{time.strftime('%H:%M:%S')}  {component} done in {took}" + (f": {summary}" if summary else ""))
        interrupts.check()
