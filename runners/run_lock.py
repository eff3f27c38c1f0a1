"""One pipeline run at a time per output directory.

Two local runs on one output directory would share one SQLite ML Metadata store and one serving directory:
interleaved pushes, and executions of one run picking up the other's half-made artifacts. A run takes an
exclusive `flock` on `<output dir>/.run.lock` for its whole life; the kernel releases it when the process
ends, however it ends (a SIGKILL included), so a crash never leaves a stale lock. The holder's pid and
command line are written into the file, for the message the next run shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator

LOCK_FILE = ".run.lock"
# The runner's exit code when the lock is held: EX_TEMPFAIL, "try again later".
EXIT_CODE = 75


class RunLockHeld(RuntimeError):
    """Another run holds the output directory's lock; the message names the lock and that process."""


@contextlib.contextmanager
def hold(output_dir: str) -> Iterator[str]:
    """Holds the run lock of `output_dir` for the block; raises RunLockHeld at once if another run has it."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise RunLockHeld(
                f"{path} is held by a run in progress ({holder}); wait for it to finish, or give another --output-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}\n".encode(), 0
        )
        yield path
    finally:
        os.close(fd)  # releases the lock
