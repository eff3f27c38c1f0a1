"""Turns a corpus source into a verified, extracted aclImdb folder.

A source is an http(s) URL of the aclImdb tarball (downloaded with progress logs, resumed or retried when the
transfer breaks, checked against a SHA-256), a local or `file://` `.tar.gz` / `.tgz` / `.tar` (checked if a
SHA-256 is given), or an extracted folder (used in place). Extraction refuses any entry that is not a plain
file or folder inside the target, skips `train/unsup`, and appears atomically; a local folder is refused the same way
if it holds a link or a special file anywhere (the folder named may itself be a link).
"""

import hashlib
import http.client
import os
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from absl import logging

from components.ingestion import imdb_layout, imdb_spans
from config.examples import has_spans
from modules import staging

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
KNOWN_SHA256 = {OFFICIAL_URL: "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"}

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SKIPPED_FOLDER = "train/unsup"  # unlabelled reviews
CHUNK_BYTES = 1 << 20


class SourceError(RuntimeError):
    """The corpus source cannot be used; the message names the file or URL and the fix."""


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_sha256(path: Path, expected: str | None, origin: str) -> str:
    """Returns the file's SHA-256; raises if `expected` is given and differs."""
    actual = sha256_of(path)
    if expected and actual != expected.lower():
        raise SourceError(
            f"{origin}: SHA-256 mismatch: expected {expected}, got {actual} ({path.stat().st_size} bytes). "
            f"The file is corrupt or not the expected archive; delete it and fetch it again, or pass the "
            f"right checksum (--data-sha256) if the archive legitimately changed."
        )
    if not expected:
        logging.info("%s has SHA-256 %s; pass it as --data-sha256 to pin this archive.", origin, actual)
    return actual


def _log_progress(url: str, received: int, total: int | None, started: float) -> None:
    rate = received / max(time.monotonic() - started, 1e-6) / 1e6
    if total:
        logging.info(
            "Downloading %s: %5.1f%% (%.1f / %.1f MB, %.1f MB/s)",
            url,
            100 * received / total,
            received / 1e6,
            total / 1e6,
            rate,
        )
    else:
        logging.info("Downloading %s: %.1f MB (%.1f MB/s)", url, received / 1e6, rate)


def _fetch_once(url: str, partial: Path, timeout: float) -> None:
    """Appends the rest of `url` to `partial` (resuming with a Range request); raises if cut short."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if offset and response.status != 206:
            logging.info("%s does not support resuming; restarting the download.", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received, started, next_report = offset, time.monotonic(), 0.0
        with open(partial, "ab" if offset else "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                if time.monotonic() >= next_report:
                    _log_progress(url, received, total, started)
                    next_report = time.monotonic() + 2.0
        _log_progress(url, received, total, started)
        if total is not None and received < total:
            raise ConnectionError(f"transfer ended at {received} of {total} bytes")


def download(
    url: str,
    download_dir: Path,
    expected_sha256: str | None,
    *,
    retries: int = 5,
    backoff_seconds: float = 2.0,
    timeout: float = 60.0,
) -> tuple[Path, str]:
    """Downloads `url` into `download_dir` (reusing a complete earlier one that matches); its path and SHA-256."""
    target = Path(download_dir) / (PurePosixPath(urllib.parse.urlparse(url).path).name or "download")
    if target.exists():
        actual = sha256_of(target)
        if not expected_sha256 or actual == expected_sha256.lower():
            logging.info("Using the cached download %s", target)
            return target, actual
        logging.warning("Cached %s does not match the expected SHA-256; downloading again.", target)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _fetch_once(url, partial, timeout)
            break
        except (OSError, http.client.HTTPException) as error:  # OSError: URLError, timeouts, broken connections
            code = error.code if isinstance(error, urllib.error.HTTPError) else 0
            if code == 416:  # the partial file is already complete (or longer than the file)
                partial.unlink(missing_ok=True)
            elif 400 <= code < 500:
                raise SourceError(f"{url}: HTTP {code} {getattr(error, 'reason', '')}; check the URL.") from error
            logging.warning("Download of %s broke (%s); attempt %d of %d, resuming.", url, error, attempt, retries)
            if attempt == retries:
                raise SourceError(
                    f"{url}: download failed after {retries} attempts ({error}); the partial file "
                    f"{partial} is kept and the next run resumes from it. Check the network or the URL."
                ) from error
        time.sleep(backoff_seconds * attempt)
    try:
        actual = verify_sha256(partial, expected_sha256, url)
    except SourceError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target, actual


def _members(tar: tarfile.TarFile, archive: Path) -> Iterator[tarfile.TarInfo]:
    """The entries to extract (not train/unsup), logging progress; raises at the first that could escape."""
    files = 0
    for member in tar:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or member.name.startswith(("/", "\\")):
            raise SourceError(
                f"{archive}: entry '{member.name}' points outside the extraction folder; refusing to extract "
                f"this archive. Use the official aclImdb archive or repack it with relative paths."
            )
        if not (member.isfile() or member.isdir()):
            raise SourceError(
                f"{archive}: entry '{member.name}' is a link or special file; refusing to extract this "
                f"archive. Repack it with plain files only."
            )
        if not path.parts or f"/{SKIPPED_FOLDER}/" in f"/{path}/":
            continue
        files += member.isfile()
        if member.isfile() and files % 10_000 == 0:
            logging.info("Extracted %d files from %s", files, archive)
        yield member


def extract(archive: Path, target: Path) -> Path:
    """Safely extracts `archive` into `target` (atomically; reused when already complete)."""
    if target.exists():
        return target
    logging.info("Extracting %s into %s", archive, target)
    with staging.staged(target) as staged_target:
        staged_target.mkdir()
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staged_target, members=_members(tar, archive), filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise SourceError(
                f"{archive}: corrupt or truncated archive ({type(error).__name__}: {error}); delete "
                f"it and download it again."
            ) from error
    return target


def find_corpus_root(folder: Path, origin: str) -> Path:
    """The folder holding `train/` and `test/`: `folder` itself or its `aclImdb/` child."""
    for candidate in (folder, folder / "aclImdb"):
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            return candidate
    raise SourceError(
        f"{origin}: no aclImdb corpus found (expected train/ and test/ folders, or an aclImdb/ folder "
        f"holding them, in {folder}). Point the source at the extracted 'aclImdb' folder or its tarball."
    )


def refuse_links(root: Path) -> Path:
    """`root`, once no entry anywhere in it is a link or a special file (nothing is followed: a link could take the
    corpus's reviews from, or its reading to, anywhere); raises SourceError naming the first one."""
    folders = [str(root)]
    while folders:
        with os.scandir(folders.pop()) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.is_symlink():
                raise SourceError(
                    f"{entry.path}: a link (to {os.readlink(entry.path)}) in the corpus folder {root}; refusing "
                    f"to read this corpus. Replace the link with a copy of what it points to, or remove it."
                )
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif not entry.is_file(follow_symlinks=False):
                raise SourceError(
                    f"{entry.path}: a special file (not a plain file or folder) in the corpus folder {root}; "
                    f"refusing to read this corpus. Remove it."
                )
    return root


def check_local_source(source: str) -> Path | None:
    """A local source's corpus root (a folder) or archive, once checked (for a `{SPAN}` series: its newest span is
    such a folder; None). None for URLs and cloud folders (gs://, s3://, ...: read in place), checked when read."""
    if has_spans(source):
        if "://" not in source:
            try:
                selection = imdb_spans.find_and_select(os.path.expanduser(source), None)
            except imdb_spans.SpanError as error:
                raise SourceError(str(error)) from error
            find_corpus_root(Path(selection.newest.path), selection.newest.path)
        return None
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else source).expanduser()
    if path.is_dir():
        return find_corpus_root(path, source)
    if not path.exists():
        raise SourceError(f"{source}: no such file or folder; give an aclImdb folder, tarball or URL.")
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise SourceError(
            f"{source}: not a folder or a {'/'.join(ARCHIVE_SUFFIXES)} archive; give an aclImdb folder, tarball or URL."
        )
    return path


def resolve(source: str, cache_dir: str, sha256: str | None = None) -> str:
    """Returns the path of an aclImdb folder (with train/ and test/) for `source`."""
    if urllib.parse.urlparse(source).scheme in ("http", "https"):
        archive, checksum = download(source, Path(cache_dir) / "downloads", sha256 or KNOWN_SHA256.get(source))
    elif (path := check_local_source(source)) is None:  # a cloud folder (or a {SPAN} series)
        return source
    elif path.is_dir():  # a local corpus root
        return str(refuse_links(path))
    else:
        archive, checksum = path, verify_sha256(path, sha256, source)
    extracted = extract(archive, Path(cache_dir) / "extracted" / checksum[:16])
    return str(find_corpus_root(extracted, source))


def check_local_corpus(
    source: str, download_dir: str, sha256: str | None, with_test: bool, num_spans: int | None = None
) -> int:
    """Checks the layout of every local corpus a run reads (a folder in place, with no link in it; an archive once
    extracted into `download_dir`, where ImdbExampleGen finds it again; each span of a `{SPAN}` window and the previous
    span), no TensorFlow needed; returns how many review files they hold. URLs and cloud folders are checked when
    read."""
    if "://" in source and not source.startswith("file://"):
        return 0
    if has_spans(source):
        spans = imdb_spans.find_spans(os.path.expanduser(source))
        roots = [span.path for span in spans[-(num_spans or 1) - 1 :]]  # the window and the span before it
    else:
        roots = [source]
    return sum(imdb_layout.check_corpus(resolve(root, download_dir, sha256), with_test) for root in roots)
