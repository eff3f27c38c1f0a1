"""Puts a local aclImdb corpus (a folder, or its archive) under a bucket folder, the `--data` a cluster run reads:

    python -m runners.upload_corpus aclImdb_v1.tar.gz gs://BUCKET/aclImdb
    python -m runners.upload_corpus ~/data/aclImdb gs://BUCKET/aclImdb

The corpus is checked as a local run checks it (layout, file names, ratings, no links) before anything is sent;
an archive is extracted safely first, into --download-dir. Only what ImdbExampleGen reads goes up: the review files
of {train,test}/{pos,neg}. Resumable: a review already there with the same size is skipped, so a rerun after an
interruption sends only what is missing (a GCS object appears whole once its upload is done). It writes with
TensorFlow's filesystem, as the pipeline's tasks read, with your Application Default Credentials (`gcloud auth
application-default login`); objects only, no folder objects and no request on the bucket itself, so
roles/storage.objectAdmin on the bucket is enough.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from collections.abc import Callable

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from components.ingestion import imdb_layout, imdb_source
from runners import console, failures

DEFAULT_DOWNLOAD_DIR = os.path.join(tempfile.gettempdir(), "imdb-bert-tfx-upload")
UPLOAD_LOG = os.path.join(tempfile.gettempdir(), "imdb-bert-tfx-upload.log")  # TensorFlow's own lines go there


def review_files(root: str) -> list[tuple[str, str]]:
    """(local path, path under the corpus root) of every review ImdbExampleGen reads, checked as a run checks them."""
    found = []
    for split in imdb_layout.CORPUS_SPLITS:
        if split == imdb_layout.CORPUS_SPLITS[0] or os.path.isdir(os.path.join(root, split)):
            for review in imdb_layout.list_review_files(root, split):
                found.append((review.path, os.path.relpath(review.path, root)))
    return found


def upload(
    files: list[tuple[str, str]], destination: str, workers: int, say: Callable[[str], None] = print
) -> tuple[int, int]:
    """Copies each (local path, relative path) to destination/relative path unless a file of its size is there;
    returns (uploaded, already there)."""
    import tensorflow as tf

    local = "://" not in destination

    def send(item: tuple[str, str]) -> bool:
        source, relative = item
        target = f"{destination.rstrip('/')}/{relative}"
        try:
            if tf.io.gfile.stat(target).length == os.path.getsize(source):
                return False
        except tf.errors.NotFoundError:
            pass
        if local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        tf.io.gfile.copy(source, target, overwrite=True)
        return True

    uploaded = skipped = 0
    started, shown = time.monotonic(), time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for sent in pool.map(send, files):
            uploaded, skipped = uploaded + sent, skipped + (not sent)
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                say(f"  {uploaded + skipped:,} of {len(files):,} ({uploaded:,} sent, {skipped:,} already there)")
    say(f"{time.monotonic() - started:.0f} s: {uploaded:,} review files sent, {skipped:,} already there")
    return uploaded, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runners.upload_corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", help="an aclImdb folder or its .tar.gz archive")
    parser.add_argument("destination", help="the folder to fill, e.g. gs://BUCKET/aclImdb (the run's --data)")
    parser.add_argument("--download-dir", default=DEFAULT_DOWNLOAD_DIR, help="where an archive is extracted")
    parser.add_argument("--workers", type=int, default=16, help="files sent at once")
    args = parser.parse_args(argv)
    with console.RunConsole(UPLOAD_LOG) as screen:
        try:
            root = imdb_source.resolve(args.source, args.download_dir)
            files = review_files(root)
        except (imdb_source.SourceError, imdb_layout.ReviewFormatError) as error:
            screen.say(f"error: {error}", failure=True)
            return failures.DATA
        screen.say(f"{len(files):,} review files in {root}; sending them to {args.destination}")
        try:
            upload(files, args.destination, args.workers, screen.say)
        except Exception as error:  # noqa: BLE001  (TensorFlow's filesystem errors: one line, the rerun resumes)
            screen.say(
                f"error: {args.destination}: {type(error).__name__}: {' '.join(str(error).split())[:300]}; check "
                f"that your account may write objects there (roles/storage.objectAdmin on the bucket; `gcloud auth "
                f"application-default login`), then run the same command again: it sends only what is missing "
                f"(log: {UPLOAD_LOG})",
                failure=True,
            )
            return failures.STORAGE
        screen.say(f"Done: run the pipeline with --data {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
