"""Named points where a test kills the process at once (SIGKILL, as an OOM kill would): set
`IMDB_BERT_TFX_CRASH_AT=<point>` for crashes that cannot be timed from outside."""

from __future__ import annotations

import os
import signal
import sys

CRASH_AT_ENV = "IMDB_BERT_TFX_CRASH_AT"
EXAMPLE_GEN_SHARD = "example_gen.shard"  # a shard file written, not yet renamed into place
TRAINER_MID_EPOCH = "trainer.mid_epoch"  # halfway through the second epoch
PUSHER_COPY = "pusher.copy"  # the first file of a version copied, the rest not yet


def armed(point: str) -> bool:
    return os.environ.get(CRASH_AT_ENV) == point


def crash_here(point: str) -> None:
    """Kills this process with SIGKILL if `point` is the armed crash point."""
    if armed(point):
        print(f"{CRASH_AT_ENV}: killing process {os.getpid()} at {point}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
