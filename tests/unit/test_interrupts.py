"""An interrupt cannot be lost (project issue 42): the signal handler records the stop before it raises, so a
signal whose exception Python drops (in a weakref callback, a `__del__`, code catching BaseException) still stops
the run at its next check point, with the recorded signal's exit code; a second signal before the stop took effect
ends the process at once with the run's one line. (Real runs stopped by signals: tests/e2e/test_interrupts.py.)"""

import gc
import logging
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest

from modules import stop_request
from runners import console, failures, interrupts, run_lock

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def signal_self(signal_number: int) -> None:
    """Sends this process `signal_number` and runs bytecode until its Python handler has run (right here)."""
    os.kill(os.getpid(), signal_number)
    for _ in range(10_000):
        pass


class SignalledWhenCollected:
    def __init__(self, signal_number: int):
        self.signal_number = signal_number

    def __del__(self):
        signal_self(self.signal_number)


def in_del(signal_number: int) -> None:
    SignalledWhenCollected(signal_number)  # collected at once: __del__ runs, its exception is "ignored"
    gc.collect()


def in_weakref_callback(signal_number: int) -> None:
    class Target:
        pass

    target = Target()
    reference = weakref.ref(target, lambda _: signal_self(signal_number))
    del target
    assert reference() is None


def in_except_base_exception(signal_number: int) -> None:
    try:
        signal_self(signal_number)
    except BaseException:  # noqa: BLE001, S110  (what some libraries do)
        pass


@pytest.mark.parametrize("swallow", [in_del, in_weakref_callback, in_except_base_exception])
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_whose_exception_is_dropped_is_recorded_and_raised_at_the_next_check_point(
    swallow, signal_number, monkeypatch
):
    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_value))
    with interrupts.trapped():
        swallow(signal_number)  # the exception raised inside is lost: execution goes on here
        if swallow is not in_except_base_exception:
            assert [type(error) for error in dropped] == [interrupts.Interrupted], "Python dropped the exception"
        request = stop_request.requested()
        assert request is not None and request.signal_number == signal_number and request.at <= time.time()
        with pytest.raises(interrupts.Interrupted) as stopped:
            stop_request.check()  # the next check point: a batch's end, a component's start or end, the run's end
        assert stopped.value.exit_code == 128 + signal_number == interrupts.EXIT_CODES[signal.Signals(signal_number)]
        # Whatever exception then reaches the runner (Beam's RuntimeError) is that interrupt.
        wrapped = RuntimeError(f"{signal.Signals(signal_number).name} [while running 'Evaluate']")
        assert interrupts.interrupted_by(wrapped) == 128 + signal_number
        assert interrupts.signal_name(wrapped) == signal.Signals(signal_number).name
    assert stop_request.requested() is None, "the record is the block's"
    with interrupts.trapped():  # a new run starts with no stop recorded
        assert stop_request.requested() is None
        assert interrupts.interrupted_by(RuntimeError("a bug")) is None
        stop_request.check()


def test_the_trainers_callback_stops_the_fit_at_the_next_batch():
    import numpy as np
    import tf_keras

    from modules import trainer

    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    batches: list[int] = []

    class SwallowedSigtermAtBatch3(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 3:
                in_except_base_exception(signal.SIGTERM)

    with interrupts.trapped(), pytest.raises(interrupts.Interrupted) as stopped:
        model.fit(
            np.zeros((64, 2)),
            np.zeros(64),
            batch_size=4,
            epochs=3,
            callbacks=[SwallowedSigtermAtBatch3(), trainer.StopWhenAsked()],
            verbose=0,
        )
    assert batches == [0, 1, 2, 3] and stopped.value.exit_code == failures.TERMINATED


def test_a_recorded_stop_ends_the_run_at_the_next_component_boundary(tmp_path):
    with console.RunConsole(str(tmp_path / "run.log")) as screen:
        logging.info(console.RUNNING, "ImdbExampleGen")
        stop_request.record(signal.SIGTERM)  # its exception dropped
        try:
            with pytest.raises(interrupts.Interrupted):  # raised into LocalDagRunner's loop
                logging.info(console.FINISHED, "ImdbExampleGen")
            assert screen.finished == ["ImdbExampleGen"] and screen.running is None
            with pytest.raises(interrupts.Interrupted):
                logging.info(console.RUNNING, "StatisticsGen")
            assert screen.running is None, "the next component does not start"
        finally:
            stop_request.clear()


# local_runner.py's run, its pipeline a step that swallows the first interrupt (as a weakref callback would) and
# goes on; the second signal must end it with the run's one line, not be ignored.
SWALLOWS_THE_FIRST = r"""
import logging, sys, time
import local_runner

say = logging.getLogger("imdb_bert_tfx.progress").info  # the console shows these (stdout is the log file)

def run_pipeline(local_run, metadata_path):
    try:
        say("running")
        time.sleep(60)
    except BaseException:
        pass
    say("swallowed")
    time.sleep(60)
    raise AssertionError("the second signal was ignored")

local_runner.run_pipeline = run_pipeline
local_runner.main(sys.argv[1:])
"""


FINISHES_ANYWAY = r"""
import logging, sys, time
import local_runner

def run_pipeline(local_run, metadata_path):
    try:
        logging.getLogger("imdb_bert_tfx.progress").info("running")
        time.sleep(60)
    except BaseException:
        pass
    return None, None, None  # the run finished: it would have pushed

local_runner.run_pipeline = run_pipeline
local_runner.main(sys.argv[1:])
"""


def test_a_run_that_finishes_after_a_dropped_stop_still_exits_with_the_interrupt(tmp_path):
    argv = ["--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    process = subprocess.Popen(
        [sys.executable, "-c", FINISHES_ANYWAY, *argv], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    while process.stdout.readline().strip() != b"running":
        assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("local_runner.py: interrupted (SIGTERM) between components ("), lines
    assert process.returncode == failures.printed_code(lines[0]) == failures.TERMINATED


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (signal.SIGINT, signal.SIGINT, failures.INTERRUPTED),
        (signal.SIGTERM, signal.SIGTERM, failures.TERMINATED),
        (signal.SIGTERM, signal.SIGINT, failures.TERMINATED),  # the recorded (first) stop's code
    ],
)
def test_a_second_signal_before_the_stop_took_effect_ends_the_run_at_once_with_its_line(first, second, code, tmp_path):
    output = tmp_path / "out"
    argv = ["--output-dir", str(output), "--cache-dir", str(tmp_path / "cache")]
    process = subprocess.Popen(
        [sys.executable, "-c", SWALLOWS_THE_FIRST, *argv],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = []
    for signal_number, after in ((first, "running"), (second, "swallowed")):
        while not (out and out[-1] == after):
            line = process.stdout.readline()
            assert line, "".join(out) + process.stderr.read()
            out.append(line.strip())
        process.send_signal(signal_number)
    started = time.monotonic()
    process.wait(timeout=30)
    assert time.monotonic() - started < 10
    stderr = process.stderr.read()
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    expected = f"local_runner.py: interrupted ({signal.Signals(first).name}) between components (exit code {code}; "
    assert lines[0].startswith(expected), lines[0]
    assert "resume with: " in lines[0] and process.returncode == failures.printed_code(lines[0]) == code
    log = Path(lines[0].split("full log: ")[1].split(")")[0]).read_text()
    assert "before the run stopped: stopping at once; the main thread was at:" in log, log[-3000:]
    assert "in run_pipeline" in log, "the log shows where the run was stuck"
    with run_lock.hold(str(output)):  # released
        pass
