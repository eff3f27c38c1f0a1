"""Opt-in: ImdbExampleGen on the real IMDB train reviews (../shared/data/aclImdb_train.tar.gz).

Runs only with IMDB_REAL_DATA_TESTS=1 and when the archive is present; it takes a minute or two.
"""

import collections
import os
from pathlib import Path

import pytest

from tests.support.example_gen_helpers import label_mean_of_prefix, read_split, run_executor

ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "data" / "aclImdb_train.tar.gz"

pytestmark = pytest.mark.skipif(
    os.environ.get("IMDB_REAL_DATA_TESTS") != "1" or not ARCHIVE.exists(),
    reason=f"opt-in (IMDB_REAL_DATA_TESTS=1) and needs {ARCHIVE}",
)


def test_real_train_reviews_become_balanced_deterministic_splits(tmp_path):
    examples = run_executor(ARCHIVE, tmp_path / "out", test_split="")
    splits = {name: read_split(examples, name) for name in ("train", "eval")}
    assert len(splits["train"]) + len(splits["eval"]) == 25_000
    assert 0.19 < len(splits["eval"]) / 25_000 < 0.21
    for rows in splits.values():
        labels = collections.Counter(row["label"] for row in rows)
        assert abs(labels[0] - labels[1]) / len(rows) < 0.05
        assert all((row["rating"] >= 7) == (row["label"] == 1) for row in rows)
        assert not any("<br" in row["text"] for row in rows)
    for name in ("train", "eval"):
        mean, size, _ = label_mean_of_prefix(examples, name)
        assert size == 1000 and 0.45 <= mean <= 0.55, f"{name}: label mean {mean:.3f} over its first 1,000 records"
