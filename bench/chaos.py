"""Random kills of the quick look: whatever the moment and the signal, nothing is left broken.

    .venv/bin/python -m bench.chaos [--kills 30] [--seed 0] [--workdir /tmp/imdb-bert-tfx-chaos]

One output directory for the whole bench, as a user's: a first, uninterrupted quick look (`local_runner.py`, its
offline default) measures how long a run lasts (D; a run that finishes before its signal is no kill, and its length
becomes D). Then --kills times: start the quick look afresh (no `--cache`), send SIGKILL, SIGTERM or SIGINT
(uniformly chosen) at a uniformly random moment of [0, D], and rerun the command the
stop printed (`resume with: ...`; after SIGKILL, which prints nothing, the same command with `--cache`) until it
exits 0. After the kill and after every rerun, three invariants are checked:

- whole versions: every entry of the serving directory is a version folder whose files (names and sizes) are
  those of one of the Trainer's exported models, or a staging folder (`.incomplete-*`, which TF Serving and
  `runners.serve` never load);
- published inputs: every artifact an execution recorded as its input (ML Metadata INPUT event) was an output of
  an execution that finished (COMPLETE or CACHED) and is LIVE;
- history: the run history (`runners.runs.read_runs`) lists every run that started a component, and no more runs
  than were started.

Prints one line per kill, appends it to bench/results/chaos.csv (so invocations add up: `--table` prints the file's
table alone) and prints the table of every kill recorded there: kills per component (the one running when the
signal was sent), reruns needed, invariant violations (must be 0). Nothing is asserted; the exit code is 1 if an
invariant broke.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import machine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COMPONENT_STARTS = re.compile(r"^\d\d:\d\d:\d\d  (\w+) \.\.\.$")
RESUME = re.compile(r"; resume with: (.+)$")
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
EXPECTED_CODES = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}
MAX_RERUNS = 4
STARTING = "start-up"  # no component started yet
RESULTS = PROJECT_ROOT / "bench" / "results" / "chaos.csv"
COLUMNS = ("seed", "kill", "signal", "moment_s", "component", "exit_code", "reruns", "violations")
RUN_TIMEOUT_S = 1800


class Invocation:
    """One `local_runner.py` process: its command, the component running when it was signalled, its output."""

    def __init__(self, command: list[str]):
        self.command = command
        self.running = STARTING
        self.stdout: list[str] = []
        self.stderr = ""
        self.code: int | None = None
        self.seconds = 0.0

    def run(self, kill_after: float | None = None, signal_number: int | None = None) -> None:
        """Runs to the end, or sends `signal_number` `kill_after` seconds after the start."""
        started = time.monotonic()
        process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
        )
        reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        reader.start()
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal_number)
        try:
            process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join()
        self.stderr = process.stderr.read()
        self.code = process.returncode
        self.seconds = time.monotonic() - started

    def _read(self, stream) -> None:
        for line in stream:
            self.stdout.append(line.rstrip("\n"))
            match = COMPONENT_STARTS.match(line)
            if match:
                self.running = match[1]

    def resume_command(self) -> list[str]:
        for line in self.stderr.splitlines():
            match = RESUME.search(line)
            if match:
                return shlex.split(match[1])
        return self.command + ([] if "--cache" in self.command else ["--cache"])


def file_sizes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def broken_versions(serving: Path, pipeline_root: Path) -> list[str]:
    """Entries of the serving directory that are neither a whole copy of a Trainer export nor a staging folder."""
    from components.serving import atomic_pusher

    if not serving.exists():
        return []
    exports = [file_sizes(p) for p in pipeline_root.glob("Trainer/model/*/Format-Serving")]
    broken = []
    for entry in sorted(serving.iterdir()):
        if entry.name.startswith(atomic_pusher.STAGING_PREFIX):
            continue
        if not (entry.is_dir() and entry.name.isdigit() and file_sizes(entry) in exports):
            broken.append(f"{entry}: not a whole copy of a Trainer export")
    return broken


def unpublished_inputs(metadata_path: str) -> list[str]:
    """Inputs recorded by an execution that no finished execution published."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.exists(metadata_path):
        return []
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    executions = {e.id: e for e in store.get_executions()}
    finished = {metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED}
    events = store.get_events_by_execution_ids(list(executions))
    published = {
        e.artifact_id
        for e in events
        if e.type == metadata_store_pb2.Event.OUTPUT and executions[e.execution_id].last_known_state in finished
    }
    inputs = {e.artifact_id: e.execution_id for e in events if e.type == metadata_store_pb2.Event.INPUT}
    live = {a.id for a in store.get_artifacts_by_id(list(inputs)) if a.state == metadata_store_pb2.Artifact.LIVE}
    return [
        f"execution {execution} read artifact {artifact}, "
        + ("not published by a finished execution" if artifact not in published else "not LIVE")
        for artifact, execution in sorted(inputs.items())
        if artifact not in published or artifact not in live
    ]


def history_errors(metadata_path: str, invocations: list[Invocation]) -> list[str]:
    from runners import runs

    listed = len(runs.read_runs(metadata_path)) if os.path.exists(metadata_path) else 0
    started = sum(i.running != STARTING for i in invocations)
    if started <= listed <= len(invocations):
        return []
    return [f"the history lists {listed} runs; {started} started a component, {len(invocations)} were started"]


def record(seed: int, kill: int, name: str, moment: float, where: str, code, reruns: int, violations: int) -> None:
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow([seed, kill, name, f"{moment:.1f}", where, code, reruns, violations])


def print_table() -> None:
    """Kills per component, by signal, with the reruns needed and the violations, over every recorded kill."""
    with RESULTS.open() as f:
        rows = list(csv.DictReader(f))
    by_component: dict[str, list[dict]] = collections.defaultdict(list)
    for row in rows:
        by_component[row["component"]].append(row)
    print(
        f"\n{'component':<18} {'kills':>5} {'SIGKILL':>7} {'SIGTERM':>7} {'SIGINT':>6} {'reruns (mean)':>13} "
        f"{'(max)':>5} {'violations':>10}"
    )
    for where, found in sorted(by_component.items(), key=lambda item: -len(item[1])):
        reruns = [int(r["reruns"]) for r in found]
        signals = collections.Counter(r["signal"] for r in found)
        print(
            f"{where:<18} {len(found):>5} {signals['SIGKILL']:>7} {signals['SIGTERM']:>7} {signals['SIGINT']:>6} "
            f"{sum(reruns) / len(reruns):>13.1f} {max(reruns):>5} {sum(int(r['violations']) for r in found):>10}"
        )
    print(
        f"{'all':<18} {len(rows):>5} {'':>7} {'':>7} {'':>6} {'':>13} {'':>5} "
        f"{sum(int(r['violations']) for r in rows):>10}"
    )


def main() -> int:
    from config import pipeline as configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imdb-bert-tfx-chaos"))
    parser.add_argument("--table", action="store_true", help=f"print the table of {RESULTS.name} and stop")
    args = parser.parse_args()
    if args.table:
        print_table()
        return 0

    shutil.rmtree(args.workdir, ignore_errors=True)
    output = args.workdir / "tfx_output"
    command = [sys.executable, "local_runner.py", "--output-dir", str(output)]
    quick_look = configs.quick_look_dir(str(output))  # where a run without --data writes
    serving, pipeline_root = Path(configs.serving_model_dir(quick_look)), Path(configs.pipeline_root(quick_look))
    metadata_path = configs.metadata_path(quick_look)
    invocations: list[Invocation] = []
    violations: list[str] = []

    def check(when: str) -> None:
        found = (
            broken_versions(serving, pipeline_root)
            + unpublished_inputs(metadata_path)
            + history_errors(metadata_path, invocations)
        )
        violations.extend(f"{when}: {v}" for v in found)
        for v in found:
            print(f"  VIOLATION {when}: {v}", flush=True)

    print(f"{machine.cores_and_cpu()}; seed {args.seed}; {args.kills} kills", flush=True)
    first = Invocation(command)
    first.run()
    invocations.append(first)
    if first.code != 0:
        print(first.stderr, file=sys.stderr)
        return 1
    duration = first.seconds
    print(f"an uninterrupted quick look: {duration:.0f} s", flush=True)
    check("after the first run")

    rng = random.Random(args.seed)
    wrong_codes = 0
    kill = 0
    while kill < args.kills:
        moment, signal_number = rng.uniform(0, duration), rng.choice(SIGNALS)
        violations_before = len(violations)
        killed = Invocation(command)
        killed.run(moment, signal_number)
        invocations.append(killed)
        check(f"kill {kill}")
        name = signal.Signals(signal_number).name
        finished_first = killed.code == 0
        if finished_first:  # no kill: the run was shorter than D; D is now that run's length
            duration = killed.seconds
            print(f"  finished before {moment:.0f} s ({name}); a run now lasts {duration:.0f} s", flush=True)
            continue
        kill += 1
        if killed.code != EXPECTED_CODES[signal_number]:
            wrong_codes += 1
            print(f"  exit code {killed.code} after {name}: {killed.stderr[-500:]}", flush=True)
        reruns, last = 0, killed
        while last.code != 0 and reruns < MAX_RERUNS:
            reruns += 1
            last = Invocation(last.resume_command())
            last.run()
            invocations.append(last)
            check(f"kill {kill}, rerun {reruns}")
        if last.code != 0:
            violations.append(f"kill {kill}: not complete after {reruns} reruns: {last.stderr[-300:]}")
        where = killed.running
        record(args.seed, kill, name, moment, where, killed.code, reruns, len(violations) - violations_before)
        print(f"kill {kill:>2}: {name:<7} at {moment:5.1f} s in {where:<16} exit {killed.code}, {reruns} rerun(s)")

    print_table()
    print(
        f"\nthis invocation: runs started {len(invocations)}; unexpected exit codes {wrong_codes}; "
        f"violations {len(violations)}"
    )
    for violation in violations:
        print(f"  {violation}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
