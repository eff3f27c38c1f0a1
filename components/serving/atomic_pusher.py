"""A Pusher whose versions appear whole: TF Serving loads any numeric folder it sees, and TFX's Pusher copies file
by file (tensorflow/tfx#4466). This one copies into `<base>/.incomplete-<version>` (never loaded; an interrupted
push's is removed by the next), then renames it into place, never over an existing version. The rename is atomic
on POSIX filesystems; on object stores it is a copy: set TF Serving's file_system_poll_wait_seconds above a push's time.
A Ctrl-C or SIGTERM during the rename (and the pushed_model record beside it) waits until both are done.
"""

import argparse
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from modules import serving_versions, stop_request

STAGING_PREFIX = ".incomplete-"


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends (a second Ctrl-C too), then act as they would have: a push is
    never stopped between its rename and its record. Only the main thread handles signals; elsewhere, no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda number, _: received.append(number))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for arrived in dict.fromkeys(received):
            logging.warning(
                "%s arrived while a version was being published; acting on it now", signal.Signals(arrived).name
            )
            signal.raise_signal(arrived)


def push(
    model_path: str, base_directory: str, record: Callable[[str, str], None] = lambda version, path: None
) -> tuple[str, str]:
    """Publishes the SavedModel at `model_path` as a new version under `base_directory`, whole or not at all, and
    calls `record(version, path)` in the same step (no signal stops the process between the two). Returns
    (version, its path)."""
    fileio.makedirs(base_directory)
    for name in fileio.listdir(base_directory):
        if name.startswith(STAGING_PREFIX):
            stale = os.path.join(base_directory, name.rstrip("/"))
            logging.warning("Removing %s, left by an interrupted push", stale)
            fileio.rmtree(stale)
    existing = serving_versions.versions(base_directory)
    version = str(max(int(time.time()), existing[-1] + 1 if existing else 0))  # one past the highest if not older
    staging = os.path.join(base_directory, STAGING_PREFIX + version)
    for directory, _, names in fileio.walk(model_path):
        relative = os.path.relpath(directory, model_path)
        target = staging if relative == "." else os.path.join(staging, relative)  # object stores keep a "./"
        fileio.makedirs(target)  # empty folders too (assets/)
        for name in names:
            fileio.copy(os.path.join(directory, name), os.path.join(target, name), overwrite=True)
    final = os.path.join(base_directory, version)
    stop_request.check()  # a stop whose exception was dropped in the copy: nothing is published
    with signals_deferred():
        fileio.rename(staging, final, overwrite=False)
        record(version, final)
    return version, final


class Executor(pusher_executor.Executor):
    """TFX's Pusher (blessing check, pushed_model artifact and its properties) with an atomic filesystem push."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        stop_request.check()  # a stop whose exception was dropped before the Pusher: it publishes nothing
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], pusher_pb2.PushDestination()
        )  # filesystem: its only kind
        model_path = self.GetModelPath(input_dict)
        io_utils.copy_dir(model_path, model_push.uri)
        version, serving_path = push(
            model_path,
            destination.filesystem.base_directory,
            lambda version, path: self._MarkPushed(model_push, pushed_destination=path, pushed_version=version),
        )
        logging.info("Model version %s written whole to %s", version, serving_path)


class Pusher(tfx.components.Pusher):
    """TFX's Pusher with the atomic push (filesystem destinations)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)


def rollback(base_directory: str, version: int) -> tuple[str, str]:
    """Serves `version` again: pushes a copy of it as the new highest version (nothing is deleted, so a
    rollback is undone the same way). Returns (new version, its path)."""
    versions = serving_versions.versions(base_directory)
    if version not in versions:
        raise FileNotFoundError(
            f"{os.path.join(base_directory, str(version))}: no such version; the versions "
            f"under {base_directory} are {versions}"
        )
    return push(os.path.join(base_directory, str(version)), base_directory)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m components.serving.atomic_pusher",
        description="Make a previous pushed version the served one again: it is copied as a new highest version.",
    )
    parser.add_argument("command", choices=["rollback"])
    parser.add_argument("serving_model_dir", help="the Pusher's destination (local or gs://...)")
    parser.add_argument("version", type=int, help="the version to serve again")
    args = parser.parse_args(argv)
    try:
        new_version, path = rollback(args.serving_model_dir, args.version)
    except FileNotFoundError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(f"Version {args.version} is served again as version {new_version}: {path}")


if __name__ == "__main__":
    main()
