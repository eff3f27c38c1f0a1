"""The aclImdb layout, checked without TensorFlow: `{train,test}/{neg,pos}/<id>_<rating>.txt`, both label folders
present and holding reviews, ratings 1-10 and on their folder's side of aclImdb's convention (its README: a negative
review is rated 4 or less, a positive one 7 or more, and there are no neutral reviews).

A rating that contradicts its folder (`pos/12_2.txt`), or a 5 or a 6, is a labelling error: the folder gives the
label, so training on it would teach the opposite of what its writer said. Such a file is refused, naming it; none
is counted and let through. The runners check a local corpus this way before TensorFlow loads; ImdbExampleGen
checks every corpus it reads (a cloud folder, a download) the same way, and reads the reviews' text (UTF-8, not
empty) itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable

CORPUS_SPLITS = ("train", "test")
LABEL_DIRS = {"neg": 0, "pos": 1}  # the folder name is the label
LABEL_RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}  # aclImdb's convention
REVIEW_FILE = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")


class ReviewFormatError(ValueError):
    """A review file or folder that cannot become examples; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class ReviewFile:
    path: str
    label_dir: str
    rating: int
    review_id: str  # "[span-<n>/]<corpus split>/<label dir>/<id>": unique (ids repeat across pos and neg)


def checked_rating(path: str, label_dir: str) -> tuple[int, int]:
    """(id, rating) of the review file at `path` in the folder `label_dir`; raises ReviewFormatError naming it."""
    match = REVIEW_FILE.match(os.path.basename(path))
    if not match:
        raise ReviewFormatError(f"{path}: file name is not <id>_<rating>.txt; remove or rename the file.")
    if not 1 <= (rating := int(match["rating"])) <= 10:
        raise ReviewFormatError(f"{path}: rating {rating} is outside 1-10; fix the file name.")
    if rating not in LABEL_RATINGS[label_dir]:
        raise ReviewFormatError(
            f"{path}: rating {rating} contradicts its folder {label_dir}/ (aclImdb: neg is rated 1-4, pos 7-10, "
            f"no 5 or 6); move the file to the folder of its rating, or correct the rating in its name."
        )
    return int(match["id"]), rating


def listdir_marking_folders(folder: str) -> list[str]:
    """The names in the local `folder`, a folder's ending in "/" (as gs:// listings end them), from the folder's own
    entries: no stat per review file, no link followed."""
    with os.scandir(folder) as entries:
        return [entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name for entry in entries]


def list_review_files(
    data_root: str,
    corpus_split: str,
    id_prefix: str = "",
    *,
    isdir: Callable[[str], bool] = os.path.isdir,
    listdir: Callable[[str], Iterable[str]] = listdir_marking_folders,
) -> list[ReviewFile]:
    """The review files of one corpus split, every name checked; raises ReviewFormatError at the first bad one.
    `isdir` and `listdir` read the folders (ImdbExampleGen passes TensorFlow's, which also read gs://); a name that
    `listdir` ends with "/", or that is not a review's and `isdir` says is a folder, is a folder."""
    files = []
    for label_dir in LABEL_DIRS:
        folder = os.path.join(data_root, corpus_split, label_dir)
        if not isdir(folder):
            raise ReviewFormatError(
                f"{folder}: missing. An aclImdb folder needs {corpus_split}/pos and {corpus_split}/neg "
                f"holding <id>_<rating>.txt files; point the data source at the extracted 'aclImdb' folder"
                + (
                    " or, for a train-only corpus, set the test split name to '' (--test-split '')."
                    if corpus_split == CORPUS_SPLITS[1]
                    else "."
                )
            )
        entries = sorted((name.rstrip("/"), name.endswith("/")) for name in listdir(folder))
        if not entries:
            raise ReviewFormatError(f"{folder}: holds no reviews; the corpus needs both labels.")
        for name, marked_folder in entries:
            path = os.path.join(folder, name)
            if marked_folder or (not REVIEW_FILE.match(name) and isdir(path)):
                raise ReviewFormatError(
                    f"{path}: a folder inside {corpus_split}/{label_dir}/, which holds only <id>_<rating>.txt review "
                    f"files; move the folder out of the corpus or delete it."
                )
            review_id, rating = checked_rating(path, label_dir)
            files.append(ReviewFile(path, label_dir, rating, f"{id_prefix}{corpus_split}/{label_dir}/{review_id}"))
    return files


def check_corpus(root: str, with_test: bool) -> int:
    """Checks the layout of the local aclImdb folder `root` (train/, and test/ if `with_test`); returns how many
    review files it holds."""
    return sum(len(list_review_files(root, split)) for split in CORPUS_SPLITS[: 2 if with_test else 1])
