"""What a failed run tells a person: one line (the component, the project's own message naming the file and the
fix, the log file) and an exit code by kind of failure. The traceback goes to the log only.

Exit codes (README, "Mistakes and crashes"):
  2   a flag or setting out of range, or an encoder that cannot serve (before any work)
  3   the data: a missing, damaged or refused corpus file, archive, download or span
  4   the data failed validation: anomalies against the schema, or drift beyond a bound (--stop-on-drift)
  5   the model: a served version that is not a loadable model, a warm start that cannot start
  6   storage: a full disk, a damaged ML Metadata database, a folder that cannot be written
  1   anything else (a bug: the log has the traceback)
  75  another run holds the output directory's lock
"""

from __future__ import annotations

import errno
import re
import sqlite3
from typing import Iterator

CONFIG, DATA, VALIDATION, MODEL, STORAGE, OTHER = 2, 3, 4, 5, 6, 1


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _disk_full(error: BaseException) -> bool:
    """ENOSPC from Python, or from TensorFlow's or SQLite's C++ (which name it only in their message)."""
    return (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        text in str(error) for text in ("No space left on device", "database or disk is full"))


def _kind(error: BaseException) -> int | None:
    """The exit code of one exception of the chain, None if it is not one the project names."""
    from components.anomalies_gate import DataValidationError
    from components.drift import DriftError
    from components.imdb_example_gen import ReviewFormatError
    from components.imdb_source import SourceError
    from components.imdb_spans import SpanError
    from modules.serving_versions import BrokenServedModel
    from modules.encoders import EncoderError
    from modules.trainer import WarmStartError
    from modules.training_config import ConfigError

    kinds = (((DataValidationError, DriftError), VALIDATION), ((ReviewFormatError, SourceError, SpanError), DATA),
             ((BrokenServedModel, WarmStartError), MODEL), ((EncoderError, ConfigError), CONFIG),
             ((sqlite3.DatabaseError,), STORAGE))
    for classes, code in kinds:
        if isinstance(error, classes):
            return code
    text = str(error)
    if _disk_full(error) or "database disk image is malformed" in text or "file is not a database" in text:
        return STORAGE
    return DATA if isinstance(error, FileNotFoundError) and "aclImdb" in text else None


def message(error: BaseException, code: int) -> str:
    """The project's own text for the failure of kind `code`, on one line."""
    text = str(error) or type(error).__name__
    if _disk_full(error):
        text = ("no space left on the device; free some space and rerun with --cache (finished steps are reused, "
                f"nothing was pushed half-way) [{text}]")
    elif code == STORAGE and not isinstance(error, OSError):
        text = (f"the ML Metadata database is damaged ({text}); move its folder (<output dir>/metadata) aside and "
                f"rerun: the serving folder keeps every pushed model, and the next run is judged against the newest")
    return re.sub(r"\s*\[while running '[^']*'\]", "", " ".join(text.split()))  # Beam's step suffix


def describe(error: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception a run ended with."""
    for cause in _chain(error):
        code = _kind(cause)
        if code is not None:
            return code, message(cause, code)
    return OTHER, message(error, OTHER)
