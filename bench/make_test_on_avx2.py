"""How long `make test` takes on a CPU without AVX-512, measured on any x86-64 machine: TensorFlow's oneDNN
kernels are capped at AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`, which also makes "auto" precision float32, as on such a
CPU), and the tests marked `bfloat16` run without oneDNN (`TF_ENABLE_ONEDNN_OPTS=0`), on Eigen's bfloat16
kernels as an AVX2-only CPU runs them (under the cap, oneDNN would abort on them).

    .venv/bin/python -m bench.make_test_on_avx2 [PYTEST ARGS...]

It emulates the instruction set, not the clock: a slower AVX2 CPU takes longer in proportion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench import machine

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# (what runs, pytest marker expression, environment)
PARTS = (
    ("tests on oneDNN capped at AVX2", "not bfloat16", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("bfloat16 tests on Eigen", "bfloat16", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
)


def main(pytest_args: list[str]) -> None:
    total, failed = 0.0, False
    for label, markers, env in PARTS:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-m", markers, *pytest_args],
            cwd=PROJECT_ROOT,
            env={**os.environ, "TF_USE_LEGACY_KERAS": "1", **env},
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        total += seconds
        passed = result.returncode in (0, 5)  # 5: no test selected
        failed |= not passed
        summary = (result.stdout.strip().splitlines() or ["no output"])[-1]
        print(f"{label:<32} {seconds / 60:5.1f} min  {summary}", flush=True)
        if not passed:
            print(result.stdout[-3000:] + result.stderr[-2000:], file=sys.stderr)
    print(
        f"{'make test as on an AVX2-only CPU':<32} {total / 60:5.1f} min  ({machine.cores_and_cpu()}; "
        "the 30-minute budget is for 2 cores)"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
