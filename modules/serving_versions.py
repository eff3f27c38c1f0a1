"""TF Serving's layout of pushed models: numeric version folders under a base directory (the highest one is
served). Shared by the Pusher that writes versions and the code that reads them."""

from __future__ import annotations


def versions(base_directory: str) -> list[int]:
    """The numeric version folders under `base_directory` (local or gs://...), in ascending order."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(base_directory):
        return []
    return sorted(int(name.rstrip("/")) for name in tf.io.gfile.listdir(base_directory) if name.rstrip("/").isdigit())
