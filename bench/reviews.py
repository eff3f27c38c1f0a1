"""Review data for the benchmarks: real IMDB reviews read straight from the aclImdb tarball, or the
synthetic offline corpus, and the gzipped tf.Example TFRecords the Trainer reads."""

from __future__ import annotations

import random
import re
import tarfile
from pathlib import Path

REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/\d+_\d+\.txt$")
DEFAULT_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "aclImdb_train.tar.gz"


def real_reviews(tarball: Path, count: int, *, skip: int = 0, seed: int = 0) -> tuple[list[str], list[int]]:
    """`count` reviews (half positive) from the tarball, in a fixed shuffled order; `skip` leaves out the
    first `skip` of that order, so two calls with disjoint ranges give disjoint reviews."""
    by_label: dict[int, list[tuple[str, str]]] = {0: [], 1: []}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            match = REVIEW_PATH.search(member.name)
            if member.isfile() and match:
                text = archive.extractfile(member).read().decode("utf-8")
                by_label[int(match.group(2) == "pos")].append((member.name, text))
    rng = random.Random(seed)
    chosen: list[tuple[str, int]] = []
    for label, reviews in by_label.items():
        reviews.sort()
        rng.shuffle(reviews)
        half = reviews[skip // 2 : skip // 2 + count // 2]
        if len(half) < count // 2:
            raise ValueError(f"{tarball} has too few {('neg', 'pos')[label]} reviews for skip={skip}, count={count}")
        chosen.extend((text, label) for _, text in half)
    rng.shuffle(chosen)
    return [text for text, _ in chosen], [label for _, label in chosen]


def synthetic_reviews(count: int, seed: int = 0) -> tuple[list[str], list[int]]:
    from components.ingestion.synthetic_corpus import SyntheticCorpusSpec, synthetic_review

    rng = random.Random(seed)
    labels = [i % 2 for i in range(count)]
    return [synthetic_review(rng, bool(label), SyntheticCorpusSpec()) for label in labels], labels


def write_examples(texts: list[str], labels: list[int], path: Path) -> str:
    """Writes gzipped tf.Example TFRecords with `text` and `label`, as the ExampleGen does; returns the path."""
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for text, label in zip(texts, labels):
            writer.write(
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
                            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                        }
                    )
                ).SerializeToString()
            )
    return str(path)
