"""Corpus sources: downloads over a loopback HTTP server, checksums, safe extraction, bad archives."""

import hashlib
import http.server
import io
import random
import tarfile
import threading
from pathlib import Path

import pytest

from components.ingestion import imdb_source
from components.ingestion.imdb_source import SourceError


class ArchiveServer:
    """Serves one payload on 127.0.0.1 with Range support; can cut the first transfer short."""

    def __init__(self, payload: bytes, cut_first_after: int | None = None):
        self.payload, self.cut_first_after, self.requests = payload, cut_first_after, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(dict(path=self.path, range=self.headers.get("Range")))
                if self.path != "/aclImdb_v1.tar.gz":
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_first_after is not None and len(server.requests) == 1:
                    self.wfile.write(body[: server.cut_first_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/aclImdb_v1.tar.gz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def tar_bytes(entries: list[tuple[str, bytes | None]], *, link: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return buffer.getvalue()


CORPUS_ENTRIES = [
    ("aclImdb/train/pos/0_9.txt", b"A wonderful film."),
    ("aclImdb/train/neg/0_2.txt", b"Dull."),
    ("aclImdb/train/unsup/0_0.txt", b"unlabelled"),
    ("aclImdb/test/pos/0_8.txt", b"Loved it."),
    ("aclImdb/test/neg/0_1.txt", b"Hated it."),
]


@pytest.fixture
def archive() -> bytes:
    long_review = random.Random(0).randbytes(150_000).hex().encode()  # barely compressible: a big archive
    return tar_bytes(CORPUS_ENTRIES + [("aclImdb/train/pos/1_7.txt", long_review), ("aclImdb/README", b"readme")])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_downloads_verifies_and_extracts_without_unsup(archive, tmp_path):
    server = ArchiveServer(archive)
    try:
        root = Path(imdb_source.resolve(server.url, str(tmp_path), sha(archive)))
    finally:
        server.close()
    assert root.name == "aclImdb"
    assert (root / "train/pos/0_9.txt").read_bytes() == b"A wonderful film."
    assert (root / "test/neg/0_1.txt").exists()
    assert not (root / "train/unsup").exists()
    assert (tmp_path / "downloads/aclImdb_v1.tar.gz").read_bytes() == archive

    # A second resolve reuses the verified download and the extraction: no request at all.
    assert imdb_source.resolve(server.url, str(tmp_path), sha(archive)) == str(root)
    assert len(server.requests) == 1


def test_broken_transfer_resumes_with_a_range_request(archive, tmp_path):
    server = ArchiveServer(archive, cut_first_after=50_000)
    try:
        path, digest = imdb_source.download(server.url, tmp_path, sha(archive), backoff_seconds=0)
    finally:
        server.close()
    assert path.read_bytes() == archive and digest == sha(archive)
    assert [r["range"] for r in server.requests] == [None, "bytes=50000-"]


def test_checksum_mismatch_is_named_and_leaves_no_file(archive, tmp_path):
    server = ArchiveServer(archive)
    try:
        with pytest.raises(
            SourceError, match=r"aclImdb_v1.tar.gz: SHA-256 mismatch: expected 0{64}, got " + sha(archive)
        ):
            imdb_source.resolve(server.url, str(tmp_path), "0" * 64)
    finally:
        server.close()
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not (tmp_path / "extracted").exists()


def test_unknown_url_fails_clearly(archive, tmp_path):
    server = ArchiveServer(archive)
    try:
        with pytest.raises(SourceError, match=r"missing.tar.gz: HTTP 404 .*check the URL"):
            imdb_source.download(server.url.replace("aclImdb_v1", "missing"), tmp_path, None)
    finally:
        server.close()


def test_official_url_has_its_known_checksum():
    assert (
        imdb_source.KNOWN_SHA256[imdb_source.OFFICIAL_URL]
        == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
    )


@pytest.mark.parametrize(
    "entries, link, message",
    [
        ([("aclImdb/train/pos/0_9.txt", b"ok"), ("aclImdb/../../evil.txt", b"x")], None, "points outside"),
        ([("/etc/evil.txt", b"x")], None, "points outside"),
        ([("aclImdb/train/pos/0_9.txt", b"ok")], ("aclImdb/train/pos/1_9.txt", "/etc/passwd"), "link or special file"),
    ],
)
def test_unsafe_archives_are_refused_and_nothing_is_extracted(tmp_path, entries, link, message):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_bytes(entries, link=link))
    with pytest.raises(SourceError, match=rf"evil.tar.gz: entry .* {message}"):
        imdb_source.resolve(str(archive), str(tmp_path / "cache"))
    assert list((tmp_path / "cache" / "extracted").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_truncated_archive_is_named(archive, tmp_path):
    truncated = tmp_path / "aclImdb_v1.tar.gz"
    truncated.write_bytes(archive[: len(archive) // 40])
    with pytest.raises(SourceError, match=r"aclImdb_v1.tar.gz: corrupt or truncated archive.*download it again"):
        imdb_source.resolve(str(truncated), str(tmp_path / "cache"))
    assert list((tmp_path / "cache" / "extracted").iterdir()) == []


def test_local_tarball_with_wrong_checksum_is_refused(archive, tmp_path):
    path = tmp_path / "aclImdb_v1.tar.gz"
    path.write_bytes(archive)
    with pytest.raises(SourceError, match="SHA-256 mismatch"):
        imdb_source.resolve(str(path), str(tmp_path / "cache"), "f" * 64)
    assert Path(imdb_source.resolve(f"file://{path}", str(tmp_path / "cache"), sha(archive))).name == "aclImdb"


def test_folders_resolve_to_the_corpus_root(tmp_path):
    (tmp_path / "data/aclImdb/train").mkdir(parents=True)
    assert imdb_source.resolve(str(tmp_path / "data"), "unused") == str(tmp_path / "data/aclImdb")
    assert imdb_source.resolve(str(tmp_path / "data/aclImdb"), "unused") == str(tmp_path / "data/aclImdb")
    with pytest.raises(SourceError, match=r"no aclImdb corpus found"):
        imdb_source.resolve(str(tmp_path), "unused")
    with pytest.raises(SourceError, match=r"nowhere: no such file or folder"):
        imdb_source.resolve(str(tmp_path / "nowhere"), "unused")
