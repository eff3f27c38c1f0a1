"""TF Serving's layout of pushed models: numeric version folders under a base directory; the highest is served."""

from __future__ import annotations

import os


def versions(base_directory: str) -> list[int]:
    """The numeric version folders under `base_directory` (local or gs://...), in ascending order. A local folder is
    listed without TensorFlow, so that a command finds out quickly that nothing is pushed."""
    if is_local(base_directory):
        names = os.listdir(base_directory) if os.path.isdir(base_directory) else []
    else:
        import tensorflow as tf

        names = tf.io.gfile.listdir(base_directory) if tf.io.gfile.isdir(base_directory) else []
    return sorted(int(name.rstrip("/")) for name in names if name.rstrip("/").isdigit())


def is_local(path: str) -> bool:
    return "://" not in path


def holds_saved_model(path: str) -> bool:
    """tf.saved_model.contains_saved_model, without TensorFlow for a local folder."""
    if is_local(path):
        return any(os.path.isfile(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt"))
    import tensorflow as tf

    return bool(tf.saved_model.contains_saved_model(path))


def served_model(location: str | None) -> str | None:
    """The served model's folder: `location` itself if it holds a SavedModel (the served baseline's copy), else the
    highest version under it (the serving directory); None for no location or a missing or empty folder."""
    if not location or holds_saved_model(location):
        return location or None
    found = versions(location)
    return os.path.join(location, str(found[-1])) if found else None


class BrokenServedModel(ValueError):
    """A version folder in the serving directory that is not a model this project serves; the message names the
    folder and both fixes."""


def check_servable(path: str, signatures: tuple[str, ...]) -> None:
    """Raises BrokenServedModel unless `path` holds a readable SavedModel with `signatures` and its variables
    (read from saved_model.pb and the variables index, without loading the model)."""
    import tensorflow as tf
    from tensorflow.python.saved_model import loader_impl

    base, version = os.path.split(path.rstrip("/"))
    fixes = (
        f"remove that folder (or move it out of {base}), or serve a good version again with `.venv/bin/python "
        f"-m components.serving.atomic_pusher rollback {base} VERSION`"
    )
    try:
        meta_graphs = loader_impl.parse_saved_model(path).meta_graphs
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise BrokenServedModel(
            f"{path}: served version {version} is not a loadable SavedModel "
            f"({' '.join(str(error).split())[:160]}); {fixes}"
        ) from error
    missing = [s for s in signatures if not meta_graphs or s not in meta_graphs[0].signature_def]
    if missing:
        raise BrokenServedModel(f"{path}: served version {version} has no {', '.join(missing)} signature; {fixes}")
    if not tf.io.gfile.exists(os.path.join(path, "variables", "variables.index")):
        raise BrokenServedModel(
            f"{path}: served version {version} has no variables (variables/variables.index); {fixes}"
        )
