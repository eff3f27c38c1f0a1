"""The model server (`runners.serve`), started as a user starts it, on a loopback port, with real tiny SavedModels,
answering real HTTP requests: docs/serving.md's TF Serving bodies, V2, status, bad requests, versions pushed and rolled
back under load, a broken version, and SIGTERM while a request is in flight."""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from components.serving import atomic_pusher
from modules import model as model_lib
from modules import serving_versions
from tests.support.docs import docs_text

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAX_INSTANCES, MAX_BODY_BYTES = 8, 20_000
REVIEWS = ["A wonderful, moving and brilliant film.", "Awful.", " ".join(["dull"] * 80), "It was fine, I guess."]
HEAD_WEIGHTS = {"first": 0.3, "second": -0.3}  # two versions whose answers differ


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory) -> dict[str, Path]:
    """Two versions of a tiny classifier, outside any serving directory."""
    spec = model_lib.ClassifierSpec(str(tiny_bert.preprocess), str(tiny_bert.encoder), seq_length=64, dropout_rate=0.1)
    root, models = tmp_path_factory.mktemp("exports"), {}
    for name, weight in HEAD_WEIGHTS.items():
        classifier = model_lib.build_classifier(spec)
        head = classifier.logit_model.get_layer("classifier")
        head.set_weights([np.full_like(w, weight) for w in head.get_weights()])
        model_lib.export_serving_model(classifier, str(root / name))
        models[name] = root / name
    return models


def expected_probabilities(model_dir: Path, texts: list[str]) -> list[float]:
    signature = tf.saved_model.load(str(model_dir)).signatures[model_lib.TEXT_SIGNATURE]
    return [float(p) for p in signature(text=tf.constant(texts))["probability"].numpy().ravel()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m runners.serve` in a child process; its console lines are in `out` and `err`."""

    def __init__(self, tmp_path: Path, *args: str):
        self.port = free_port()
        self.out, self.err = tmp_path / "console.out", tmp_path / "console.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runners.serve", "--port", str(self.port), "--log-file",
                 str(tmp_path / "serve.log"), *args],
                cwd=PROJECT_ROOT, stdout=out, stderr=err, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
            )  # fmt: skip

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.err.read_text()}"
            try:
                if self.get("/v2/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"not ready in {timeout} s: {self.err.read_text()}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()

    def get(self, path: str):
        status, body, headers = self.request("GET", path)
        return status, json.loads(body), headers

    def predict(self, body: dict | bytes, content_type: str | None = "application/json", model: str = "imdb"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, answer, headers = self.request(
            "POST", f"/v1/models/{model}:predict", data, {"Content-Type": content_type} if content_type else {}
        )
        return status, json.loads(answer), headers

    def console(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def serving(exported, tmp_path_factory):
    """A serving directory holding the first version, and a server following it."""
    tmp_path = tmp_path_factory.mktemp("server")
    base = tmp_path / "serving"
    atomic_pusher.push(str(exported["first"]), str(base))
    server = Server(tmp_path, "--serving-dir", str(base), "--poll-seconds", "0.2",
                    "--max-instances", str(MAX_INSTANCES), "--max-body-bytes", str(MAX_BODY_BYTES))  # fmt: skip
    try:
        server.wait_ready()
        yield server, base
    finally:
        server.stop()


def readme_request(signature: str) -> dict:
    readme = docs_text("serving")
    block = re.search(rf"<!-- rest-request: {signature} -->\n```bash\n(.*?)```", readme, re.S).group(1)
    assert "localhost:8501/v1/models/imdb:predict" in block
    return json.loads(block[block.index("-d '") + 4 : block.rindex("'")])


def example(text: str) -> dict:
    return {"b64": base64.b64encode(model_lib.text_example(text)).decode()}


def test_the_readme_requests_get_tf_serving_answers_in_both_forms(serving, exported):
    server, _ = serving
    # docs/serving.md's exact bodies, sent as its curl lines send them (form-encoded content type) and as JSON.
    for signature in ("predict_text", "serving_default"):
        body = readme_request(signature)
        for content_type in ("application/x-www-form-urlencoded", "application/json"):
            status, answer, _ = server.predict(body, content_type)
            assert status == 200, answer
            assert set(answer) == {"predictions"}
            for row in answer["predictions"]:
                assert set(row) == {"probability", "label"}
                assert len(row["probability"]) == 1 and 0 <= row["probability"][0] <= 1
                assert row["label"] in (["positive"], ["negative"])
    expected = expected_probabilities(exported["first"], REVIEWS)
    ways = {
        "text, instances": {"signature_name": "predict_text", "instances": REVIEWS},
        "text, named instances": {"signature_name": "predict_text", "instances": [{"text": t} for t in REVIEWS]},
        "examples, instances": {"instances": [example(t) for t in REVIEWS]},
        "examples, named instances": {"instances": [{"examples": example(t)} for t in REVIEWS]},
    }
    for way, body in ways.items():
        status, answer, headers = server.predict(body)
        assert status == 200, (way, answer)
        assert headers["x-model-version"] == str(serving_versions.versions(str(serving[1]))[0])
        got = [row["probability"][0] for row in answer["predictions"]]
        np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=way)
        labels = [row["label"][0] for row in answer["predictions"]]
        assert labels == ["positive" if p >= 0.5 else "negative" for p in expected]
    for body in (
        {"signature_name": "predict_text", "inputs": REVIEWS},
        {"signature_name": "predict_text", "inputs": {"text": REVIEWS}},
        {"inputs": {"examples": [example(t) for t in REVIEWS]}},
    ):
        status, answer, _ = server.predict(body)
        assert status == 200, answer
        assert set(answer) == {"outputs"} and set(answer["outputs"]) == {"probability", "label"}
        np.testing.assert_allclose([p[0] for p in answer["outputs"]["probability"]], expected, atol=1e-6)
        assert len(answer["outputs"]["label"]) == len(REVIEWS)


def test_v2_status_health_and_metrics(serving, exported):
    server, base = serving
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": REVIEWS[:2]}]}
    status, raw, _ = server.request("POST", "/v2/models/imdb/infer", json.dumps(body).encode(),
                                    {"Content-Type": "application/json"})  # fmt: skip
    answer = json.loads(raw)
    assert status == 200, answer
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert outputs["probability"]["shape"] == [2, 1] and outputs["probability"]["datatype"] == "FP32"
    np.testing.assert_allclose(
        np.ravel(outputs["probability"]["data"]), expected_probabilities(exported["first"], REVIEWS[:2]), atol=1e-6
    )
    assert len(outputs["label"]["data"]) == 2
    status, metadata, _ = server.get("/v2/models/imdb")
    assert status == 200 and metadata["inputs"][0]["name"] == "text"
    status, model_status, _ = server.get("/v1/models/imdb")
    assert status == 200 and model_status["ready"] is True
    [version] = model_status["model_version_status"]
    assert version["state"] == "AVAILABLE" and version["version"] == str(serving_versions.versions(str(base))[-1])
    assert server.get("/v1/models/other")[0] == 404
    assert server.get("/")[1] == {"status": "alive"}
    status, metrics, _ = server.request("GET", "/metrics")
    assert status == 200 and b"request_predict_seconds" in metrics


BAD_REQUESTS = {
    "malformed JSON": (b'{"instances": ["unclosed"', "application/json", "not JSON"),
    "malformed JSON, curl's default type": (b'{"instances": [', None, "not JSON"),
    "no instances": ({"signature_name": "predict_text"}, "application/json", "neither 'instances' nor 'inputs'"),
    "both forms": ({"instances": ["a"], "inputs": ["a"]}, "application/json", "both"),
    "a number for a review": ({"signature_name": "predict_text", "instances": ["fine", 5]}, "application/json",
                              "instances[1] is 5, not a string"),
    "unknown signature": ({"signature_name": "classify", "instances": ["a"]}, "application/json", "is not served"),
    "empty list": ({"signature_name": "predict_text", "instances": []}, "application/json", "is empty"),
    "too many instances": ({"signature_name": "predict_text", "instances": ["a"] * (MAX_INSTANCES + 1)},
                           "application/json", f"more than the {MAX_INSTANCES}"),
    "raw text to serving_default": ({"instances": ["a review"]}, "application/json", "not base64"),
    "bad base64": ({"instances": [{"b64": "%%%"}]}, "application/json", "not base64"),
    "base64 of no tf.Example": ({"instances": [{"b64": base64.b64encode(b"\xff\x00junk").decode()}]},
                                "application/json", "not a serialized tf.Example"),
    "instances not a list": ({"signature_name": "predict_text", "instances": "a review"}, "application/json",
                             "must be a list"),
    "body over the limit": ({"signature_name": "predict_text", "instances": ["x" * (MAX_BODY_BYTES + 1)]},
                            "application/json", f"over {MAX_BODY_BYTES} bytes"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_a_4xx_with_one_line_that_says_what_to_send(serving, case):
    server, _ = serving
    body, content_type, says = BAD_REQUESTS[case]
    status, answer, _ = server.predict(body, content_type)
    assert 400 <= status < 500, answer
    assert set(answer) == {"error"} and "\n" not in answer["error"] and says in answer["error"], answer
    if status == 400 and "not JSON" not in says and "limit" not in case:
        assert "send" in answer["error"] or "split" in answer["error"] or "use" in answer["error"], answer
    status, _, _ = server.predict({"signature_name": "predict_text", "instances": ["still serving"]})
    assert status == 200


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(serving):
    server, _ = serving
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"x" * 4096 for _ in range(MAX_BODY_BYTES // 4096 + 5))
    connection.request("POST", "/v1/models/imdb:predict", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    response = connection.getresponse()
    assert response.status == 413 and "over" in json.loads(response.read())["error"]
    connection.close()


def client_loop(server: Server, stop: threading.Event, answers: list, failures: list) -> None:
    """Requests one after another until `stop`: (version, probabilities) answers, anything else a failure."""
    body = {"signature_name": "predict_text", "instances": REVIEWS}
    while not stop.is_set():
        try:
            status, answer, headers = server.predict(body)
        except OSError as error:
            failures.append(repr(error))
            continue
        if status != 200:
            failures.append((status, answer))
        else:
            answers.append((headers["x-model-version"], [row["probability"][0] for row in answer["predictions"]]))


def wait_until_served(server: Server, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.get("/v1/models/imdb")[1]["model_version_status"][0]["version"] != version:
        assert time.monotonic() < deadline, f"version {version} not served: {server.console()}"
        time.sleep(0.1)


def test_a_pushed_version_and_a_rollback_swap_in_under_load_with_no_failed_request(serving, exported):
    server, base = serving
    first_version = str(serving_versions.versions(str(base))[-1])
    expected = {name: expected_probabilities(path, REVIEWS) for name, path in exported.items()}
    stop, answers, failures = threading.Event(), [], []
    clients = [threading.Thread(target=client_loop, args=(server, stop, answers, failures)) for _ in range(4)]
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        second_version, _ = atomic_pusher.push(str(exported["second"]), str(base))
        wait_until_served(server, second_version)
        time.sleep(1)
        rolled_back, _ = atomic_pusher.rollback(str(base), int(first_version))
        wait_until_served(server, rolled_back)
        time.sleep(1)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
    assert failures == []
    by_version = {first_version: "first", second_version: "second", rolled_back: "first"}
    assert {version for version, _ in answers} == set(by_version), "every version answered"
    for version, probabilities in answers:  # each answer whole from the version that says it answered
        np.testing.assert_allclose(probabilities, expected[by_version[version]], atol=1e-6)
    swaps = re.findall(r"Serving version (\d+) .*was (\d+)", server.console())
    assert swaps == [(second_version, first_version), (rolled_back, second_version)]


def test_a_broken_version_is_refused_with_one_line_and_the_served_one_goes_on(serving):
    server, base = serving
    served = server.get("/v1/models/imdb")[1]["model_version_status"][0]["version"]
    broken = base / str(int(served) + 1000)
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    try:
        deadline = time.monotonic() + 60
        while f"Refused version {broken.name}" not in server.console():
            assert time.monotonic() < deadline, server.console()
            time.sleep(0.1)
        time.sleep(1)  # five more polls: refused once, not at each
        refusals = [line for line in server.console().splitlines() if "Refused version" in line]
        assert len(refusals) == 1 and str(broken) in refusals[0] and f"{served} goes on serving" in refusals[0]
        status, answer, headers = server.predict({"signature_name": "predict_text", "instances": ["still here"]})
        assert status == 200 and headers["x-model-version"] == served
    finally:
        shutil.rmtree(broken)


def test_sigterm_answers_the_request_in_flight_then_exits_0(serving):
    server, _ = serving
    body = json.dumps({"signature_name": "predict_text", "instances": REVIEWS}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.putrequest("POST", "/v1/models/imdb:predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body[:10])  # the request is in flight: its body is still coming
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1)
    with pytest.raises(ConnectionRefusedError):  # no new requests once stopping
        server.get("/v1/models/imdb")
    connection.send(body[10:])
    response = connection.getresponse()
    assert response.status == 200 and len(json.loads(response.read())["predictions"]) == len(REVIEWS)
    assert server.process.wait(timeout=60) == 0
    assert "Stopped: the requests in flight were answered" in server.out.read_text()
    assert "Traceback" not in server.console()


def test_a_missing_model_or_serving_directory_stops_with_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, says in (
        (["--model", str(empty)], "no saved_model.pb there"),
        (["--serving-dir", str(empty)], "no pushed model version"),
        ([], "make run"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "runners.serve", "--log-file", str(tmp_path / "serve.log"), *args],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "IMDB_BERT_TFX_OUTPUT": str(tmp_path / "output")},
        )  # fmt: skip
        assert result.returncode == 2, result
        assert len(result.stderr.splitlines()) == 1 and says in result.stderr, result.stderr
