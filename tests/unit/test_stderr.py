"""Stderr is the project's: the commands' consoles, line by line, show no TensorFlow or absl start-up lines (those
go to a log file), on success and on failure. (local_runner.py's: tests/e2e/test_console.py and test_interrupts.py.)"""

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FOREIGN = ("cudart_stub", "oneDNN", "cpu_feature_guard", "absl", "I0000", "E0000", "W0000", "WARNING")


def assert_own_lines(stderr: str, expected: list[str]) -> None:
    lines = stderr.splitlines()
    assert not [line for line in lines if any(mark in line for mark in FOREIGN)], stderr[-3000:]
    assert len(lines) == len(expected) and all(e in line for e, line in zip(expected, lines)), stderr[-3000:]


PREDICT_EMPTY = (
    "import io, sys\nfrom runners import predict\ncode = predict.main([], io.StringIO(' \\n'))\n"
    "print(code, sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))"
)


def test_predict_refuses_an_empty_input_in_one_line_before_tensorflow_loads(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "runners.predict"],
        input="",
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert_own_lines(result.stderr, ["error: no reviews in stdin: it is empty or only blank lines"])
    unreadable = subprocess.run(
        [sys.executable, "-m", "runners.predict", "--file", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreadable.returncode == 2
    assert_own_lines(unreadable.stderr, [f"error: {tmp_path}: cannot be read (Is a directory)"])
    loaded = subprocess.run(
        [sys.executable, "-c", PREDICT_EMPTY], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert loaded.stdout.strip() == "2 []", loaded.stderr[-2000:]


@pytest.mark.slow  # loads TensorFlow and TFX
def test_compiling_for_kubeflow_prints_only_its_own_lines(tmp_path):
    spec = tmp_path / "spec.json"
    result = subprocess.run(
        [
            sys.executable,
            "kubeflow_runner.py",
            "--pipeline-root",
            "gs://b/r",
            "--data",
            "gs://b/d",
            "--serving-model-dir",
            "gs://b/s",
            "--image",
            "registry.example/imdb-bert-tfx:1",
            "--output-file",
            str(spec),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_own_lines(result.stderr, [])
    assert [line.split(" ")[0] for line in result.stdout.splitlines()] == ["Training", "Pipeline"], result.stdout
    assert "cpu_feature_guard" in (tmp_path / "spec.log").read_text(), "TensorFlow's own lines are in the log"
