"""The corpus layout, checked before TensorFlow loads: label folders, file names, ratings and aclImdb's convention
(neg 1-4, pos 7-10), no folder inside a label folder and no link anywhere, on real files; the runner refuses a broken
corpus with one line and exit code 3, in seconds."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.ingestion import imdb_layout, imdb_source
from runners import failures

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def corpus(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


GOOD = {
    "train/pos/0_9.txt": "Loved it.",
    "train/pos/1_7.txt": "Good.",
    "train/neg/0_1.txt": "Dull.",
    "train/neg/1_4.txt": "Weak.",
    "test/pos/0_10.txt": "Superb.",
    "test/neg/0_2.txt": "Awful.",
}


def test_a_good_corpus_passes_and_every_review_is_listed_with_its_rating(tmp_path):
    root = corpus(tmp_path / "aclImdb", GOOD)
    assert imdb_layout.check_corpus(str(root), with_test=True) == 6
    reviews = imdb_layout.list_review_files(str(root), "train", "span-2/")
    assert [(r.label_dir, r.rating, r.review_id) for r in reviews] == [
        ("neg", 1, "span-2/train/neg/0"),
        ("neg", 4, "span-2/train/neg/1"),
        ("pos", 9, "span-2/train/pos/0"),
        ("pos", 7, "span-2/train/pos/1"),
    ]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"train/pos/2_2.txt": "A rave, filed as a pan?"}, "train/pos/2_2.txt: rating 2 contradicts its folder pos/"),
        ({"train/neg/2_8.txt": "Filed as negative."}, "train/neg/2_8.txt: rating 8 contradicts its folder neg/"),
        ({"train/pos/2_5.txt": "Neutral."}, "train/pos/2_5.txt: rating 5 contradicts its folder pos/"),
        ({"test/neg/2_6.txt": "Neutral."}, "test/neg/2_6.txt: rating 6 contradicts its folder neg/"),
        ({"train/pos/3_11.txt": "Eleven."}, "train/pos/3_11.txt: rating 11 is outside 1-10"),
        ({"train/neg/notes.txt": "x"}, "train/neg/notes.txt: file name is not <id>_<rating>.txt"),
    ],
)
def test_a_wrong_file_is_refused_naming_it(change, message, tmp_path):
    root = corpus(tmp_path / "aclImdb", {**GOOD, **change})
    with pytest.raises(imdb_layout.ReviewFormatError, match=message):
        imdb_layout.check_corpus(str(root), with_test=True)


@pytest.mark.parametrize(
    "listdir", [imdb_layout.listdir_marking_folders, os.listdir], ids=["local check", "unmarked listing (gfile)"]
)
def test_a_folder_inside_a_label_folder_is_refused_as_a_folder(listdir, tmp_path):
    root = corpus(tmp_path / "aclImdb", {**GOOD, "train/pos/extra/5_9.txt": "Tucked away."})
    with pytest.raises(imdb_layout.ReviewFormatError) as refused:
        imdb_layout.list_review_files(str(root), "train", listdir=listdir)
    assert str(refused.value) == (
        f"{root}/train/pos/extra: a folder inside train/pos/, which holds only <id>_<rating>.txt review files; "
        f"move the folder out of the corpus or delete it."
    )
    (root / "train" / "pos" / "extra").rename(root / "train" / "pos" / "2_9.txt")  # a folder named as a review
    with pytest.raises(imdb_layout.ReviewFormatError, match=r"train/pos/2_9.txt: a folder inside train/pos/"):
        imdb_layout.check_corpus(str(root), with_test=True)


def review_to_a_file_outside(root: Path) -> tuple[Path, Path]:
    outside = root.parent / "elsewhere" / "5_9.txt"
    corpus(outside.parent.parent, {"elsewhere/5_9.txt": "Not part of the corpus."})
    (link := root / "train" / "pos" / "0_9.txt").unlink()
    link.symlink_to(outside)
    return link, outside


def label_folder_elsewhere(root: Path) -> tuple[Path, Path]:
    elsewhere = root.parent / "other-reviews"
    shutil.move(root / "train" / "pos", elsewhere)
    (link := root / "train" / "pos").symlink_to(elsewhere, target_is_directory=True)
    return link, elsewhere


def review_to_etc_passwd(root: Path) -> tuple[Path, Path]:
    (link := root / "test" / "neg" / "3_1.txt").symlink_to("/etc/passwd")
    return link, Path("/etc/passwd")


def fifo_beside_the_reviews(root: Path) -> tuple[Path, Path]:
    os.mkfifo(fifo := root / "test" / "README")
    return fifo, fifo


@pytest.mark.parametrize("link_in", [review_to_a_file_outside, label_folder_elsewhere, review_to_etc_passwd])
def test_a_link_anywhere_in_a_local_corpus_is_refused_naming_it_and_its_target(link_in, tmp_path):
    root = corpus(tmp_path / "aclImdb", GOOD)
    link, target = link_in(root)
    with pytest.raises(imdb_source.SourceError) as refused:
        imdb_source.check_local_corpus(str(root), str(tmp_path / "downloads"), None, True)
    assert str(refused.value).startswith(f"{link}: a link (to {target}) in the corpus folder {root}; refusing")
    assert "\n" not in str(refused.value)
    assert failures.code_and_message(refused.value)[0] == failures.DATA == 3  # as an archive with a link


def test_a_special_file_in_a_local_corpus_is_refused_and_the_corpus_may_be_reached_through_a_link(tmp_path):
    root = corpus(tmp_path / "aclImdb", GOOD)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "aclImdb").symlink_to(root, target_is_directory=True)  # the folder named, not in it
    assert imdb_source.check_local_corpus(str(tmp_path / "data"), str(tmp_path / "downloads"), None, True) == 6
    assert imdb_source.resolve("gs://bucket/aclImdb", str(tmp_path / "downloads")) == "gs://bucket/aclImdb"
    fifo, _ = fifo_beside_the_reviews(root)
    with pytest.raises(imdb_source.SourceError, match=rf"^{fifo}: a special file .* in the corpus folder {root};"):
        imdb_source.check_local_corpus(str(root), str(tmp_path / "downloads"), None, True)


def test_missing_and_empty_label_folders_are_refused(tmp_path):
    root = corpus(tmp_path / "aclImdb", GOOD)
    shutil.rmtree(root / "test" / "pos")
    with pytest.raises(imdb_layout.ReviewFormatError, match=r"test/pos: missing.*--test-split ''"):
        imdb_layout.check_corpus(str(root), with_test=True)
    assert imdb_layout.check_corpus(str(root), with_test=False) == 4  # a train-only corpus
    for review in (root / "train" / "neg").iterdir():
        review.unlink()
    with pytest.raises(imdb_layout.ReviewFormatError, match=r"train/neg: holds no reviews"):
        imdb_layout.check_corpus(str(root), with_test=False)


def test_an_archive_is_checked_once_extracted_and_the_synthetic_corpora_obey_the_convention(tiny_corpus, tmp_path):
    import tarfile

    assert imdb_layout.check_corpus(str(tiny_corpus), with_test=True) == 2 * 120 + 2 * 30
    damaged = tmp_path / "aclImdb"
    shutil.copytree(tiny_corpus, damaged)
    first = sorted((damaged / "train" / "neg").iterdir())[0]
    first.rename(first.with_name("99999_7.txt"))
    with tarfile.open(tmp_path / "corpus.tar.gz", "w:gz") as tar:
        tar.add(damaged, arcname="aclImdb")
    with pytest.raises(imdb_layout.ReviewFormatError, match=r"train/neg/99999_7.txt: rating 7 contradicts"):
        imdb_source.check_local_corpus(str(tmp_path / "corpus.tar.gz"), str(tmp_path / "downloads"), None, True)


LOADED = "import sys, {module}; print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))"


def test_the_layout_check_loads_no_tensorflow():
    for module in ("components.ingestion.imdb_layout", "components.ingestion.imdb_source", "runners.failures"):
        loaded = subprocess.run(
            [sys.executable, "-c", LOADED.format(module=module)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert loaded.stdout.strip() == "[]", (module, loaded.stderr[-2000:])


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda root: shutil.rmtree(root / "train" / "pos"), "train/pos: missing"),
        (
            lambda root: (root / "train" / "pos" / "7_2.txt").write_text("Filed as positive."),
            "train/pos/7_2.txt: rating 2 contradicts its folder pos/",
        ),
        (review_to_etc_passwd, "test/neg/3_1.txt: a link (to /etc/passwd) in the corpus folder"),
        (label_folder_elsewhere, "train/pos: a link (to "),
    ],
)
def test_the_runner_refuses_a_broken_corpus_with_one_line_and_exit_code_3(damage, expected, tmp_path):
    root = corpus(tmp_path / "aclImdb", GOOD)
    damage(root)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "local_runner.py", "--output-dir", str(tmp_path / "out"), "--data", str(root)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(json.dumps({"refused in seconds": round(time.monotonic() - started, 2)}))
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("local_runner.py: error in --data: ") and expected in lines[0], lines[0]
    assert result.returncode == failures.printed_code(lines[0]) == failures.DATA
    assert not (tmp_path / "out" / "metadata").exists(), "refused before the pipeline started"
