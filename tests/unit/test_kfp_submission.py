"""--submit kfp against a multi-user Kubeflow's API server, played on loopback by a server that refuses what the
real one refuses: no credential (401, the API server's grpc-gateway error body), a namespace the identity may not
use (403); and accepts a bearer token (kfp's own ServiceAccountTokenVolumeCredentials reads the file) or the
session cookie oauth2-proxy turns into the user's identity. The spec is compiled for real and sent by kfp.Client."""

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import kubeflow_runner
from runners import kubeflow_submit
from tests.unit.test_kubeflow_runner import BASE_FLAGS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOKEN, SESSION, NAMESPACE = "token-of-default-editor", "oauth2_proxy_kubeflow=session-of-a-user", "team-a"


class ApiServer(http.server.ThreadingHTTPServer):
    """The two calls `create_run_from_pipeline_package` makes (find the experiment, create the run), behind the
    multi-user API server's authentication."""

    def __init__(self):
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", 0), ApiHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class ApiHandler(http.server.BaseHTTPRequestHandler):
    server: ApiServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.server.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                     "cookie": self.headers.get("Cookie"), "body": body})  # fmt: skip
        if self.headers.get("Authorization") != f"Bearer {TOKEN}" and SESSION not in (self.headers.get("Cookie") or ""):
            message = (
                "Failed to authorize with API: Failed to authenticate: Request header error: there is no user "
                "identity header."
            )
            return self._send(401, {"error": message, "code": 16, "message": message, "details": []})
        namespace = body.get("namespace") or ("namespace=" + NAMESPACE in self.path and NAMESPACE)
        if self.command == "GET" and namespace != NAMESPACE:
            message = "Failed to authorize with API: PermissionDenied: User is not authorized to list experiments"
            return self._send(403, {"error": message, "code": 7, "message": message, "details": []})
        if self.command == "GET":
            return self._send(200, {"experiments": [{"experiment_id": "e1", "display_name": "imdb-bert-tfx"}]})
        return self._send(200, {"run_id": "r1", "experiment_id": "e1", "display_name": "run"})

    do_GET = do_POST = _answer

    def _send(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api():
    server = ApiServer()
    yield server
    server.shutdown()


def submit(api: ApiServer, tmp_path: Path, *flags: str) -> None:
    kubeflow_runner.main([*BASE_FLAGS, "--output-file", str(tmp_path / "spec.json"), "--submit", "kfp",
                          "--kfp-host", api.url, *flags])  # fmt: skip


def test_without_a_credential_the_refusal_is_one_line_naming_what_to_pass(api, tmp_path):
    with pytest.raises(kubeflow_submit.SubmitError) as refused:
        submit(api, tmp_path, "--kfp-namespace", NAMESPACE)
    message = str(refused.value)
    assert "\n" not in message and "refused it (401" in message and "no user identity header" in message
    assert (
        "--kfp-token-file" in message
        and "--kfp-cookie-file" in message
        and "--audience pipelines.kubeflow.org" in message
    )


def test_a_token_file_logs_in_through_kfps_own_credentials(api, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    submit(api, tmp_path, "--kfp-namespace", NAMESPACE, "--kfp-token-file", str(token_file))
    assert [r["authorization"] for r in api.requests] == [f"Bearer {TOKEN}"] * 2
    assert api.requests[-1]["path"] == "/apis/v2beta1/runs" and api.requests[-1]["body"]["pipeline_spec"]


def test_the_token_file_defaults_to_kfps_own_environment_variable(api, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    result = subprocess.run(
        [sys.executable, "kubeflow_runner.py", *BASE_FLAGS, "--output-file", str(tmp_path / "spec.json"),
         "--submit", "kfp", "--kfp-host", api.url, "--kfp-namespace", NAMESPACE],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "Submitted to Kubeflow Pipelines" in result.stdout, result.stderr[-2000:]
    assert api.requests and all(r["authorization"] == f"Bearer {TOKEN}" for r in api.requests)


def test_a_session_cookie_logs_in_behind_dex_and_oauth2_proxy(api, tmp_path):
    cookie_file = tmp_path / "cookie"
    cookie_file.write_text(SESSION + "\n")
    submit(api, tmp_path, "--kfp-namespace", NAMESPACE, "--kfp-cookie-file", str(cookie_file))
    assert [r["cookie"] for r in api.requests] == [SESSION] * 2


def test_a_namespace_the_identity_may_not_use_is_refused_in_one_line(api, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with pytest.raises(kubeflow_submit.SubmitError) as refused:
        submit(api, tmp_path, "--kfp-namespace", "team-b", "--kfp-token-file", str(token_file))
    message = str(refused.value)
    assert "\n" not in message and "refused it (403" in message and "--kfp-namespace" in message


def test_a_missing_credential_file_stops_before_compiling_with_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "kubeflow_runner.py", *BASE_FLAGS, "--output-file", str(tmp_path / "spec.json"),
         "--submit", "kfp", "--kfp-token-file", str(tmp_path / "no-token")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"--kfp-token-file {tmp_path / 'no-token'}: no such file" in result.stderr
    assert not (tmp_path / "spec.json").exists()
