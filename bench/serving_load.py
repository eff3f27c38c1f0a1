"""The model server under load, on loopback: throughput and latency at 1, 8 and 32 concurrent clients beside the
predict command's offline throughput on the same reviews, and the failed requests while versions swap under load.

    .venv/bin/python -m bench.serving_load [--reviews 256] [--clients 1,8,32] [--models best,tutorial]

- models: the `best` recipe's export (MiniLM, 512 tokens, head+tail) and the tutorial's (MiniLM, 128 tokens, head),
  exported as the Trainer exports (`modules.model.export_serving_model`; the head is untrained: speed only, which
  the weights do not change), built once under --workdir;
- reviews: the first --reviews of the real archive's eval split (ImdbExampleGen's split of aclImdb/train);
- offline: `modules.predict.classify_with` (what `runners.predict` runs: length-sorted batches of 32) over them,
  the model loaded, after one warm-up pass;
- server: `python -m runners.serve --model EXPORT` on a loopback port; each client sends one review per request
  (`predict_text`, `instances`) on a kept-alive connection, one request after another, the reviews dealt out
  round-robin; after one warm-up pass, each client count serves every review once: reviews/s over the wall time,
  p50 and p99 latency of a request;
- swap: --swap-seconds of 8 clients on a served directory while a version is pushed and one rolled back
  (`components.serving.atomic_pusher`), counting failed requests (must be 0) and answers by version.
Prints a table; nothing is asserted. The clients run in this process, beside the server: both share the 2 cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import machine, reviews
from bench.time_to_accuracy import TUTORIAL_SEQ_LENGTH

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS = {"best": (512, "head+tail"), "tutorial": (TUTORIAL_SEQ_LENGTH, "head")}


def eval_reviews(tarball: Path, workdir: Path, count: int) -> list[str]:
    """The first `count` reviews of the eval split, in ImdbExampleGen's order."""
    from tfx.proto import example_gen_pb2

    from components.ingestion import imdb_example_gen as gen
    from components.ingestion import imdb_source
    from config import pipeline as configs

    data_root = imdb_source.resolve(str(tarball), str(workdir / "downloads"))
    split_config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in configs.TRAIN_SPLIT_BUCKETS.items()
        ]
    )
    splits = gen.assign_splits(gen.list_review_files(data_root, "train"), [], split_config, "")
    return [Path(review.path).read_text(encoding="utf-8") for review in splits["eval"][:count]]


def export(name: str, workdir: Path) -> Path:
    """The named model's export under `workdir` (built on first use)."""
    folder = workdir / "exports" / name / "1"
    if not (folder / "saved_model.pb").exists():
        from config import pipeline as configs
        from modules import model as model_lib
        from runners import offline_assets

        bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
        seq_length, truncation = MODELS[name]
        spec = model_lib.ClassifierSpec(str(bert.preprocess), str(bert.encoder), seq_length, 0.1, truncation)
        model_lib.export_serving_model(model_lib.build_classifier(spec), str(folder))
    return folder


def offline_throughput(model: Path, texts: list[str]) -> float:
    """Reviews/s of the predict command's batching, the model loaded and warmed up (its kernels of each length)."""
    from modules.predict import classify_with, load_text_signature

    signature = load_text_signature(str(model))
    classify_with(signature, texts)
    started = time.perf_counter()
    classify_with(signature, texts)
    return len(texts) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.serve", "--port", str(port), "--log-file", str(log), *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the server did not start; see {log}")


def run_clients(port: int, texts: list[str], clients: int) -> tuple[float, list[float], list, dict[str, int]]:
    """Each review sent once by `clients` closed-loop clients; (wall seconds, latencies, failures, answers by
    version)."""
    latencies: list[float] = []
    failures: list = []
    versions: dict[str, int] = {}
    lock = threading.Lock()

    def client(mine: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for text in mine:
            body = json.dumps({"signature_name": "predict_text", "instances": [text]})
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/models/imdb:predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer, version = response.read(), response.getheader("x-model-version", "")
                ok = response.status == 200 and len(json.loads(answer)["predictions"]) == 1
            except (OSError, http.client.HTTPException, ValueError) as error:
                ok, answer, version = False, repr(error), ""
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            with lock:
                latencies.append(time.perf_counter() - started)
                versions[version] = versions.get(version, 0) + 1
                if not ok:
                    failures.append(answer)

    threads = [threading.Thread(target=client, args=(texts[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures, versions


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def measure_model(name: str, texts: list[str], clients: list[int], workdir: Path) -> None:
    model = export(name, workdir)
    offline = offline_throughput(model, texts)
    print(f"{name}: predict command (offline, length-sorted batches of 32): {offline:.1f} reviews/s", flush=True)
    process, port = start_server(["--model", str(model)], workdir / f"serve-{name}.log")
    try:
        run_clients(port, texts, max(clients))  # warm-up: the kernels of each length
        for count in clients:
            wall, latencies, failures, _ = run_clients(port, texts, count)
            rate, p50, p99 = len(texts) / wall, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
            print(
                f"{name}: {count:>2} clients: {rate:6.1f} reviews/s ({rate / offline:.0%} of offline), latency p50 "
                f"{p50:.0f} ms p99 {p99:.0f} ms, {len(failures)} failed",
                flush=True,
            )
        print(f"{name}: the server's peak memory (VmHWM): {peak_memory_mib(process.pid):.0f} MiB", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=120)


def peak_memory_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kib / 1024


def measure_swap(texts: list[str], workdir: Path, seconds: float) -> None:
    from components.serving import atomic_pusher

    base = workdir / "swap-serving"
    shutil.rmtree(base, ignore_errors=True)
    model = export("tutorial", workdir)
    first, _ = atomic_pusher.push(str(model), str(base))
    process, port = start_server(["--serving-dir", str(base)], workdir / "serve-swap.log")
    results: list = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            results.append(run_clients(port, texts[:64], 8))

    try:
        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(seconds / 3)
        pushed, _ = atomic_pusher.push(str(model), str(base))
        time.sleep(seconds / 3)
        rolled_back, _ = atomic_pusher.rollback(str(base), int(first))
        time.sleep(seconds / 3)
        stop.set()
        loader.join()
    finally:
        process.terminate()
        process.wait(timeout=120)
    failures = [f for _, _, failed, _ in results for f in failed]
    by_version: dict[str, int] = {}
    for _, _, _, versions in results:
        for version, count in versions.items():
            by_version[version] = by_version.get(version, 0) + count
    print(
        f"swap: {sum(by_version.values())} requests from 8 clients while version {pushed} was pushed and "
        f"{first} rolled back as {rolled_back}: {len(failures)} failed; answers by version {by_version}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=reviews.DEFAULT_TARBALL, help="aclImdb train tarball")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imdb-serving-load"))
    parser.add_argument("--reviews", type=int, default=256)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--models", default="best,tutorial")
    parser.add_argument("--swap-seconds", type=float, default=60, help="0: no swap measurement")
    args = parser.parse_args()
    print(f"bench.serving_load on {machine.cores_and_cpu()}", flush=True)
    texts = eval_reviews(args.data, args.workdir, args.reviews)
    print(f"{len(texts)} eval reviews, {statistics.mean(map(len, texts)):.0f} characters on average", flush=True)
    clients = [int(c) for c in args.clients.split(",")]
    for name in args.models.split(","):
        measure_model(name, texts, clients, args.workdir)
    if args.swap_seconds:
        measure_swap(texts, args.workdir, args.swap_seconds)


if __name__ == "__main__":
    main()
