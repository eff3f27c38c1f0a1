"""ImdbExampleGen on tiny aclImdb folders: features, splits, determinism and bad input."""

import shutil
import tarfile
from pathlib import Path

import pytest
from tfx.types import artifact_utils

from components.ingestion import imdb_example_gen as gen
from tests.support.example_gen_helpers import label_mean_of_prefix, read_split, run_executor


def write_review(root: Path, rel: str, content: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def minimal_corpus(root: Path) -> Path:
    for split in ("train", "test"):
        write_review(root, f"{split}/pos/0_9.txt", b"A wonderful film.<br /><br />Loved it.")
        write_review(root, f"{split}/neg/0_2.txt", b"Dull and tedious.")
    return root


def test_writes_train_eval_test_with_all_features(tiny_corpus, tmp_path):
    examples = run_executor(tiny_corpus, tmp_path / "out")
    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval", "test"]
    splits = {name: read_split(examples, name) for name in ("train", "eval", "test")}

    assert len(splits["train"]) + len(splits["eval"]) == 240
    assert len(splits["test"]) == 60
    assert 0.1 < len(splits["eval"]) / 240 < 0.3
    ids = [row["review_id"] for rows in splits.values() for row in rows]
    assert len(ids) == len(set(ids)) == 300
    for name, rows in splits.items():
        for row in rows:
            corpus_split, label_dir, number = row["review_id"].split("/")
            assert corpus_split == ("test" if name == "test" else "train")
            assert row["label"] == (1 if label_dir == "pos" else 0)
            source = tiny_corpus / corpus_split / label_dir / f"{number}_{row['rating']}.txt"
            assert source.exists()
            assert "<br" not in row["text"]
            assert row["text"] == source.read_text().replace("<br /><br />", "\n\n").strip()
            words = len(row["text"].split())
            low, high = (int(n) for n in row["length_bucket"].split("-"))
            assert low <= words <= high
    # The synthetic reviews have 12-65 words: both of the two shortest buckets occur.
    assert {row["length_bucket"] for rows in splits.values() for row in rows} == {"0-49", "50-99"}


@pytest.mark.parametrize(
    "words, bucket",
    [
        (1, "0-49"),
        (49, "0-49"),
        (50, "50-99"),
        (99, "50-99"),
        (100, "100-199"),
        (399, "200-399"),
        (400, "400-799"),
        (799, "400-799"),
        (800, "800+"),
        (5000, "800+"),
    ],
)
def test_length_bucket_boundaries(words, bucket):
    assert gen.length_bucket(" ".join(["word"] * words)) == bucket
    assert gen.length_bucket("\n\n".join(["word"] * words)) == bucket  # any whitespace separates words


def test_schema_declares_every_length_bucket():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from config import pipeline as configs

    schema = text_format.Parse(open(configs.SCHEMA_FILE).read(), schema_pb2.Schema())
    domain = {d.name: list(d.value) for d in schema.string_domain}["length_bucket"]
    assert domain == [name for _, name in gen.LENGTH_BUCKETS]
    assert {f.name: f.domain for f in schema.feature}["length_bucket"] == "length_bucket"


def test_line_break_markup_becomes_newlines(tmp_path):
    examples = run_executor(minimal_corpus(tmp_path / "aclImdb"), tmp_path / "out")
    texts = {row["review_id"]: row["text"] for row in read_split(examples, "test")}
    assert texts["test/pos/0"] == "A wonderful film.\n\nLoved it."


def test_split_assignment_is_deterministic_and_machine_independent(tiny_corpus, tmp_path):
    first = run_executor(tiny_corpus, tmp_path / "a")
    second = run_executor(tiny_corpus, tmp_path / "b")
    for split in ("train", "eval"):
        assert sorted(r["review_id"] for r in read_split(first, split)) == sorted(
            r["review_id"] for r in read_split(second, split)
        )
    # SHA-256 of the review id: pinned values, the same on every machine and Python version.
    assert [gen.hash_bucket(f"train/pos/{i}", 5) for i in range(8)] == [4, 4, 0, 2, 4, 0, 0, 1]


def test_split_names_and_ratios_are_configurable(tiny_corpus, tmp_path):
    examples = run_executor(tiny_corpus, tmp_path / "out", buckets=(("fit", 1), ("holdout", 1)))
    assert artifact_utils.decode_split_names(examples.split_names) == ["fit", "holdout", "test"]
    fit, holdout = len(read_split(examples, "fit")), len(read_split(examples, "holdout"))
    assert fit + holdout == 240 and 0.35 < holdout / 240 < 0.65


def test_missing_label_folder_is_named(tmp_path):
    root = minimal_corpus(tmp_path / "aclImdb")
    shutil.rmtree(root / "train" / "neg")
    with pytest.raises(gen.ReviewFormatError, match=r"train/neg: missing.*aclImdb"):
        run_executor(root, tmp_path / "out")


def test_a_rating_that_contradicts_its_folder_is_refused_by_the_component_too(tmp_path):
    root = minimal_corpus(tmp_path / "aclImdb")  # a cloud folder or a download is checked only here
    write_review(root, "test/pos/3_5.txt", b"Neither good nor bad.")
    with pytest.raises(gen.ReviewFormatError, match=r"test/pos/3_5.txt: rating 5 contradicts its folder pos/"):
        run_executor(root, tmp_path / "out")


def test_unparsable_file_name_is_named(tmp_path):
    root = minimal_corpus(tmp_path / "aclImdb")
    write_review(root, "train/pos/notes.txt", b"hello")
    with pytest.raises(gen.ReviewFormatError, match=r"train/pos/notes.txt: file name is not <id>_<rating>.txt"):
        run_executor(root, tmp_path / "out")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"Caf\xe9 society was fine", r"1_8.txt: not valid UTF-8 at byte 3; re-encode"),
        (b"  <br /> ", r"1_8.txt: the review is empty"),
    ],
)
def test_bad_review_content_is_named(tmp_path, content, message):
    root = minimal_corpus(tmp_path / "aclImdb")
    write_review(root, "train/pos/1_8.txt", content)
    with pytest.raises(Exception, match=message):
        run_executor(root, tmp_path / "out")


def test_reads_a_tarball_source(tiny_corpus, tmp_path):
    tarball = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tiny_corpus, arcname="aclImdb")
    examples = run_executor(tarball, tmp_path / "out")
    assert sum(len(read_split(examples, s)) for s in ("train", "eval", "test")) == 300


def test_a_failed_run_leaves_no_half_written_split(tmp_path):
    root = minimal_corpus(tmp_path / "aclImdb")
    for i in range(1, 40):
        write_review(root, f"train/pos/{i}_8.txt", b"Fine film.")
    write_review(root, "test/neg/7_1.txt", b"\xff\xfe broken")
    output = tmp_path / "out"
    with pytest.raises(Exception, match=r"test/neg/7_1.txt: not valid UTF-8"):
        run_executor(root, output)
    assert not output.exists() or list(output.iterdir()) == []


@pytest.mark.slow
def test_every_split_is_written_in_a_label_mixed_order_that_is_the_same_on_every_run(tmp_path):
    from components.ingestion.synthetic_corpus import SyntheticCorpusSpec, write_synthetic_corpus

    corpus = write_synthetic_corpus(
        tmp_path / "aclImdb",
        SyntheticCorpusSpec(
            reviews_per_label={"train": 5000, "test": 1000}, sentences_per_review=(1, 1), words_per_sentence=(3, 5)
        ),
    )
    first, second = (run_executor(corpus, tmp_path / f"run{i}" / "Examples") for i in (1, 2))
    for split in ("train", "eval", "test"):
        mean, size, order = label_mean_of_prefix(first, split)
        assert size == 1000
        assert 0.45 <= mean <= 0.55, f"{split}: label mean {mean:.3f} over its first {size} records"
        assert order == label_mean_of_prefix(second, split)[2], f"{split}: a re-run wrote another order"
