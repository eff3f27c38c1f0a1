"""Ctrl-C and `kill` at the keyboard: a real pipeline run (subprocess, real components, tiny offline assets) is
stopped with SIGINT and SIGTERM in StatisticsGen, the Trainer, both evaluators and the Pusher. Each stop prints
exactly one line on stderr with exit code 130 or 143, naming the component and what is kept; the command it prints
picks the run up, and the last one completes it with one whole pushed version. A SIGTERM inside a Beam step (which
wraps the exception in a RuntimeError) stops the run the same way."""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.serving import atomic_pusher
from config import pipeline as configs
from config.ids import EVALUATOR, STATISTICS_GEN, TEST_SET_EVALUATOR
from modules import serving_versions
from runners import failures
from tests.support import crash_points

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EPOCH_1_BACKED_UP = re.compile(r"^    epoch 1/2 .*validation accuracy")  # logged after the epoch's backup
WALL_SECONDS: list[float] = []  # of each run, as seen from here


def run_and_signal(
    command: list[str],
    when: re.Pattern | None,
    signals: tuple[int, ...] = (),
    env: dict | None = None,
) -> tuple[subprocess.CompletedProcess, float]:
    """Runs `command`; once a stdout line matches `when`, sends `signals` (0.2 s apart). Returns the finished
    process and the seconds from the first signal to its exit."""
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
    )
    out, sent, started = [], None, time.monotonic()
    for line in process.stdout:
        out.append(line)
        if when is not None and sent is None and when.match(line):
            sent = time.monotonic()
            for number in signals:
                process.send_signal(number)
                time.sleep(0.2)
    process.wait(timeout=900)
    WALL_SECONDS.append(time.monotonic() - started)
    seconds = time.monotonic() - sent if sent else 0.0
    return subprocess.CompletedProcess(command, process.returncode, "".join(out), process.stderr.read()), seconds


def starts(component: str) -> re.Pattern:
    """The console's line as `component` starts."""
    return re.compile(rf"^\d\d:\d\d:\d\d  {component} \.\.\.$")


def stop_line(result: subprocess.CompletedProcess, code: int) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:] + result.stdout[-3000:]
    assert result.returncode == failures.printed_code(lines[0]) == code, lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def tiny_run(tiny_corpus, tiny_bert, output: Path, *flags: str) -> list[str]:
    """A real run of two short epochs on the tiny offline assets, its output in `output`."""
    return [
        sys.executable,
        "local_runner.py",
        "--output-dir",
        str(output),
        "--data",
        str(tiny_corpus),
        "--preprocess-handle",
        str(tiny_bert.preprocess),
        "--encoder-handle",
        str(tiny_bert.encoder),
        "--seq-length",
        "64",
        "--epochs",
        "2",
        "--train-steps",
        "120",
        "--learning-rate",
        "1e-3",
        *(flags or ("--test-split", "")),
    ]


@pytest.mark.slow
def test_ctrl_c_and_kill_stop_every_component_with_one_line_and_the_printed_command_completes_the_run(
    tiny_corpus, tiny_bert, tmp_path
):
    output = tmp_path / "out"
    command = tiny_run(tiny_corpus, tiny_bert, output, "--test-split", "test")
    serving = Path(configs.serving_model_dir(str(output)))
    seconds = {}

    # Ctrl-C as StatisticsGen starts (its Beam job).
    result, seconds["SIGINT in StatisticsGen"] = run_and_signal(command, starts(STATISTICS_GEN), (signal.SIGINT,))
    line = stop_line(result, failures.INTERRUPTED)
    assert line.startswith("local_runner.py: interrupted (SIGINT) in StatisticsGen (exit code 130; full log: "), line
    assert "kept: finished components " in line and "ImdbExampleGen" in line, line
    resume = line.split("; resume with: ")[1]
    assert shlex.split(resume) == command + ["--cache"]
    log = Path(re.search(r"full log: (\S+)\)", line)[1]).read_text()
    assert "KeyboardInterrupt" in log or "Interrupted" in log, "the traceback is in the log"

    # Ctrl-C in the Trainer's second epoch, and Ctrl-C again while the run stops.
    result, seconds["SIGINT in Trainer"] = run_and_signal(
        shlex.split(resume), EPOCH_1_BACKED_UP, (signal.SIGINT, signal.SIGINT)
    )
    line = stop_line(result, failures.INTERRUPTED)
    assert "interrupted (SIGINT) in Trainer" in line and "the Trainer's epoch 1 of 2" in line, line
    assert line.split("; resume with: ")[1] == resume

    # kill (SIGTERM) as each evaluator starts: each is a Beam job that loads the model in its workers.
    for component in (EVALUATOR, TEST_SET_EVALUATOR):
        result, seconds[f"SIGTERM in {component}"] = run_and_signal(
            shlex.split(resume), starts(component), (signal.SIGTERM,)
        )
        line = stop_line(result, failures.TERMINATED)
        assert f"interrupted (SIGTERM) in {component} (exit code 143" in line, line
        assert "Trainer" in line.split("; kept: ")[1] and line.split("; resume with: ")[1] == resume, line

    # Ctrl-C in the Pusher's copy: no version appears, only the staging folder TF Serving ignores.
    result, _ = run_and_signal(
        shlex.split(resume),
        None,
        env=crash_points.env(crash_points.PUSHER_COPY, "SIGINT"),
    )
    line = stop_line(result, failures.INTERRUPTED)
    kept = line.split("; kept: ")[1].split("; resume with: ")[0]
    assert "interrupted (SIGINT) in Pusher" in line and {"Trainer", "Evaluator"} <= set(re.findall(r"\w+", kept)), line
    assert serving_versions.versions(str(serving)) == []
    assert [p.name.startswith(atomic_pusher.STAGING_PREFIX) for p in serving.iterdir()] == [True]

    # The printed command completes the run: one whole version, the Trainer resumed, not restarted.
    started = time.monotonic()
    result = subprocess.run(shlex.split(resume), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    seconds["completing run"] = time.monotonic() - started
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    assert "Pushed model: " in result.stdout
    assert [p.name for p in serving.iterdir()] == [str(v) for v in serving_versions.versions(str(serving))]
    assert len(serving_versions.versions(str(serving))) == 1
    # The run history: each stopped run lasted as long as it ran (the runner records its start and end).
    from runners import run_history

    history = run_history.read_runs(configs.metadata_path(str(output)))
    assert len(history) == 6 and [r.verdict for r in history][-1] == "blessed"
    for run, wall in zip(history[:5], WALL_SECONDS[-5:]):
        assert 0.5 * wall < run.seconds <= wall, (run, wall)
    print(
        "seconds from the signal to the exit, and of the completing run:", {k: round(v, 1) for k, v in seconds.items()}
    )


@pytest.mark.slow
def test_kill_inside_a_beam_step_stops_with_143_and_one_line_naming_the_component(tiny_corpus, tiny_bert, tmp_path):
    # ImdbExampleGen's shard writer runs in Beam; the signal's Interrupted is raised inside it, and Beam wraps it in
    # a RuntimeError "... [while running '...']" (project issue 42: it ended with exit code 1, "error in ...").
    command = tiny_run(tiny_corpus, tiny_bert, tmp_path / "out")
    result, _ = run_and_signal(
        command,
        None,
        env=crash_points.env(crash_points.EXAMPLE_GEN_SHARD, "SIGTERM"),
    )
    line = stop_line(result, failures.TERMINATED)
    assert line.startswith("local_runner.py: interrupted (SIGTERM) in ImdbExampleGen (exit code 143; full log: "), line
    assert "kept: no finished component; resume with: " in line, line
    log = Path(re.search(r"full log: (\S+)\)", line)[1]).read_text()
    assert "[while running '" in log, "Beam wrapped the interrupt"
