"""Every documented exit code is the process's: docs/reliability.md's table is runners/failures.py's, and for each
code a process ends the way local_runner.py does (RunConsole, the one line, sys.exit), its log on a full device
(/dev/full: every write fails with ENOSPC, as on the full disk that once turned exit code 6 into 1). The real
failures are in tests/e2e (test_console.py, test_interrupts.py) and tests/unit/test_imdb_layout.py."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runners import failures
from tests.support.docs import docs_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def readme_exit_codes() -> dict[int, str]:
    readme = docs_text("reliability")
    table = re.search(r"^\| exit code \| what failed \| examples \|\n\| --- .*?\n((?:\|.*\n)+)", readme, re.M)[1]
    return {int(row.split("|")[1]): row.split("|")[2].strip() for row in table.splitlines()}


def test_the_readme_table_is_the_runners_table():
    assert list(readme_exit_codes().items()) == list(failures.EXIT_CODES.items())


ENDING = r"""
import importlib, sys
import local_runner
from runners import console, interrupts
kind, log = sys.argv[1:]
with console.RunConsole(log) as screen:  # as in local_runner.py, TensorFlow is imported with its output in the log
    if kind.startswith("SIG"):
        error = interrupts.Interrupted(getattr(interrupts.signal, kind))
    else:
        module, _, name = kind.rpartition(".")
        error = getattr(importlib.import_module(module), name)(f"{kind}: what went wrong; the fix")
    code, line = local_runner.stopped(screen, None, error, log, "python local_runner.py --cache")
    screen.say(line, failure=True)
sys.exit(code)
"""
# One exception of each documented kind (the first class of failures.KINDS), an interrupt of each signal, a bug.
CASES = {
    **{code: names[0] for code, names in failures.KINDS.items()},
    failures.OTHER: "builtins.RuntimeError",
    failures.INTERRUPTED: "SIGINT",
    failures.TERMINATED: "SIGTERM",
}
HEAVY = ("components.validation.anomalies_gate",)  # loads TFX: slow


@pytest.mark.parametrize(
    "code", [pytest.param(code, marks=pytest.mark.slow) if CASES[code].startswith(HEAVY) else code for code in CASES]
)
def test_the_printed_exit_code_is_the_processs_even_on_a_full_disk(code):
    result = subprocess.run(
        [sys.executable, "-c", ENDING, CASES[code], "/dev/full"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )  # TFX's import: minutes on a busy machine
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert failures.printed_code(lines[0]) == result.returncode == code, lines[0]
    if code in (failures.INTERRUPTED, failures.TERMINATED):
        assert lines[0].endswith("resume with: python local_runner.py --cache")


def test_every_documented_code_is_tested():
    assert set(CASES) | {failures.CONFIG, failures.LOCKED} == set(failures.EXIT_CODES)  # 2, 75: test_reliability.py
    assert failures.INTERRUPTED == 128 + signal.SIGINT == 130 and failures.TERMINATED == 143
