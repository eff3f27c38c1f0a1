"""Named points where a test stops a pipeline process at once, for crashes that cannot be timed from outside: a
test-only plugin, the product carries no hook.

`env(point)` gives a child process the environment that arms `point`: `crash_plugin/` first on PYTHONPATH, so
its `sitecustomize` (which Python imports at start-up) patches the module holding the point right after that
module is imported. At the point the process sends itself SIGKILL (as an OOM kill would), or the signal named
by `CRASH_SIGNAL_ENV` (e.g. SIGINT: a Ctrl-C at that very point)."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from unittest import mock

CRASH_AT_ENV = "IMDB_BERT_TFX_CRASH_AT"
CRASH_SIGNAL_ENV = "IMDB_BERT_TFX_CRASH_SIGNAL"
EXAMPLE_GEN_SHARD = "example_gen.shard"  # a shard file written, not yet renamed into place
TRAINER_MID_EPOCH = "trainer.mid_epoch"  # halfway through the second epoch
PUSHER_COPY = "pusher.copy"  # the first file of a version copied, the rest not yet
PUSHER_COMMIT = "pusher.commit"  # the version copied whole, being renamed into place and recorded
PLUGIN_DIR = Path(__file__).resolve().parent / "crash_plugin"


def env(point: str, signal_name: str = "") -> dict[str, str]:
    """`os.environ` with `point` armed (and `signal_name` instead of SIGKILL), for a child process."""
    path = os.pathsep.join(p for p in (str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, CRASH_AT_ENV: point, CRASH_SIGNAL_ENV: signal_name}


def crash(point: str) -> None:
    """Sends this process SIGKILL, or the CRASH_SIGNAL_ENV signal."""
    signal_number = signal.Signals[os.environ.get(CRASH_SIGNAL_ENV) or "SIGKILL"]
    print(f"{CRASH_AT_ENV}: sending {signal_number.name} to {os.getpid()} at {point}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal_number)


def during(function: Callable, target: object, name: str, before: Callable[[int], None], after=lambda n: None):
    """`function`, calling `before(n)` and `after(n)` around the n-th call (from 1) of `target.name` it makes."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        inner, calls = getattr(target, name), [0]

        def counted(*inner_args, **inner_kwargs):
            calls[0] += 1
            before(calls[0])
            result = inner(*inner_args, **inner_kwargs)
            after(calls[0])
            return result

        with mock.patch.object(target, name, counted):
            return function(*args, **kwargs)

    return wrapped


def mid_epoch_callback(base: type, action: Callable[[], None]) -> type:
    """A subclass of the Keras callback `base` that runs `action` halfway through the second epoch."""

    class MidEpoch(base):  # type: ignore[misc, valid-type]
        def on_train_batch_end(self, batch, logs=None):
            steps = self.params["steps"]  # per epoch; the optimizer counts the steps of all epochs, resumed ones too
            if self.model.optimizer.iterations == steps + max(1, steps // 2):
                action()
            super().on_train_batch_end(batch, logs)

    return MidEpoch


def arm(point: str, module: ModuleType) -> None:
    """Patches `module` (just imported) so that the process crashes at `point`."""
    at = functools.partial(crash, point)
    if point == EXAMPLE_GEN_SHARD:
        gfile = module.tf.io.gfile
        module.write_shard = during(module.write_shard, gfile, "rename", before=lambda n: at())
    elif point == PUSHER_COPY:
        module.push = during(module.push, module.fileio, "copy", before=lambda n: None, after=lambda n: n == 1 and at())
    elif point == PUSHER_COMMIT:
        module.push = during(module.push, module.fileio, "rename", before=lambda n: at())
    elif point == TRAINER_MID_EPOCH:
        module.StopWhenAsked = mid_epoch_callback(module.StopWhenAsked, at)


MODULES = {
    EXAMPLE_GEN_SHARD: "components.ingestion.imdb_example_gen",
    PUSHER_COPY: "components.serving.atomic_pusher",
    PUSHER_COMMIT: "components.serving.atomic_pusher",
    TRAINER_MID_EPOCH: "modules.trainer",
}
