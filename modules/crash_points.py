"""Named points where a test stops the process at once: set `IMDB_BERT_TFX_CRASH_AT=<point>` for crashes that cannot
be timed from outside. The process sends itself SIGKILL (as an OOM kill would), or the signal named by
`IMDB_BERT_TFX_CRASH_SIGNAL` (e.g. SIGINT: a Ctrl-C at that very point)."""

from __future__ import annotations

import os
import signal
import sys

CRASH_AT_ENV = "IMDB_BERT_TFX_CRASH_AT"
CRASH_SIGNAL_ENV = "IMDB_BERT_TFX_CRASH_SIGNAL"
EXAMPLE_GEN_SHARD = "example_gen.shard"  # a shard file written, not yet renamed into place
TRAINER_MID_EPOCH = "trainer.mid_epoch"  # halfway through the second epoch
PUSHER_COPY = "pusher.copy"  # the first file of a version copied, the rest not yet
PUSHER_COMMIT = "pusher.commit"  # the version copied whole, being renamed into place and recorded


def armed(point: str) -> bool:
    return os.environ.get(CRASH_AT_ENV) == point


def crash_here(point: str) -> None:
    """Sends this process SIGKILL (or the CRASH_SIGNAL_ENV signal) if `point` is the armed crash point."""
    if armed(point):
        signal_number = signal.Signals[os.environ.get(CRASH_SIGNAL_ENV) or "SIGKILL"]
        print(
            f"{CRASH_AT_ENV}: sending {signal_number.name} to process {os.getpid()} at {point}",
            file=sys.stderr,
            flush=True,
        )
        os.kill(os.getpid(), signal_number)
