"""Where `local_runner.py`'s time goes: wall time per component of the latest pipeline run, from ML Metadata.

    .venv/bin/python -m bench.pipeline_timing --run            # runs local_runner.py (offline default) first
    .venv/bin/python -m bench.pipeline_timing [--metadata tfx_output/metadata/.../metadata.db]

Each component's time is its MLMD execution's last update minus its creation (driver, executor and
publishing); the run's total is the first creation to the last update, and the rest of the wall time
(start-up, imports, building the offline defaults) is shown as "outside components" when `--run` is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def latest_run_durations(metadata_path: str) -> list[tuple[str, float, float]]:
    """(node id, start seconds since epoch, duration seconds) of each execution in the newest pipeline
    run, in start order."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise SystemExit(f"{metadata_path}: no pipeline run recorded; run local_runner.py first (or pass --run)")
    latest = max(runs, key=lambda context: context.create_time_since_epoch)
    rows = []
    for execution in store.get_executions_by_context(latest.id):
        nodes = [
            c.name.split(".")[-1]
            for c in store.get_contexts_by_execution(execution.id)
            if store.get_context_types_by_id([c.type_id])[0].name == "node"
        ]
        rows.append(
            (
                nodes[0] if nodes else str(execution.id),
                execution.create_time_since_epoch / 1e3,
                (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3,
            )
        )
    return sorted(rows, key=lambda row: row[1])


def main() -> None:
    from config import pipeline as configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="run local_runner.py (offline default) first")
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR, help="local_runner.py's --output-dir")
    parser.add_argument("--metadata", help="MLMD SQLite file (default: the one under --output-dir)")
    args = parser.parse_args()

    wall = None
    if args.run:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "local_runner.py"), "--output-dir", args.output_dir],
            check=True,
            cwd=PROJECT_ROOT,
        )
        wall = time.perf_counter() - started
    rows = latest_run_durations(args.metadata or configs.metadata_path(args.output_dir))
    first_start = rows[0][1]
    pipeline_seconds = max(start + duration for _, start, duration in rows) - first_start

    print(f"\nlocal_runner.py by component (latest run), {os.cpu_count()} CPU cores")
    print(f"{'component':<36} {'starts at s':>11} {'seconds':>9} {'share':>7}")
    for node, start, duration in rows:
        print(f"{node:<36} {start - first_start:11.1f} {duration:9.1f} {duration / pipeline_seconds:7.0%}")
    print(f"{'pipeline (first start to last end)':<36} {'':>11} {pipeline_seconds:9.1f}")
    if wall is not None:
        print(f"{'outside components (start-up etc.)':<36} {'':>11} {wall - pipeline_seconds:9.1f}")
        print(f"{'local_runner.py wall time':<36} {'':>11} {wall:9.1f}")


if __name__ == "__main__":
    main()
