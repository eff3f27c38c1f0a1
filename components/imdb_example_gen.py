"""ImdbExampleGen: a TFX ExampleGen for the Large Movie Review Dataset (aclImdb layout).

The `source` is an aclImdb folder, a tarball or a URL (see `imdb_source`: download, checksum, safe
extraction). The executor reads `{train,test}/{pos,neg}/<id>_<rating>.txt` with Beam, so the same
component runs on DirectRunner or Dataflow/Flink (`beam_pipeline_args`), and writes gzipped TFRecords of
`tf.Example`s with these features:

- `text`: the review, UTF-8. The corpus marks line breaks with HTML `<br />` tags; they are replaced by
  a newline, which BERT tokenizers treat as whitespace, so the markup does not eat sequence length.
- `label`: 0 for `neg`, 1 for `pos`.
- `rating`: the 1-10 star rating from the file name.
- `review_id`: `<split>/<label dir>/<id>`, unique in the corpus (ids repeat across `pos` and `neg`).
- `length_bucket`: the review's length in words, as a range such as `100-199` (`LENGTH_BUCKETS`); the
  Evaluator slices its metrics by it.

Splits: aclImdb/train is divided by `train_split_config` (hash buckets over a SHA-256 of `review_id`,
default train 4 : eval 1), so every re-run and every machine puts each review in the same split;
aclImdb/test becomes the `test` split whole. `train/unsup` (unlabelled) is not read.

Spans: a source with TFX's `{SPAN}` spec (`reviews/span-{SPAN}`, see `imdb_spans`) is a series of drops,
each an aclImdb folder. The `range_config` picks the window read (default: the newest span); review ids
get a `span-<n>/` prefix. The Examples artifact records the newest span and its version (`span`,
`version`, as TFX's ExampleGens do) and the window (`spans`). The previous span's aclImdb/train, when
there is one, becomes one more split, `previous_span`, which DistributionValidator compares with `train`.

Order: each split's records are written in the order of another hash of `review_id` (`order_key`), not
in the corpus's order (every negative review, then every positive one). So every run writes the same files,
labels are mixed throughout, and any prefix of a split is a fair sample: a shuffle buffer smaller than the
split, or validation on its first batches, sees both labels in their proportion.

Bad input stops the component with an error that names the file and the fix: a missing `pos`/`neg`
folder, a file name that is not `<id>_<rating>.txt`, an empty review, or bytes that are not UTF-8 (the
real corpus is all UTF-8, so such a file is damaged: it is rejected, not silently altered). A failed run
removes what it had written, so no half-written split is left behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import time
import urllib.parse
from typing import Any, Iterable

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import proto_utils

from components import cache_key_driver, imdb_source, imdb_spans
from modules import crash_points, review_text

LABEL_DIRS = imdb_source.LABEL_DIRS
REVIEW_FILE = re.compile(r"^(?P<id>\d+)_(?P<rating>\d+)\.txt$")
LINE_BREAK_TAG = re.compile(review_text.LINE_BREAK_PATTERN)
READ_BATCH_SIZE = 250
# Each split is written as ceil(reviews / RECORDS_PER_SHARD) gzipped TFRecord files named like Beam's.
RECORDS_PER_SHARD = 10_000
SHARD_FILE_PREFIX = "data_tfrecord"
# Review length buckets, in words (whitespace-separated tokens of the cleaned text): each bucket's lower
# bound and its name. pipeline/schema/schema.pbtxt lists the same names as the feature's domain.
LENGTH_BUCKETS: tuple[tuple[int, str], ...] = (
    (0, "0-49"), (50, "50-99"), (100, "100-199"), (200, "200-399"), (400, "400-799"), (800, "800+"))

EXAMPLES_KEY = "examples"
SOURCE_KEY = "source"
SOURCE_SHA256_KEY = "source_sha256"
DOWNLOAD_DIR_KEY = "download_dir"
TRAIN_SPLIT_CONFIG_KEY = "train_split_config"
TEST_SPLIT_NAME_KEY = "test_split_name"
SOURCE_FINGERPRINT_KEY = "source_fingerprint"
RANGE_CONFIG_KEY = "range_config"
PREVIOUS_SPAN_SPLIT = "previous_span"
SPANS_PROPERTY = "spans"  # the window read, e.g. "2,3"
PREVIOUS_SPAN_PROPERTY = "previous_span"  # 0: none


class ReviewFormatError(ValueError):
    """A review file that cannot become an example; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class ReviewFile:
    path: str
    corpus_split: str
    label_dir: str
    review_number: int
    rating: int
    id_prefix: str = ""  # "span-<n>/" for a span of a series

    @property
    def review_id(self) -> str:
        return f"{self.id_prefix}{self.corpus_split}/{self.label_dir}/{self.review_number}"


def list_review_files(data_root: str, corpus_split: str, id_prefix: str = "") -> list[ReviewFile]:
    """Lists and checks the review files of one corpus split; fails naming the first bad path."""
    split_dir = os.path.join(data_root, corpus_split)
    files = []
    for label_dir in LABEL_DIRS:
        folder = os.path.join(split_dir, label_dir)
        if not tf.io.gfile.isdir(folder):
            raise FileNotFoundError(
                f"{folder}: missing. An aclImdb folder needs {corpus_split}/pos and {corpus_split}/neg "
                f"holding <id>_<rating>.txt files; point the data source at the extracted 'aclImdb' folder"
                + (" or, for a train-only corpus, set the test split name to '' (--test-split '')."
                   if corpus_split == "test" else "."))
        for name in sorted(tf.io.gfile.listdir(folder)):
            match = REVIEW_FILE.match(name)
            path = os.path.join(folder, name)
            if not match:
                raise ReviewFormatError(
                    f"{path}: file name is not <id>_<rating>.txt; remove or rename the file.")
            rating = int(match["rating"])
            if not 1 <= rating <= 10:
                raise ReviewFormatError(f"{path}: rating {rating} is outside 1-10; fix the file name.")
            files.append(ReviewFile(path, corpus_split, label_dir, int(match["id"]), rating, id_prefix))
        if not any(f.label_dir == label_dir for f in files):
            raise ReviewFormatError(f"{folder}: holds no reviews; the corpus needs both labels.")
    return files


def clean_review_text(raw: bytes, path: str) -> str:
    """Decodes a review (strict UTF-8) and turns `<br />` tags into newlines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReviewFormatError(
            f"{path}: not valid UTF-8 at byte {error.start}; re-encode the file as UTF-8.") from error
    text = LINE_BREAK_TAG.sub(review_text.LINE_BREAK_REPLACEMENT, text).strip()
    if not text:
        raise ReviewFormatError(f"{path}: the review is empty; delete the file or restore its text.")
    return text


def length_bucket(text: str) -> str:
    """The `LENGTH_BUCKETS` name of the range that the review's word count falls in."""
    words = len(text.split())
    return [name for lower, name in LENGTH_BUCKETS if words >= lower][-1]


def review_to_example(review: ReviewFile) -> bytes:
    """Reads one review file and returns a serialized tf.Example."""
    with (tf.io.gfile.GFile(review.path, "rb") if "://" in review.path else open(review.path, "rb")) as f:
        text = clean_review_text(f.read(), review.path)
    feature = {
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[LABEL_DIRS[review.label_dir]])),
        "rating": tf.train.Feature(int64_list=tf.train.Int64List(value=[review.rating])),
        "review_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[review.review_id.encode()])),
        "length_bucket": tf.train.Feature(bytes_list=tf.train.BytesList(value=[length_bucket(text).encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def hash_bucket(review_id: str, num_buckets: int) -> int:
    """A bucket in [0, num_buckets) from a SHA-256 of the review id: the same on every machine."""
    return int.from_bytes(hashlib.sha256(review_id.encode("utf-8")).digest()[:8], "big") % num_buckets


def split_index(review: ReviewFile, split_config: example_gen_pb2.SplitConfig) -> int:
    """Index of the split (in `split_config` order) that `review` belongs to."""
    bucket = hash_bucket(review.review_id, sum(s.hash_buckets for s in split_config.splits))
    upper = 0
    for index, split in enumerate(split_config.splits):
        upper += split.hash_buckets
        if bucket < upper:
            return index
    raise AssertionError("unreachable: bucket beyond the configured hash buckets")


def output_split_names(split_config: example_gen_pb2.SplitConfig, test_split_name: str) -> list[str]:
    names = [s.name for s in split_config.splits] + ([test_split_name] if test_split_name else [])
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"split names must be distinct and non-empty, got {names}")
    return names


def assign_splits(train_reviews: list[ReviewFile], test_reviews: list[ReviewFile],
                  split_config: example_gen_pb2.SplitConfig, test_split_name: str) -> dict[str, list[ReviewFile]]:
    """Which reviews go to which output split (cheap: hashing ids, no file is read)."""
    splits: dict[str, list[ReviewFile]] = {split.name: [] for split in split_config.splits}
    for review in train_reviews:
        splits[split_config.splits[split_index(review, split_config)].name].append(review)
    if test_split_name:
        splits[test_split_name] = list(test_reviews)
    return splits


def order_key(review_id: str) -> bytes:
    """Where a review goes in its split's files: a hash of its id, so the order is the same on every run and
    machine and has nothing to do with the label (the corpus lists every negative review first)."""
    return hashlib.sha256(f"order/{review_id}".encode("utf-8")).digest()


def convert_batch(reviews: list[ReviewFile], num_shards: int) -> list[tuple[int, tuple[bytes, bytes]]]:
    """(shard index, (order key, serialized tf.Example)) for each review of the batch."""
    keyed = []
    for review in reviews:
        key = order_key(review.review_id)
        keyed.append((int.from_bytes(key[:8], "big") % num_shards, (key, review_to_example(review))))
    return keyed


def shard_file_name(shard: int, num_shards: int) -> str:
    return f"{SHARD_FILE_PREFIX}-{shard:05d}-of-{num_shards:05d}.gz"


def write_shard(shard: int, keyed_records: Iterable[tuple[bytes, bytes]], split_uri: str, num_shards: int) -> str:
    """Writes one gzipped TFRecord shard of a split, its records sorted by order key, under a temporary
    name first so that a shard file is complete once it exists."""
    path = os.path.join(split_uri, shard_file_name(shard, num_shards))
    temporary = f"{path}.incomplete"
    tf.io.gfile.makedirs(split_uri)
    with tf.io.TFRecordWriter(temporary, options="GZIP") as writer:
        for _, record in sorted(keyed_records):
            writer.write(record)
    crash_points.crash_here(crash_points.EXAMPLE_GEN_SHARD)
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def _batches(reviews: list[ReviewFile], size: int) -> list[list[ReviewFile]]:
    return [reviews[start:start + size] for start in range(0, len(reviews), size)]


def parse_range_config(value: str | None) -> range_config_pb2.RangeConfig | None:
    if not value:
        return None
    return proto_utils.json_to_proto(value, range_config_pb2.RangeConfig())


@dataclasses.dataclass
class CorpusReviews:
    """The review files one run reads: aclImdb/train and /test of the source (or of each span of its window),
    and the previous span's aclImdb/train."""

    train: list[ReviewFile]
    test: list[ReviewFile]
    previous_span: list[ReviewFile]
    selection: imdb_spans.SpanSelection | None


def list_corpus(source: str, download_dir: str, sha256: str | None,
                range_config: range_config_pb2.RangeConfig | None, with_test: bool) -> CorpusReviews:
    if not imdb_spans.has_spans(source):
        root = imdb_source.resolve(source, download_dir, sha256)
        return CorpusReviews(list_review_files(root, "train"),
                             list_review_files(root, "test") if with_test else [], [], None)
    selection = imdb_spans.find_and_select(source, range_config)

    def span_reviews(span: imdb_spans.Span, corpus_split: str) -> list[ReviewFile]:
        return list_review_files(imdb_source.resolve(span.path, download_dir), corpus_split, f"span-{span.number}/")

    corpus = CorpusReviews([], [], [], selection)
    for span in selection.window:
        corpus.train += span_reviews(span, "train")
        if with_test:
            corpus.test += span_reviews(span, "test")
    if selection.previous is not None:
        corpus.previous_span = span_reviews(selection.previous, "train")
    logging.info("Spans read: %s; previous span: %s", [s.number for s in selection.window],
                 selection.previous.number if selection.previous else "none")
    return corpus


def record_spans(examples: types.Artifact, selection: imdb_spans.SpanSelection | None) -> None:
    """`span` and `version` (TFX's Examples properties) and the window, for lineage."""
    if selection is None:
        return
    examples.span = selection.newest.number
    if selection.newest.version is not None:
        examples.version = selection.newest.version
    examples.set_string_custom_property(SPANS_PROPERTY, ",".join(str(s.number) for s in selection.window))
    examples.set_int_custom_property(PREVIOUS_SPAN_PROPERTY, selection.previous.number if selection.previous else 0)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads the aclImdb folder with Beam and writes the train / eval / test example splits."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        split_config = example_gen_pb2.SplitConfig()
        proto_utils.json_to_proto(exec_properties[TRAIN_SPLIT_CONFIG_KEY], split_config)
        test_split_name = exec_properties[TEST_SPLIT_NAME_KEY]
        corpus = list_corpus(exec_properties[SOURCE_KEY], exec_properties[DOWNLOAD_DIR_KEY],
                             exec_properties.get(SOURCE_SHA256_KEY) or None,
                             parse_range_config(exec_properties.get(RANGE_CONFIG_KEY)), bool(test_split_name))
        splits = assign_splits(corpus.train, corpus.test, split_config, test_split_name)
        if corpus.previous_span:
            splits[PREVIOUS_SPAN_SPLIT] = corpus.previous_span
        split_names = output_split_names(split_config, test_split_name) + (
            [PREVIOUS_SPAN_SPLIT] if corpus.previous_span else [])
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(split_names)
        record_spans(examples, corpus.selection)
        try:
            self._write_splits(splits, examples)
        except BaseException:
            _remove_split_dirs(examples, split_names)
            raise
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        if exec_properties.get(SOURCE_FINGERPRINT_KEY):
            examples.set_string_custom_property(SOURCE_FINGERPRINT_KEY, exec_properties[SOURCE_FINGERPRINT_KEY])

    def _write_splits(self, splits: dict[str, list[ReviewFile]], examples: types.Artifact) -> None:
        # Files are read in batches: per-element overhead dominates on small files, and a Reshuffle of
        # the batches spreads the reading over the workers of a distributed runner. Each shard is then
        # written whole, in `order_key` order, by one worker.
        with self._make_beam_pipeline() as pipeline:
            for name, reviews in splits.items():
                num_shards = max(1, math.ceil(len(reviews) / RECORDS_PER_SHARD))
                _ = (
                    pipeline
                    | f"ListFiles[{name}]" >> beam.Create(_batches(reviews, READ_BATCH_SIZE))
                    | f"Distribute[{name}]" >> beam.Reshuffle()
                    | f"ReadAndConvert[{name}]" >> beam.FlatMap(convert_batch, num_shards)
                    | f"GroupByShard[{name}]" >> beam.GroupByKey()
                    | f"WriteShards[{name}]" >> beam.Map(
                        lambda shard, uri, count: write_shard(shard[0], shard[1], uri, count),
                        artifact_utils.get_split_uri([examples], name), num_shards)
                )


def _remove_split_dirs(examples: types.Artifact, split_names: list[str]) -> None:
    for name in split_names:
        split_uri = artifact_utils.get_split_uri([examples], name)
        if tf.io.gfile.exists(split_uri):
            tf.io.gfile.rmtree(split_uri)


def source_fingerprint(source: str, sha256: str | None = None) -> str:
    """What the corpus at `source` is, for caching: a change to any review file changes it.

    A folder (local or gs://...): every review file's path, size and modification time, as TFX's file-based
    ExampleGens fingerprint their input. A local archive: its size and modification time, and the pinned
    checksum. A URL: the URL and its checksum (given or known); a URL without one may change behind the same
    address, so its fingerprint is unique to this run and a cached ingestion is never reused."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        checksum = sha256 or imdb_source.KNOWN_SHA256.get(source)
        return f"{source} sha256:{checksum}" if checksum else f"{source} unpinned, read at {time.time_ns()}"
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else os.path.expanduser(source)
    entries = []
    if fileio.isdir(path):
        for directory, folders, names in fileio.walk(path):
            folders[:] = [f for f in folders if not os.path.join(directory, f).rstrip("/").endswith("train/unsup")]
            for name in names:
                file_path = os.path.join(directory, name)
                stat = fileio.stat(file_path)
                entries.append(f"{os.path.relpath(file_path, path)}\t{stat.length}\t{stat.mtime_nsec}")
    else:
        stat = fileio.stat(path)
        entries.append(f"{os.path.basename(path)}\t{stat.length}\t{stat.mtime_nsec}\t{sha256 or ''}")
    digest = hashlib.sha256("\n".join(sorted(entries)).encode("utf-8")).hexdigest()
    return f"{len(entries)} files, sha256 of names, sizes and times {digest}"


def read_fingerprint(source: str, sha256: str | None, range_config: range_config_pb2.RangeConfig | None) -> str:
    """`source_fingerprint` of what a run reads: the source, or each span of the window and the previous
    span (so a span already ingested is not read again while its files, and the window, are unchanged)."""
    if not imdb_spans.has_spans(source):
        return source_fingerprint(source, sha256)
    selection = imdb_spans.find_and_select(source, range_config)
    read = selection.window + ([selection.previous] if selection.previous else [])
    return "; ".join(f"span {s.number} v{s.version}: {source_fingerprint(s.path)}" for s in read)


class Driver(cache_key_driver.CacheKeyDriver):
    """Adds the corpus's `source_fingerprint` (`read_fingerprint`) to the execution properties, so a cached
    ingestion is reused only for the same files, never for an edited corpus at the same path."""

    KEY = SOURCE_FINGERPRINT_KEY

    def cache_key(self, exec_properties: dict[str, Any]) -> str:
        fingerprint = read_fingerprint(exec_properties[SOURCE_KEY], exec_properties.get(SOURCE_SHA256_KEY) or None,
                                       parse_range_config(exec_properties.get(RANGE_CONFIG_KEY)))
        logging.info("ImdbExampleGen source %s: %s", exec_properties[SOURCE_KEY], fingerprint)
        return fingerprint


class ImdbExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        SOURCE_KEY: ExecutionParameter(type=str),
        SOURCE_SHA256_KEY: ExecutionParameter(type=str, optional=True),
        DOWNLOAD_DIR_KEY: ExecutionParameter(type=str),
        TRAIN_SPLIT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.SplitConfig),
        TEST_SPLIT_NAME_KEY: ExecutionParameter(type=str),
        # Which spans of a `{SPAN}` source are read (imdb_spans); unset: the newest.
        RANGE_CONFIG_KEY: ExecutionParameter(type=range_config_pb2.RangeConfig, optional=True),
        # Set by the Driver when it runs (LocalDagRunner); what the cache key sees of the files.
        SOURCE_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class ImdbExampleGen(base_beam_component.BaseBeamComponent):
    """Turns the aclImdb corpus (folder, tarball or URL) into train / eval / test `tf.Example` splits.

    Args:
      source: an aclImdb folder (local or gs://...), a local `.tar.gz`, or an http(s)/file URL of one; or
        a series of aclImdb folders, a path with `{SPAN}` (see `imdb_spans`).
      download_dir: where downloads and extracted archives are cached.
      train_split_config: hash buckets dividing aclImdb/train (the pipeline's: train 4 : eval 1).
      test_split_name: the name of the split made from aclImdb/test; empty for a train-only corpus.
      source_sha256: expected SHA-256 of the archive (known for the official URL); empty: not checked.
      range_config: which spans of a `{SPAN}` source to read (TFX's RangeConfig); None: the newest.
    """

    SPEC_CLASS = ImdbExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(self, source: str, download_dir: str, train_split_config: example_gen_pb2.SplitConfig,
                 test_split_name: str, source_sha256: str | None = None,
                 range_config: range_config_pb2.RangeConfig | None = None):
        super().__init__(spec=ImdbExampleGenSpec(
            source=source,
            source_sha256=source_sha256 or "",
            download_dir=download_dir,
            train_split_config=train_split_config,
            test_split_name=test_split_name,
            range_config=range_config,
            examples=types.Channel(type=standard_artifacts.Examples),
        ))
