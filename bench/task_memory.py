"""Each Kubeflow task's peak memory and time, each task in a process of its own as a pod runs it.

    .venv/bin/python -m bench.task_memory --data /tmp/aclImdb [--recipe best] [--workdir /tmp/task_memory]

Compiles the spec for `--target kfp-local` with the flags a cluster run gets (the encoder is the image's offline
MiniLM, found under this checkout as `--image-project-root`), runs every task in order as the open-source
backend's driver and launcher do (tests/support/kfp_backend.py, backend 2.17), each under GNU time, and prints
each task's peak resident memory (VmHWM of the task's process: what a container's working set holds at least)
and wall time beside the requests `config/kubeflow.py`'s TASK_RESOURCES gives it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.machine import cores_and_cpu  # noqa: E402
from config import pipeline as configs  # noqa: E402

TIME_FORMAT = "%M %e %x"  # peak RSS in KiB, wall seconds, exit status


def compile_spec(data: str, workdir: Path, recipe: str, extra: list[str]) -> str:
    import kubeflow_runner
    from runners import kubeflow_spec

    (workdir / "serving").mkdir(parents=True, exist_ok=True)
    args = kubeflow_runner.parse_args(
        [
            "--target",
            "kfp-local",
            "--pipeline-root",
            str(workdir / "pipeline_root"),
            "--data",
            data,
            "--download-dir",
            str(workdir / "downloads"),
            "--serving-model-dir",
            str(workdir / "serving"),
            "--image",
            "registry.example/team/imdb-bert-tfx:1",  # this checkout's environment stands in for it
            "--image-project-root",
            str(configs.PROJECT_ROOT),
            "--output-file",
            str(workdir / "pipeline.json"),
            "--recipe",
            recipe,
            *extra,
        ]
    )
    return kubeflow_spec.compile_pipeline(args, *kubeflow_spec.build_pipeline(args))


def main() -> None:
    from config import kubeflow as kubeflow_config
    from tests.e2e.test_kfp_backend_conformance import image_standin_env
    from tests.support import kfp_backend

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="an aclImdb folder (or archive) the tasks read")
    parser.add_argument("--recipe", default=configs.REAL_DATA_RECIPE)
    parser.add_argument("--workdir", default="/tmp/imdb-bert-tfx-task-memory", type=Path)
    parser.add_argument("--task-timeout-minutes", type=int, default=180)
    parser.add_argument("extra", nargs="*", help="more kubeflow_runner.py flags, after --")
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    spec_path = compile_spec(args.data, args.workdir, args.recipe, args.extra)
    timings = args.workdir / "timings"
    timings.mkdir()

    class TimedLauncher(kfp_backend.BackendLauncher):
        def run_task(self, spec, task_name, runs, parameters, run_root):
            print(f"{task_name} ...", flush=True)
            self.command = lambda argv: ["/usr/bin/time", "-f", TIME_FORMAT, "-o", str(timings / task_name), *argv]
            run = super().run_task(spec, task_name, runs, parameters, run_root)
            print(f"{task_name}: {report(timings / task_name)}", flush=True)
            return run

    launcher = TimedLauncher(
        kfp_backend.KFP_2_17,
        str(args.workdir / "pipeline_root"),
        store=kfp_backend.ObjectStore(args.workdir / "pods"),
        workdir=configs.PROJECT_ROOT,
        env=image_standin_env({}),
        task_timeout_s=args.task_timeout_minutes * 60,
    )
    print(f"CPU: {cores_and_cpu()}; recipe {args.recipe}; data {args.data}", flush=True)
    try:
        launcher.run(spec_path)
    finally:
        print(f"\n{'task':<22} {'peak RSS':>9} {'wall':>8}   requests (config/kubeflow.py TASK_RESOURCES)")
        for path in sorted(timings.iterdir(), key=lambda p: p.stat().st_mtime):
            peak_kib, wall, _ = path.read_text().split()[-3:]
            cpu, memory = kubeflow_config.TASK_RESOURCES.get(path.name, kubeflow_config.TASK_RESOURCES["default"])
            print(f"{path.name:<22} {int(peak_kib) / 2**20:>7.2f}Gi {float(wall) / 60:>6.1f}min   {cpu} CPU, {memory}")


def report(path: Path) -> str:
    peak_kib, wall, status = path.read_text().split()[-3:]
    return f"peak RSS {int(peak_kib) / 2**20:.2f}Gi, {float(wall) / 60:.1f} min, exit {status}"


if __name__ == "__main__":
    sys.exit(main())
