"""A Pusher whose versions appear whole: TF Serving never sees a half-copied model.

TF Serving loads any numeric folder under the model's base path as soon as it sees it, and the stock TFX
Pusher copies file by file into `<base>/<version>/` (tensorflow/tfx#4466). This executor copies into a
staging folder beside the versions, `<base>/.incomplete-<version>` (not a number, so never loaded), and
renames it to `<base>/<version>` once complete. Staging folders left by an interrupted push are removed on
the next push. An existing version is never replaced: the new version is one past the highest one there
when the clock would give an older or equal number. The rename is atomic on local and POSIX filesystems; on
object stores (gs://, s3://) it is a copy, and TF Serving's `file_system_poll_wait_seconds` should be longer
than a push takes.
"""

from __future__ import annotations

import os
import time
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

from modules import crash_points, serving_versions

STAGING_PREFIX = ".incomplete-"


def remove_incomplete_pushes(base_directory: str) -> list[str]:
    """Deletes the staging folders of interrupted pushes; returns their paths."""
    if not fileio.exists(base_directory):
        return []
    removed = []
    for name in fileio.listdir(base_directory):
        if name.startswith(STAGING_PREFIX):
            path = os.path.join(base_directory, name.rstrip("/"))
            logging.warning("Removing %s, left by an interrupted push", path)
            fileio.rmtree(path)
            removed.append(path)
    return removed


def next_version(base_directory: str, now: float | None = None) -> str:
    """The Unix time, or one past the highest existing version if that is not older."""
    existing = serving_versions.versions(base_directory)
    return str(max(int(time.time() if now is None else now), existing[-1] + 1 if existing else 0))


def copy_tree(source: str, destination: str) -> None:
    """Copies every file under `source` to `destination` (TFX's io_utils.copy_dir, file by file, with the
    `PUSHER_COPY` crash point after the first file; the order does not matter: the copy is renamed into
    place whole)."""
    files = [os.path.join(directory, name) for directory, _, names in fileio.walk(source) for name in names]
    for index, path in enumerate(files):
        target = os.path.join(destination, os.path.relpath(path, source))
        fileio.makedirs(os.path.dirname(target))
        fileio.copy(path, target, overwrite=True)
        if index == 0:
            crash_points.crash_here(crash_points.PUSHER_COPY)


def push(model_path: str, base_directory: str) -> tuple[str, str]:
    """Publishes the SavedModel at `model_path` as a new version under `base_directory`, whole or not at all.
    Returns (version, its path)."""
    fileio.makedirs(base_directory)
    remove_incomplete_pushes(base_directory)
    version = next_version(base_directory)
    staging = os.path.join(base_directory, STAGING_PREFIX + version)
    copy_tree(model_path, staging)
    final = os.path.join(base_directory, version)
    fileio.rename(staging, final, overwrite=False)
    return version, final


class Executor(pusher_executor.Executor):
    """TFX's Pusher (blessing check, pushed_model artifact and its properties) with an atomic filesystem push."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"only filesystem push destinations are supported, not {destination}")
        model_path = self.GetModelPath(input_dict)
        version, serving_path = push(model_path, destination.filesystem.base_directory)
        logging.info("Model version %s written whole to %s", version, serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


class Pusher(tfx.components.Pusher):
    """TFX's Pusher with the atomic push (filesystem destinations)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)


def rollback(base_directory: str, version: int) -> tuple[str, str]:
    """Serves `version` again: publishes a copy of it as a new, highest version (TF Serving serves the highest),
    whole, by the same staged push. Nothing is deleted, so the rollback is itself undone the same way.
    Returns (new version, its path)."""
    source = os.path.join(base_directory, str(version))
    if version not in serving_versions.versions(base_directory):
        raise FileNotFoundError(f"{source}: no such version; the versions under {base_directory} are "
                                f"{serving_versions.versions(base_directory)}")
    return push(source, base_directory)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m components.atomic_pusher",
        description="Make a previous pushed version the served one again: it is copied as a new highest version.")
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
