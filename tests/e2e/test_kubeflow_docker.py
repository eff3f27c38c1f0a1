"""The compiled Kubeflow pipeline runs in the real image, in containers, by KFP's own local runner.

Opt-in (IMDB_BERT_TFX_DOCKER_TESTS=1, or `make test-kubeflow`): it needs root or a running Docker engine,
debootstrap and a few GB of disk, and takes about half an hour on 2 cores. scripts/build_image.sh builds the
image on a Debian base made here (no Docker Hub); `kubeflow_runner.py --target kfp-local` compiles the spec;
the pipeline YAML is loaded with `kfp.components.load_component_from_file` and run under
`kfp.local.DockerRunner`: every task is a container of that image as a cluster runs it, as the image's own user
(uid 1000, not root) with its network off (a cluster without egress), training the encoder the spec names by
default, the offline MiniLM the image holds (at the tutorial's quick-look settings, 64 tokens), with the tiny
offline corpus and the serving directory mounted at their paths (kfp.local mounts the pipeline root itself;
both are writable by anyone, as a bucket is by the pipeline's service account). The `best` recipe's spec names
the same MiniLM, loaded in a container of the image with its network off as well.

Three runs share one serving directory: the first has no baseline and is pushed, the second starts from the
first's model (--warm-start) and is judged against it, the third (one step at a learning rate of 1e-12) is rejected
and pushes nothing. The first run's pushed model is then served in a container of the image as the KServe custom
predictor's manifest starts it (deploy/kserve/imdb-bert-tfx-server.yaml).
"""

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

import kubeflow_runner
from config import pipeline as configs
from modules import serving_versions
from runners import kubeflow_submit
from tests.support.serving_checks import assert_warmup_requests_are_served

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("IMDB_BERT_TFX_DOCKER_TESTS") != "1",
        reason="opt-in: IMDB_BERT_TFX_DOCKER_TESTS=1 (make test-kubeflow)",
    ),
]

IMAGE = "imdb-bert-tfx:test"
IMAGE_USER = 1000  # the Dockerfile's USER


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    subprocess.run([str(configs.PROJECT_ROOT / "scripts" / "build_image.sh"), IMAGE], check=True)
    print(f"image {IMAGE} ready in {time.monotonic() - started:.0f} s")
    return IMAGE


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_corpus) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kfp_docker")
    paths = {
        "root": root,
        "pipeline_root": root / "pipeline_root",
        "serving": root / "serving",
        "corpus": tiny_corpus,
    }
    for writable in ("pipeline_root", "serving"):
        paths[writable].mkdir()
        paths[writable].chmod(0o777)
    for path in [tiny_corpus, *tiny_corpus.rglob("*")]:  # readable by the tasks' user, as a bucket is
        path.chmod(0o755 if path.is_dir() else 0o644)
    return paths


def run_in_containers(image: str, workspace: dict[str, Path], name: str, *flags: str) -> Path:
    """Compiles for kfp.local, runs the pipeline YAML under DockerRunner; returns the run's report.md."""
    import docker
    from kfp import components, local

    job_path = workspace["root"] / f"{name}.json"
    kubeflow_runner.main(
        [
            "--target",
            "kfp-local",
            "--image",
            image,
            "--output-file",
            str(job_path),
            "--pipeline-root",
            str(workspace["pipeline_root"]),
            "--data",
            str(workspace["corpus"]),
            "--serving-model-dir",
            str(workspace["serving"]),
            "--recipe",
            "quick-look",
            "--seq-length",
            "64",
            "--epochs",
            "2",
            *flags,
        ]
    )
    trainer = json.loads(job_path.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]
    training = json.loads(trainer["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert training["encoder_handle"].startswith("/opt/imdb-bert-tfx/.cache/minilm_hub"), "the image's MiniLM"
    pipeline = components.load_component_from_file(kubeflow_submit.kfp_package(str(job_path)))

    def bind(path: Path, read_only: bool) -> docker.types.Mount:
        return docker.types.Mount(target=str(path), source=str(path), type="bind", read_only=read_only)

    local.init(
        runner=local.DockerRunner(
            mounts=[bind(workspace["corpus"], True), bind(workspace["serving"], False)], network_mode="none"
        ),
        pipeline_root=str(workspace["pipeline_root"]),
    )
    before = set(workspace["pipeline_root"].rglob("report.md"))
    started = time.monotonic()
    pipeline()  # raises if any task fails
    print(f"{name}: every task finished in containers in {time.monotonic() - started:.0f} s")
    (report,) = set(workspace["pipeline_root"].rglob("report.md")) - before
    assert report.stat().st_uid == IMAGE_USER, "the tasks ran as the image's user"
    return report


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def first_run(image, workspace) -> str:
    return run_in_containers(image, workspace, "first").read_text()


@pytest.fixture(scope="module")
def second_run(first_run, image, workspace) -> tuple[str, list[str]]:
    served_before = sorted(os.listdir(workspace["serving"]))
    report = run_in_containers(
        image,
        workspace,
        "second",
        "--warm-start",
    ).read_text()
    return report, served_before


def test_the_default_specs_encoder_loads_in_the_image_with_no_network(image, tmp_path):
    job_path = tmp_path / "default.json"
    kubeflow_runner.main(
        [
            "--target",
            "kfp",
            "--image",
            "registry.example/team/imdb-bert-tfx:1",
            "--pipeline-root",
            "gs://b/root",
            "--data",
            "gs://b/aclImdb",
            "--serving-model-dir",
            "gs://b/serving",
            "--output-file",
            str(job_path),
        ]
    )
    trainer = json.loads(job_path.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]["Trainer"]
    training = json.loads(trainer["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    check = (
        "import sys; from modules import encoders; "
        "encoders.check_handles(encoders.EncoderHandles(sys.argv[1], sys.argv[2]), int(sys.argv[3])); print('ok')"
    )
    loaded = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "python",
            "-c",
            check,
            training["encoder_handle"],
            training["preprocess_handle"],
            str(training["seq_length"]),
        ],
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0 and loaded.stdout.split()[-1] == "ok", loaded.stderr[-2000:]
    assert training["seq_length"] == configs.recipe(configs.REAL_DATA_RECIPE)["seq_length"]


def test_first_run_has_no_baseline_is_blessed_and_pushed(first_run, workspace):
    assert "# Model evaluation: BLESSED" in first_run
    assert "none: nothing is served yet (first run)" in first_run
    (version,) = os.listdir(workspace["serving"])
    assert_warmup_requests_are_served(workspace["serving"] / version)


def test_second_run_starts_from_and_is_judged_against_the_first_runs_served_model(second_run, workspace):
    report, served_before = second_run
    (first_version,) = served_before
    assert f"served version {first_version} from {workspace['serving']}" in report
    assert re.search(
        rf"\| candidate \| {re.escape(str(workspace['corpus']))}[^|]*; warm-started from served version "
        rf"{first_version} \|",
        report,
    ), report
    assert "change vs. baseline" in report and "skipped: no baseline" not in report


def test_an_untrained_candidate_is_rejected_and_the_serving_directory_is_unchanged(second_run, image, workspace):
    before = tree_digest(workspace["serving"])
    report = run_in_containers(
        image, workspace, "untrained", "--train-steps", "1", "--learning-rate", "1e-12"
    ).read_text()
    assert "# Model evaluation: NOT BLESSED" in report
    assert "Not pushed: the serving directory is unchanged." in report
    assert tree_digest(workspace["serving"]) == before


IN_CONTAINER_REQUEST = r"""
import json, sys, urllib.request
url, body = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
request = urllib.request.Request(url, data=body and body.encode(), method="POST" if body else "GET")
try:
    with urllib.request.urlopen(request, timeout=60) as response:
        print(json.dumps({"status": response.status, "version": response.headers.get("x-model-version"),
                          "body": json.loads(response.read())}))
except OSError as error:
    print(json.dumps({"status": getattr(error, "code", 0), "body": str(error)}))
"""


def test_the_custom_predictor_serves_the_pushed_model_in_the_image_as_its_manifest_says(first_run, image, workspace):
    """The InferenceService's container (deploy/kserve/imdb-bert-tfx-server.yaml: command, args, port, the image's
    own user) with the serving directory where KServe's storage initializer puts it, network off: docs/serving.md's
    requests are answered from inside the container, and `docker stop` (SIGTERM) ends it with exit code 0."""
    import yaml

    manifest = yaml.safe_load((configs.PROJECT_ROOT / "deploy" / "kserve" / "imdb-bert-tfx-server.yaml").read_text())
    [container] = manifest["spec"]["predictor"]["containers"]
    assert container["args"][:2] == ["--serving-dir", "/mnt/models"]
    command = container["command"]
    started = subprocess.run(
        ["docker", "run", "-d", "--network", "none", "--entrypoint", command[0],
         "--mount", f"type=bind,source={workspace['serving']},target=/mnt/models,readonly",
         image, *command[1:], *container["args"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    container_id = started.stdout.strip()
    base_url = f"http://127.0.0.1:{container['ports'][0]['containerPort']}"

    def request(path: str, body: dict | None = None) -> dict:
        extra = [json.dumps(body)] if body is not None else []
        done = subprocess.run(
            ["docker", "exec", container_id, "python", "-c", IN_CONTAINER_REQUEST, base_url + path, *extra],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    try:
        deadline = time.monotonic() + 300
        while request("/v1/models/imdb")["status"] != 200:
            assert time.monotonic() < deadline, subprocess.run(["docker", "logs", container_id], capture_output=True,
                                                               text=True).stderr[-3000:]  # fmt: skip
            time.sleep(2)
        version = str(serving_versions.versions(str(workspace["serving"]))[-1])  # the highest: the one served
        body = {"signature_name": "predict_text", "instances": ["A delight from start to finish.", "Dreadful."]}
        answer = request("/v1/models/imdb:predict", body)
        assert answer["status"] == 200 and answer["version"] == version, answer
        assert [set(row) for row in answer["body"]["predictions"]] == [{"probability", "label"}] * 2
        user = subprocess.run(["docker", "exec", container_id, "id", "-u"], capture_output=True, text=True)
        assert user.stdout.strip() == "1000", "the image's own user, as on a cluster"
    finally:
        subprocess.run(["docker", "stop", "-t", "30", container_id], capture_output=True)
        exit_code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", container_id],
                                   capture_output=True, text=True).stdout.strip()  # fmt: skip
        logs = subprocess.run(["docker", "logs", container_id], capture_output=True, text=True)
        subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)
    assert exit_code == "0", logs.stdout[-2000:] + logs.stderr[-2000:]
    assert f"Serving version {version}" in logs.stdout + logs.stderr
