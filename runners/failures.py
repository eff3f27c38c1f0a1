"""What a stopped run tells a person: one line (the component, the project's own message naming the file and the
fix, the log file) and an exit code by kind of failure. The traceback goes to the log only.

`EXIT_CODES` is the table of exit codes; docs/reliability.md ("What a failed run says") shows it, and a test keeps
the two equal.
"""

from __future__ import annotations

import errno
import re
import signal
import sys
from collections.abc import Iterator

from runners.run_lock import EXIT_CODE as LOCKED  # another run holds the output directory

CONFIG, DATA, VALIDATION, MODEL, STORAGE, OTHER = 2, 3, 4, 5, 6, 1
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # the shells' convention: 130, 143

# exit code -> what stopped the run (docs/reliability.md's table, in this order)
EXIT_CODES: dict[int, str] = {
    CONFIG: "a flag or setting, an encoder that cannot serve",
    DATA: "the data",
    VALIDATION: "validation",
    MODEL: "the model",
    STORAGE: "storage",
    OTHER: "anything else",
    LOCKED: "the run lock",
    INTERRUPTED: "an interrupt (Ctrl-C, SIGINT)",
    TERMINATED: "a termination (`kill`, SIGTERM)",
}


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _disk_full(error: BaseException) -> bool:
    """ENOSPC from Python, or from TensorFlow's or SQLite's C++ (which name it only in their message)."""
    return (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        text in str(error) for text in ("No space left on device", "database or disk is full")
    )


# exit code -> the project's exceptions of that kind, by "module.Class"
KINDS: dict[int, tuple[str, ...]] = {
    VALIDATION: ("components.validation.anomalies_gate.DataValidationError", "components.validation.drift.DriftError"),
    DATA: (
        "components.ingestion.imdb_layout.ReviewFormatError",
        "components.ingestion.imdb_source.SourceError",
        "components.ingestion.imdb_spans.SpanError",
    ),
    MODEL: ("modules.serving_versions.BrokenServedModel", "modules.trainer.WarmStartError"),
    CONFIG: ("modules.encoders.EncoderError", "config.settings.ConfigError"),
    STORAGE: ("sqlite3.DatabaseError",),
}


def _is_a(error: BaseException, name: str) -> bool:
    """Whether `error` is an instance of the class `name`; a module not imported yet raised none (and is not
    imported here: a failure before TensorFlow loads is told without loading it)."""
    module, _, class_name = name.rpartition(".")
    return module in sys.modules and isinstance(error, getattr(sys.modules[module], class_name))


def _kind(error: BaseException) -> int | None:
    """The exit code of one exception of the chain, None if it is not one the project names."""
    for code, names in KINDS.items():
        if any(_is_a(error, name) for name in names):
            return code
    text = str(error)
    if _disk_full(error) or "database disk image is malformed" in text or "file is not a database" in text:
        return STORAGE
    return DATA if isinstance(error, FileNotFoundError) and "aclImdb" in text else None


def message(error: BaseException, code: int) -> str:
    """The project's own text for the failure of kind `code`, on one line."""
    text = str(error) or type(error).__name__
    if _disk_full(error):
        text = (
            "no space left on the device; free some space and rerun with --cache (finished steps are reused, "
            f"nothing was pushed half-way) [{text}]"
        )
    elif code == STORAGE and not isinstance(error, OSError):
        text = (
            f"the ML Metadata database is damaged ({text}); move its folder (<output dir>/metadata) aside and "
            f"rerun: the serving folder keeps every pushed model, and the next run is judged against the newest"
        )
    return re.sub(r"\s*\[while running '[^']*'\]", "", " ".join(text.split()))  # Beam's step suffix


def code_and_message(error: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception a run ended with."""
    for cause in _chain(error):
        code = _kind(cause)
        if code is not None:
            return code, message(cause, code)
    return OTHER, message(error, OTHER)


def printed_code(line: str) -> int | None:
    """The exit code a failure line names ("... (exit code N; ..."), None if it names none."""
    match = re.search(r"\(exit code (\d+)[;)]", line)
    return int(match[1]) if match else None
