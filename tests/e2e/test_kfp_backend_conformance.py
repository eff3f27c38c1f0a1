"""Conformance with the open-source Kubeflow Pipelines backend: every task of the compiled spec, in order, run
through `runners.kfp_entrypoint` with the executor input each backend version builds (tests/support/
kfp_backend.py, a reading of the Go driver and launcher at 2.4.0, 2.5.0 and 2.17.0, cited there line by line).

The store is a GCS-compatible server on loopback reached by TensorFlow's and Beam's own GCS clients, with gs://
URIs throughout (tests/support/fake_gcs.py), so the launcher's download of every input is played against the
objects the tasks really wrote. It grants what roles/storage.objectAdmin grants and refuses bucket-level requests
with 403, as GCS does to the pods' service account. Where that server cannot run (no root), the same runs use local
folders, and
the download is not exercised; the test log says which.

Three runs share one serving directory, each in another backend's shape:
- KFP 2.4 (empty input types, wrapped metadata): no baseline, blessed and pushed;
- KFP 2.5 with published logs (an `executor-logs` output on every task): warm-started from run 1's model,
  judged against it, pushed;
- KFP 2.17 (named outputs, output file under the task root, retry-suffixed logs): one step at a learning rate
  of 1e-12, rejected, the serving directory byte for byte unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kubeflow_runner
from config import pipeline as configs
from runners import kubeflow_spec
from tests.support import fake_gcs, kfp_backend

pytestmark = pytest.mark.slow
# The three pipeline runs: opt-in (IMDB_BERT_TFX_CONFORMANCE_TESTS=1, or `make test-conformance`, which CI runs
# after `make test`): about a quarter of an hour on 2 cores. The folder-object test below always runs.
three_runs = pytest.mark.skipif(
    os.environ.get("IMDB_BERT_TFX_CONFORMANCE_TESTS") != "1",
    reason="opt-in: IMDB_BERT_TFX_CONFORMANCE_TESTS=1 (make test-conformance)",
)

BUCKET = "imdb-pipeline"
COMPILED_STEPS = 1
RUN_TRAIN_ARGS = '{"splits": ["train"], "num_steps": 240}'
# Runs 2 and 3 leave out what run 1 already put through every backend shape's paces and the gate does not
# read: the test-split Evaluator and the per-slice metrics (each a Beam job of its own).
LIGHTER = ("--test-split", "", "--slice-features", "")


def image_standin_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment the Dockerfile gives a task: the venv's `python` first on PATH, the project importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(configs.PROJECT_ROOT),
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL="1",
        **extra,
    )
    return env


@dataclasses.dataclass
class Backend:
    root: Path
    target: str
    pipeline_root: str
    serving: str
    data: str
    store: kfp_backend.ObjectStore
    gcs: fake_gcs.FakeGcs | None
    env: dict[str, str]
    metadata: kfp_backend.MetadataStore = dataclasses.field(default_factory=kfp_backend.MetadataStore)

    def launcher(self, shape: kfp_backend.BackendShape) -> kfp_backend.BackendLauncher:
        return kfp_backend.BackendLauncher(
            shape,
            self.pipeline_root,
            store=self.store,
            workdir=configs.PROJECT_ROOT,
            env=self.env,
            command=self.gcs.command if self.gcs else list,
            metadata=self.metadata,
        )

    def serving_digest(self) -> dict[str, str]:
        """Every object (file) under the serving directory, named serving/<version>/..., with its SHA-256."""
        if self.gcs:
            return self.gcs.digests(BUCKET, "serving/")
        import hashlib

        return {
            f"serving/{p.relative_to(self.serving).as_posix()}": hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(self.serving).rglob("*"))
            if p.is_file()
        }

    def read(self, uri: str) -> str:
        if self.gcs:
            return self.gcs.read_object(BUCKET, uri.removeprefix(f"gs://{BUCKET}/")).decode()
        return Path(uri).read_text()


@pytest.fixture(scope="module")
def backend(tmp_path_factory, tiny_corpus):
    root = tmp_path_factory.mktemp("kfp_backend")
    why_not = fake_gcs.available()
    if why_not is None:
        gcs = fake_gcs.FakeGcs(root / "gcs", (BUCKET,))
        data = gcs.upload_tree(tiny_corpus, BUCKET, "data/aclImdb")
        backend = Backend(
            root,
            "kfp",
            f"gs://{BUCKET}/root",
            f"gs://{BUCKET}/serving",
            data,
            kfp_backend.GcsObjectStore(root / "pods", gcs),
            gcs,
            image_standin_env(gcs.env),
        )
    else:
        print(f"\nobject store: local folders, the launcher's download not exercised ({why_not})")
        (root / "serving").mkdir()
        backend = Backend(
            root,
            "kfp-local",
            str(root / "pipeline_root"),
            str(root / "serving"),
            str(tiny_corpus),
            kfp_backend.ObjectStore(root / "pods"),
            None,
            image_standin_env({}),
        )
    yield backend
    if backend.gcs:
        backend.gcs.stop()


def compile_for(backend: Backend, tiny_bert, name: str, *flags: str) -> str:
    args = kubeflow_runner.parse_args(
        [
            "--target",
            backend.target,
            "--pipeline-root",
            backend.pipeline_root,
            "--data",
            backend.data,
            "--download-dir",
            str(backend.root / "downloads"),
            "--serving-model-dir",
            backend.serving,
            "--image",
            "registry.example/team/imdb-bert-tfx:1",  # the project's environment stands in for it
            "--image-project-root",
            str(configs.PROJECT_ROOT),
            "--output-file",
            str(backend.root / f"{name}.json"),
            "--preprocess-handle",
            str(tiny_bert.preprocess),
            "--encoder-handle",
            str(tiny_bert.encoder),
            "--seq-length",
            "64",
            "--epochs",
            "4",
            "--train-steps",
            str(COMPILED_STEPS),
            *flags,
        ]
    )
    return kubeflow_spec.compile_pipeline(args, *kubeflow_spec.build_pipeline(args))


def report_of(backend: Backend, runs) -> str:
    (report,) = runs["EvaluationReport"].outputs["report"]
    return backend.read(f"{report.uri}/report.md")


@pytest.fixture(scope="module")
def first_run(backend, tiny_bert):
    spec = compile_for(backend, tiny_bert, "first", "--learning-rate", "1e-3")
    return backend.launcher(kfp_backend.KFP_2_4).run(spec, {"train_args": RUN_TRAIN_ARGS})


@pytest.fixture(scope="module")
def second_run(first_run, backend, tiny_bert):
    served_before = backend.serving_digest()
    spec = compile_for(
        backend,
        tiny_bert,
        "second",
        "--learning-rate",
        "1e-3",
        "--warm-start",
        "--warm-start-learning-rate",
        "1e-4",
        *LIGHTER,
    )
    return backend.launcher(kfp_backend.KFP_2_5).run(spec, {"train_args": RUN_TRAIN_ARGS}), served_before


@pytest.fixture(scope="module")
def third_run(second_run, backend, tiny_bert):
    served_before = backend.serving_digest()
    spec = compile_for(backend, tiny_bert, "third", "--learning-rate", "1e-12", *LIGHTER)
    return backend.launcher(kfp_backend.KFP_2_17).run(
        spec, {"train_args": '{"splits": ["train"], "num_steps": 1}'}
    ), served_before


def only(artifacts):
    assert len(artifacts) == 1, artifacts
    return artifacts[0]


@three_runs
def test_kfp_2_4_every_task_reads_untyped_inputs_and_the_first_model_is_blessed_and_pushed(first_run, backend):
    # Compiled with 1 step, which cannot pass the gate: a pushed model proves the run's train_args reached it.
    assert first_run["Trainer"].executor_input["inputs"]["parameterValues"]["train_args"] == RUN_TRAIN_ARGS
    trainer_inputs = first_run["Trainer"].executor_input["inputs"]["artifacts"]
    assert trainer_inputs["examples"]["artifacts"][0]["type"] == {"instanceSchema": ""}
    assert all("executor-logs" not in run.executor_input["outputs"].get("artifacts", {}) for run in first_run.values())
    assert only(first_run["Evaluator"].outputs["blessing"]).metadata["blessed"] == 1
    pushed = only(first_run["Pusher"].outputs["pushed_model"])
    assert pushed.metadata["pushed"] == 1
    assert "# Model evaluation: BLESSED" in report_of(backend, first_run)
    assert "none: nothing is served yet (first run)" in report_of(backend, first_run)
    assert any(
        name.endswith("/saved_model.pb") and pushed.metadata["pushed_destination"].endswith(name.rsplit("/", 1)[0])
        for name in backend.serving_digest()
    )


@three_runs
def test_dict_and_list_metadata_reach_the_next_task_wrapped_as_the_launcher_records_them(first_run):
    # What the entrypoint unwraps (tests/unit/test_kubeflow_runner.py checks that TFX then reads the values).
    blessed = only(first_run["ExampleValidator"].outputs["anomalies"]).metadata["blessed"]
    assert list(blessed) == ["struct"] and set(blessed["struct"].values()) == {1}
    passed = first_run["AnomaliesGate"].executor_input["inputs"]["artifacts"]["anomalies"]["artifacts"][0]
    assert passed["metadata"]["blessed"] == blessed
    assert passed["metadata"]["display_name"] == "anomalies" and passed["metadata"]["store_session_info"]
    skipped = only(first_run["DistributionValidator"].outputs["anomalies"]).metadata["skipped_pairs"]
    assert skipped == {"list": ["train_previous_span"]}


@three_runs
def test_kfp_2_5_logs_output_is_left_to_the_launcher_and_the_warm_started_model_is_judged_against_the_first(
    second_run, backend
):
    runs, served_before = second_run
    for name, run in runs.items():
        assert "executor-logs" in run.executor_input["outputs"]["artifacts"], name
        assert only(run.outputs["executor-logs"]).schema_title == "system.Artifact"
    # Object names serving/<version>/...; the pusher's own folder objects (serving/, ...) name no version.
    (first_version,) = {part for name in served_before for part in name.split("/")[1:2] if part.isdigit()}
    report = report_of(backend, runs)
    assert "# Model evaluation: BLESSED" in report
    assert f"served version {first_version} from {backend.serving}" in report
    assert f"warm-started from served version {first_version}" in report
    assert "change vs. baseline" in report and "skipped: no baseline" not in report


@three_runs
def test_kfp_2_17_untrained_candidate_is_rejected_and_nothing_is_pushed(third_run, backend):
    runs, served_before = third_run
    trainer = runs["Trainer"].executor_input["outputs"]
    assert trainer["artifacts"]["model"]["artifacts"][0]["name"] == "model"
    assert trainer["artifacts"]["executor-logs"]["artifacts"][0]["uri"].endswith("/executor-logs-0")
    assert trainer["outputFile"].endswith("/output_metadata.json") and "/Trainer/" in trainer["outputFile"]
    assert only(runs["Evaluator"].outputs["blessing"]).metadata["blessed"] == 0
    assert only(runs["Pusher"].outputs["pushed_model"]).metadata["pushed"] == 0
    report = report_of(backend, runs)
    assert "# Model evaluation: NOT BLESSED" in report
    assert "Not pushed: the serving directory is unchanged." in report
    assert backend.serving_digest() == served_before


@three_runs
def test_no_task_leaves_a_folder_object_under_its_outputs(third_run, backend):
    if not backend.gcs:
        pytest.skip("local folders have no folder objects")
    outputs = [record.uri for record in backend.metadata.artifacts]
    folders = [
        item["name"]
        for item in backend.gcs.list_objects(BUCKET, "root/")
        if item["name"].endswith("/") and item["size"] == 0
    ]
    assert not [f for f in folders if any(f.startswith(uri.removeprefix(f"gs://{BUCKET}/")) for uri in outputs)]


def test_the_launchers_download_fails_on_folder_objects_and_survives_once_they_are_removed(backend, tmp_path):
    if not backend.gcs:
        pytest.skip("needs the GCS-compatible server")
    uri = f"gs://{BUCKET}/folder-objects/model"
    write = (
        "import sys, tensorflow as tf\nfrom runners import kfp_entrypoint\n"
        "kfp_entrypoint.make_folder(sys.argv[1])\n"  # as before a task's executor (objectAdmin: test below)
        "tf.io.gfile.makedirs(sys.argv[1] + '/variables')\n"
        "tf.io.gfile.GFile(sys.argv[1] + '/variables/data', 'w').write('weights')\n"
        "tf.io.gfile.GFile(sys.argv[1] + '/saved_model.pb', 'w').write('graph')\n"
    )
    subprocess.run(
        backend.gcs.command([sys.executable, "-c", write, uri]), env=backend.env, check=True, cwd=configs.PROJECT_ROOT
    )
    assert "folder-objects/model/" in {item["name"] for item in backend.gcs.list_objects(BUCKET, "folder-objects/")}
    with pytest.raises(kfp_backend.LaunchError, match="not a directory|Not a directory|File exists|Is a directory"):
        backend.store.download(uri, tmp_path / "before")
    remove = "import sys; from runners import kfp_entrypoint; print(kfp_entrypoint.remove_folder_objects(sys.argv[1]))"
    removed = subprocess.run(
        backend.gcs.command([sys.executable, "-c", remove, uri]),
        env=backend.env,
        check=True,
        capture_output=True,
        text=True,
        cwd=configs.PROJECT_ROOT,
    )
    assert removed.stdout.split()[-1] == "2"  # model/ and model/variables/
    backend.store.download(uri, tmp_path / "after")
    assert (tmp_path / "after" / "variables" / "data").read_text() == "weights"
    assert (tmp_path / "after" / "saved_model.pb").read_text() == "graph"


def test_with_object_admin_alone_a_fresh_root_is_writable_only_once_the_entrypoint_made_its_folders(backend):
    """TensorFlow's makedirs on a fresh prefix walks up to the bucket and asks for it (storage.buckets.get, refused
    by the store as by GCS to an objectAdmin); the entrypoint's `prepare` makes each output's folder and the
    serving directory first, so the walk stops there. Without it (the first root) the same writes are refused."""
    if not backend.gcs:
        pytest.skip("needs the GCS-compatible server")
    script = """
import json, sys, tensorflow as tf
from runners import kfp_entrypoint

def writes(root):
    output, serving = f"{root}/run/Trainer/model", f"{root}-serving/imdb-bert-tfx"
    if "prepared" in root:
        kfp_entrypoint.prepare(json.dumps({
            "inputs": {"parameterValues": {
                "push_destination": json.dumps({"filesystem": {"base_directory": serving}})}},
            "outputs": {"artifacts": {"model": {"artifacts": [{"uri": output}]}}}}))
    results = {}
    for path in (f"{output}/Format-Serving/variables", f"{serving}/.incomplete-1"):  # as the Trainer and Pusher do
        try:
            tf.io.gfile.makedirs(path)
            results[path] = "written"
        except tf.errors.PermissionDeniedError as error:
            results[path] = "403" if "storage.buckets.get" in str(error) else str(error)
    return results

print(json.dumps({root: writes(root) for root in sys.argv[1:]}))
"""
    roots = [f"gs://{BUCKET}/fresh-root", f"gs://{BUCKET}/prepared-root"]
    result = subprocess.run(
        backend.gcs.command([sys.executable, "-c", script, *roots]),
        env=backend.env,
        cwd=configs.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.splitlines()[-1])
    assert set(outcomes[roots[0]].values()) == {"403"}, outcomes  # the fix removed: what a first cluster run met
    assert set(outcomes[roots[1]].values()) == {"written"}, outcomes
    bucket_requests = [
        line
        for line in (backend.root / "gcs" / "proxy.log").read_text().splitlines()
        if line.startswith("GET www.googleapis.com/storage/v1/b/" + BUCKET + " ")
    ]
    assert bucket_requests and all(line.endswith("-> 403") for line in bucket_requests)


def test_the_upload_command_fills_the_bucket_folder_and_a_rerun_sends_only_what_is_missing(
    backend, tiny_corpus, tmp_path
):
    """`runners.upload_corpus` (docs/kubeflow.md's way to put aclImdb in the bucket) writes every review ImdbExampleGen
    reads, objects only, with TensorFlow's own GCS filesystem as an object admin; run again after an object is
    lost, it sends that one alone."""
    import hashlib
    import http.client
    import urllib.parse

    prefix = "uploaded/aclImdb"
    destination = f"gs://{BUCKET}/{prefix}" if backend.gcs else str(tmp_path / prefix)
    command = [sys.executable, "-m", "runners.upload_corpus", str(tiny_corpus), destination,
               "--download-dir", str(tmp_path / "downloads")]  # fmt: skip
    expected = {
        path.relative_to(tiny_corpus).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(tiny_corpus.glob("*/*/*.txt"))
    }

    def upload() -> str:
        argv = backend.gcs.command(command) if backend.gcs else command
        done = subprocess.run(argv, env=backend.env, cwd=configs.PROJECT_ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
        return done.stdout

    def uploaded() -> dict[str, str]:
        if backend.gcs:
            return {
                name.removeprefix(f"{prefix}/"): digest for name, digest in backend.gcs.digests(BUCKET, prefix).items()
            }
        root = Path(destination)
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.txt")}

    assert f"{len(expected):,} review files sent, 0 already there" in upload()
    assert uploaded() == expected  # no folder objects, nothing but the reviews
    lost = next(iter(expected))
    if backend.gcs:
        connection = http.client.HTTPConnection("127.0.0.1", backend.gcs.port, timeout=30)
        connection.request("DELETE", f"/storage/v1/b/{BUCKET}/o/{urllib.parse.quote(f'{prefix}/{lost}', safe='')}")
        assert connection.getresponse().status in (200, 204)
        connection.close()
    else:
        (Path(destination) / lost).unlink()
    assert f"1 review files sent, {len(expected) - 1:,} already there" in upload()
    assert uploaded() == expected
