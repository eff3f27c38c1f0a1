"""ImdbExampleGen: the aclImdb corpus (folder, tarball, URL or `{SPAN}` series of them) as tf.Example splits.

aclImdb/train is divided by a SHA-256 of `review_id` (`train_split_config`), aclImdb/test becomes the test split
whole, and a span series adds the previous span's train as `previous_span`. Each split is written in `order_key`
order: the same order on every run, labels mixed throughout. Bad input fails naming the file and the fix, and a
failed run removes what it wrote.
"""

import bisect
import hashlib
import itertools
import math
import os
import re
import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import EXAMPLES_KEY, RANGE_CONFIG_KEY
from tfx.utils import proto_utils

from components import cache_key_driver
from components.ingestion import imdb_layout, imdb_source, imdb_spans
from components.ingestion.imdb_layout import ReviewFile, ReviewFormatError
from config.examples import (
    LABEL_FEATURE,
    LENGTH_BUCKET_FEATURE,
    PREVIOUS_SPAN_SPLIT,
    RATING_FEATURE,
    REVIEW_ID_FEATURE,
    TEXT_FEATURE,
    has_spans,
)
from modules import review_text
from modules.model_interface import SPANS_PROPERTY

TRAIN_DIR, TEST_DIR = imdb_layout.CORPUS_SPLITS  # aclImdb's folders, not output splits
LINE_BREAK_TAG = re.compile(review_text.LINE_BREAK_PATTERN)
READ_BATCH_SIZE = 250
RECORDS_PER_SHARD = 10_000  # a split is ceil(reviews / RECORDS_PER_SHARD) gzipped TFRecord files
# Each length bucket's lower bound in words and its name; pipeline/schema/schema.pbtxt lists the same names.
LENGTH_BUCKETS: tuple[tuple[int, str], ...] = (
    (0, "0-49"),
    (50, "50-99"),
    (100, "100-199"),
    (200, "200-399"),
    (400, "400-799"),
    (800, "800+"),
)

SOURCE_KEY = "source"
SOURCE_SHA256_KEY = "source_sha256"
DOWNLOAD_DIR_KEY = "download_dir"
TRAIN_SPLIT_CONFIG_KEY = "train_split_config"
TEST_SPLIT_NAME_KEY = "test_split_name"
SOURCE_FINGERPRINT_KEY = "source_fingerprint"
PREVIOUS_SPAN_PROPERTY = "previous_span"  # 0: none


def list_review_files(data_root: str, corpus_split: str, id_prefix: str = "") -> list[ReviewFile]:
    """Lists and checks the review files of one corpus split (`imdb_layout`, through TensorFlow's filesystems)."""
    return imdb_layout.list_review_files(
        data_root, corpus_split, id_prefix, isdir=tf.io.gfile.isdir, listdir=tf.io.gfile.listdir
    )


def length_bucket(text: str) -> str:
    """The `LENGTH_BUCKETS` name of the range that the review's word count falls in."""
    words = len(text.split())
    return [name for lower, name in LENGTH_BUCKETS if words >= lower][-1]


def review_to_example(review: ReviewFile) -> bytes:
    """Reads one review (strict UTF-8, `<br />` tags become newlines) as a serialized tf.Example."""
    with tf.io.gfile.GFile(review.path, "rb") if "://" in review.path else open(review.path, "rb") as f:
        raw = f.read()
    try:
        text = LINE_BREAK_TAG.sub(review_text.LINE_BREAK_REPLACEMENT, raw.decode("utf-8")).strip()
    except UnicodeDecodeError as error:
        raise ReviewFormatError(
            f"{review.path}: not valid UTF-8 at byte {error.start}; re-encode the file as UTF-8."
        ) from error
    if not text:
        raise ReviewFormatError(f"{review.path}: the review is empty; delete the file or restore its text.")
    values = {
        TEXT_FEATURE: text,
        LABEL_FEATURE: imdb_layout.LABEL_DIRS[review.label_dir],
        RATING_FEATURE: review.rating,
        REVIEW_ID_FEATURE: review.review_id,
        LENGTH_BUCKET_FEATURE: length_bucket(text),
    }
    # pyval_to_feature, not dict_to_example: that one writes a 0 label as an empty feature.
    return tf.train.Example(
        features=tf.train.Features(
            feature={name: example_gen_utils.pyval_to_feature([value]) for name, value in values.items()}
        )
    ).SerializeToString()


def hash_bucket(review_id: str, num_buckets: int) -> int:
    """A bucket in [0, num_buckets) from a SHA-256 of the review id: the same on every machine."""
    return int.from_bytes(hashlib.sha256(review_id.encode("utf-8")).digest()[:8], "big") % num_buckets


def assign_splits(
    train_reviews: list[ReviewFile],
    test_reviews: list[ReviewFile],
    split_config: example_gen_pb2.SplitConfig,
    test_split_name: str,
) -> dict[str, list[ReviewFile]]:
    """Which reviews go to which output split (cheap: hashing ids, no file is read)."""
    names = [split.name for split in split_config.splits] + ([test_split_name] if test_split_name else [])
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"split names must be distinct and non-empty, got {names}")
    splits: dict[str, list[ReviewFile]] = {name: [] for name in names}
    bounds = list(itertools.accumulate(split.hash_buckets for split in split_config.splits))
    for review in train_reviews:  # split i holds the buckets from bounds[i - 1] up to bounds[i]
        splits[names[bisect.bisect_right(bounds, hash_bucket(review.review_id, bounds[-1]))]].append(review)
    if test_split_name:
        splits[test_split_name] = list(test_reviews)
    return splits


def order_key(review_id: str) -> bytes:
    """A review's place in its split: a hash of its id, the same on every run and unrelated to the label."""
    return hashlib.sha256(f"order/{review_id}".encode()).digest()


def convert_batch(reviews: list[ReviewFile], num_shards: int) -> list[tuple[int, tuple[bytes, bytes]]]:
    """(shard index, (order key, serialized tf.Example)) for each review of the batch."""
    keys = [order_key(review.review_id) for review in reviews]
    return [
        (int.from_bytes(key[:8], "big") % num_shards, (key, review_to_example(review)))
        for key, review in zip(keys, reviews)
    ]


def write_shard(shard: int, keyed_records: Iterable[tuple[bytes, bytes]], split_uri: str, num_shards: int) -> str:
    """Writes one gzipped TFRecord shard in order-key order, complete once it has its name (Beam's)."""
    path = os.path.join(split_uri, f"data_tfrecord-{shard:05d}-of-{num_shards:05d}.gz")
    temporary = f"{path}.incomplete"
    tf.io.gfile.makedirs(split_uri)
    with tf.io.TFRecordWriter(temporary, options="GZIP") as writer:
        for _, record in sorted(keyed_records):
            writer.write(record)
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


def parse_range_config(value: str | None) -> range_config_pb2.RangeConfig | None:
    return proto_utils.json_to_proto(value, range_config_pb2.RangeConfig()) if value else None


def list_splits(exec_properties: dict[str, Any]) -> tuple[dict[str, list[ReviewFile]], imdb_spans.SpanSelection | None]:
    """The review files of each output split, and the spans read (None: not a `{SPAN}` source)."""
    source, download_dir = exec_properties[SOURCE_KEY], exec_properties[DOWNLOAD_DIR_KEY]
    split_config = proto_utils.json_to_proto(exec_properties[TRAIN_SPLIT_CONFIG_KEY], example_gen_pb2.SplitConfig())
    test_split_name = exec_properties[TEST_SPLIT_NAME_KEY]
    # (corpus root, review id prefix) of each span read, or of the one corpus
    if has_spans(source):
        selection = imdb_spans.find_and_select(source, parse_range_config(exec_properties.get(RANGE_CONFIG_KEY)))
        roots = [(imdb_source.resolve(s.path, download_dir), f"span-{s.number}/") for s in selection.window]
    else:
        selection = None
        roots = [(imdb_source.resolve(source, download_dir, exec_properties.get(SOURCE_SHA256_KEY)), "")]

    def reviews(corpus_split: str) -> list[ReviewFile]:
        return [review for root, prefix in roots for review in list_review_files(root, corpus_split, prefix)]

    splits = assign_splits(
        reviews(TRAIN_DIR), reviews(TEST_DIR) if test_split_name else [], split_config, test_split_name
    )
    if selection and (previous := selection.previous):
        splits[PREVIOUS_SPAN_SPLIT] = list_review_files(
            imdb_source.resolve(previous.path, download_dir), TRAIN_DIR, f"span-{previous.number}/"
        )
    return splits, selection


def record_spans(examples: types.Artifact, selection: imdb_spans.SpanSelection | None) -> None:
    """`span` and `version` (TFX's Examples properties) and the window, for lineage."""
    if selection is None:
        return
    logging.info(
        "Spans read: %s; previous span: %s",
        [s.number for s in selection.window],
        selection.previous.number if selection.previous else "none",
    )
    examples.span = selection.newest.number
    if selection.newest.version is not None:
        examples.version = selection.newest.version
    examples.set_string_custom_property(SPANS_PROPERTY, ",".join(str(s.number) for s in selection.window))
    examples.set_int_custom_property(PREVIOUS_SPAN_PROPERTY, selection.previous.number if selection.previous else 0)


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads the aclImdb files with Beam and writes the example splits."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        splits, selection = list_splits(exec_properties)
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        examples.split_names = artifact_utils.encode_split_names(list(splits))
        record_spans(examples, selection)
        try:
            self._write_splits(splits, examples)
        except BaseException:
            for name in splits:
                if tf.io.gfile.exists(split_uri := artifact_utils.get_split_uri([examples], name)):
                    tf.io.gfile.rmtree(split_uri)
            raise
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples.set_string_custom_property(SOURCE_KEY, exec_properties[SOURCE_KEY])  # for provenance
        if exec_properties.get(SOURCE_FINGERPRINT_KEY):
            examples.set_string_custom_property(SOURCE_FINGERPRINT_KEY, exec_properties[SOURCE_FINGERPRINT_KEY])

    def _write_splits(self, splits: dict[str, list[ReviewFile]], examples: types.Artifact) -> None:
        # Files are read in batches (per-element overhead dominates on small files), spread over the workers by
        # a Reshuffle; each shard is then written whole, in `order_key` order, by one worker.
        with self._make_beam_pipeline() as pipeline:
            for name, reviews in splits.items():
                num_shards = max(1, math.ceil(len(reviews) / RECORDS_PER_SHARD))
                batches = [
                    reviews[start : start + READ_BATCH_SIZE] for start in range(0, len(reviews), READ_BATCH_SIZE)
                ]
                _ = (
                    pipeline
                    | f"ListFiles[{name}]" >> beam.Create(batches)
                    | f"Distribute[{name}]" >> beam.Reshuffle()
                    | f"ReadAndConvert[{name}]" >> beam.FlatMap(convert_batch, num_shards)
                    | f"GroupByShard[{name}]" >> beam.GroupByKey()
                    | f"WriteShards[{name}]"
                    >> beam.Map(
                        lambda shard, uri, count: write_shard(shard[0], shard[1], uri, count),
                        artifact_utils.get_split_uri([examples], name),
                        num_shards,
                    )
                )


def source_fingerprint(source: str, sha256: str | None = None) -> str:
    """What the corpus at `source` is, for caching: a change to any review file changes it."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):  # an unpinned URL may change behind its address: never a cache hit
        checksum = sha256 or imdb_source.KNOWN_SHA256.get(source)
        return f"{source} sha256:{checksum}" if checksum else f"{source} unpinned, read at {time.time_ns()}"
    path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else os.path.expanduser(source)
    # Names, sizes and nanosecond times: TFX's io_utils.generate_fingerprint keeps whole seconds and no names,
    # so an edit of the same size within a second, or a renamed review, would be a cache hit.
    entries = []
    if fileio.isdir(path):
        for directory, folders, names in fileio.walk(path):
            folders[:] = [
                f for f in folders if not os.path.join(directory, f).rstrip("/").endswith(imdb_source.SKIPPED_FOLDER)
            ]
            for name in names:
                stat = fileio.stat(file_path := os.path.join(directory, name))
                entries.append(f"{os.path.relpath(file_path, path)}\t{stat.length}\t{stat.mtime_nsec}")
    else:  # a local archive, and its pinned checksum
        stat = fileio.stat(path)
        entries.append(f"{os.path.basename(path)}\t{stat.length}\t{stat.mtime_nsec}\t{sha256 or ''}")
    digest = hashlib.sha256("\n".join(sorted(entries)).encode("utf-8")).hexdigest()
    return f"{len(entries)} files, sha256 of names, sizes and times {digest}"


def read_fingerprint(source: str, sha256: str | None, range_config: range_config_pb2.RangeConfig | None) -> str:
    """`source_fingerprint` of what a run reads: the source, or each span of the window and the previous span."""
    if not has_spans(source):
        return source_fingerprint(source, sha256)
    selection = imdb_spans.find_and_select(source, range_config)
    read = selection.window + ([selection.previous] if selection.previous else [])
    return "; ".join(f"span {s.number} v{s.version}: {source_fingerprint(s.path)}" for s in read)


class Driver(cache_key_driver.CacheKeyDriver):
    """Puts `read_fingerprint` in the execution properties: a cached ingestion is reused only for the same files."""

    KEY = SOURCE_FINGERPRINT_KEY

    def cache_key(self, exec_properties: dict[str, Any]) -> str:
        fingerprint = read_fingerprint(
            exec_properties[SOURCE_KEY],
            exec_properties.get(SOURCE_SHA256_KEY) or None,
            parse_range_config(exec_properties.get(RANGE_CONFIG_KEY)),
        )
        logging.info("ImdbExampleGen source %s: %s", exec_properties[SOURCE_KEY], fingerprint)
        return fingerprint


class ImdbExampleGenSpec(types.ComponentSpec):
    PARAMETERS = {
        SOURCE_KEY: ExecutionParameter(type=str),
        SOURCE_SHA256_KEY: ExecutionParameter(type=str, optional=True),
        DOWNLOAD_DIR_KEY: ExecutionParameter(type=str),
        TRAIN_SPLIT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.SplitConfig),
        TEST_SPLIT_NAME_KEY: ExecutionParameter(type=str),
        RANGE_CONFIG_KEY: ExecutionParameter(type=range_config_pb2.RangeConfig, optional=True),
        SOURCE_FINGERPRINT_KEY: ExecutionParameter(type=str, optional=True),  # set by the Driver (LocalDagRunner)
    }
    INPUTS: dict[str, ChannelParameter] = {}
    OUTPUTS = {EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


# Not TFX's FileBasedExampleGen, which would lose guarantees: it reads one span (StaticRange start == end,
# RollingRange num_spans 1), we a window of spans plus the previous span; on Kubeflow V2 its driver becomes a
# pre_cache_check hook that only Vertex AI runs, so the KFP backend would never resolve {SPAN}; it forbids an
# output split_config over several input splits (we hash aclImdb/train into train/eval, keep test whole); its
# writer reshuffles (label-mixed, not deterministic); and its driver cannot glob a tarball or URL source.
class ImdbExampleGen(base_beam_component.BaseBeamComponent):
    """Turns the aclImdb corpus into train / eval / test (and previous_span) `tf.Example` splits.

    `source`: an aclImdb folder (local or gs://), a `.tar.gz`, an http(s)/file URL of one, or a `{SPAN}` series
    (`imdb_spans`) read as `range_config` selects (None: the newest span). `source_sha256` pins an archive.
    """

    SPEC_CLASS = ImdbExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = Driver

    def __init__(
        self,
        source: str,
        download_dir: str,
        train_split_config: example_gen_pb2.SplitConfig,
        test_split_name: str,
        source_sha256: str | None = None,
        range_config: range_config_pb2.RangeConfig | None = None,
    ):
        super().__init__(
            spec=ImdbExampleGenSpec(
                source=source,
                source_sha256=source_sha256 or "",
                download_dir=download_dir,
                train_split_config=train_split_config,
                test_split_name=test_split_name,
                range_config=range_config,
                examples=types.Channel(type=standard_artifacts.Examples),
            )
        )
