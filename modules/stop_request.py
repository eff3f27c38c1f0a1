"""A stop a person asked for (Ctrl-C, `kill`): the runner's signal handler records it here (which signal, when)
before it raises anything, so it outlives an exception Python drops (one raised in a weakref callback, a `__del__`
or a finalizer is printed as "Exception ignored in" and lost; a library catching BaseException loses it too).
Code the project runs checks it where it may stop: `check()` raises `Interrupted` if a stop is recorded.

Components and modules read it; runners/interrupts.py records it (they may not import the runners)."""

from __future__ import annotations

import dataclasses
import signal
import time


class Interrupted(KeyboardInterrupt):
    """The run was stopped by `signal_number` (SIGINT or SIGTERM); `exit_code` is the shells' 128 + its number."""

    def __init__(self, signal_number: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number


@dataclasses.dataclass(frozen=True)
class StopRequest:
    """The first stop signal of the run and when it arrived (time.time())."""

    signal_number: int
    at: float

    @property
    def name(self) -> str:
        return signal.Signals(self.signal_number).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


_requested: StopRequest | None = None


def record(signal_number: int) -> StopRequest:
    """Records a stop by `signal_number`, unless one is recorded already (the first one is the run's); returns the
    recorded one."""
    global _requested
    if _requested is None:
        _requested = StopRequest(signal_number, time.time())
    return _requested


def requested() -> StopRequest | None:
    """The stop recorded, None if none was."""
    return _requested


def clear() -> None:
    """Forgets the recorded stop: a new run starts (in the same process, as the tests run it)."""
    global _requested
    _requested = None


def check() -> None:
    """Raises `Interrupted` if a stop is recorded: the run stops here even if the signal's own exception was lost."""
    if _requested is not None:
        raise Interrupted(_requested.signal_number)
