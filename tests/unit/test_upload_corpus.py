"""The upload command refuses a corpus a run would refuse, in one line and before TensorFlow loads (the upload
itself, to a GCS-compatible store, is tested in tests/e2e/test_kfp_backend_conformance.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def refuse(tmp_path: Path, source: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "runners.upload_corpus", str(source), "gs://bucket/aclImdb",
         "--download-dir", str(tmp_path / "downloads")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"},
    )  # fmt: skip
    assert result.returncode == 3 and len(result.stderr.splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("problem", ["missing", "link", "bad name"])
def test_a_corpus_a_run_would_refuse_is_refused_in_one_line_before_anything_is_sent(tmp_path, tiny_corpus, problem):
    corpus = tmp_path / "aclImdb"
    if problem == "missing":
        assert "no such file or folder" in refuse(tmp_path, corpus)
        return
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (corpus / split / label).mkdir(parents=True)
            for review in sorted((tiny_corpus / split / label).iterdir())[:3]:
                (corpus / split / label / review.name).write_bytes(review.read_bytes())
    if problem == "link":
        (corpus / "train" / "pos" / "99_9.txt").symlink_to("/etc/passwd")
        assert "99_9.txt" in refuse(tmp_path, corpus) and "/etc/passwd" in refuse(tmp_path, corpus)
    else:
        (corpus / "train" / "neg" / "review.txt").write_text("no id, no rating")
        assert "review.txt" in refuse(tmp_path, corpus)
