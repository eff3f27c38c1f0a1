"""Spans of a `{SPAN}` source: found, selected by RangeConfig, read by ImdbExampleGen with their lineage."""

from pathlib import Path

import pytest
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import range_config_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.ingestion import imdb_example_gen, imdb_source, imdb_spans
from components.ingestion.synthetic_corpus import SyntheticCorpusSpec, write_synthetic_corpus
from config.examples import SPAN_SPEC, VERSION_SPEC
from tests.support.example_gen_helpers import read_split, run_executor

SMALL = SyntheticCorpusSpec(reviews_per_label={"train": 10, "test": 3})


def drop(root: Path, name: str, seed: int = 1) -> Path:
    return write_synthetic_corpus(
        root / name, SyntheticCorpusSpec(reviews_per_label=SMALL.reviews_per_label, seed=seed)
    )


def test_the_specs_are_tfxs():
    assert (SPAN_SPEC, VERSION_SPEC) == (
        example_gen_utils.SPAN_SPEC,
        example_gen_utils.VERSION_SPEC,
    )


def test_spans_are_found_with_their_newest_version_and_selected_by_range(tmp_path):
    for name in ("span-1/v1", "span-1/v2", "span-2/v1", "span-10/v3", "other/v1"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "span-3").mkdir()  # no version folder: not a match for span-{SPAN}/v{VERSION}
    pattern = str(tmp_path / "span-{SPAN}" / "v{VERSION}")
    spans = imdb_spans.find_spans(pattern)
    assert [(s.number, s.version) for s in spans] == [(1, 2), (2, 1), (10, 3)]
    newest = imdb_spans.select(spans, None, pattern)
    assert [s.number for s in newest.window] == [10] and newest.previous.number == 2
    window = imdb_spans.select(spans, imdb_spans.rolling_range(2), pattern)
    assert [s.number for s in window.window] == [2, 10] and window.previous.number == 1
    backfill = imdb_spans.select(
        spans,
        range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(start_span_number=1, end_span_number=1)),
        pattern,
    )
    assert [s.number for s in backfill.window] == [1] and backfill.previous is None


def test_a_pattern_matching_nothing_is_refused_naming_it(tmp_path):
    pattern = str(tmp_path / "span-{SPAN}")
    with pytest.raises(imdb_spans.SpanError, match=r"no folder matches; expected span folders such as .*span-1"):
        imdb_spans.select(imdb_spans.find_spans(pattern), None, pattern)
    with pytest.raises(imdb_source.SourceError, match="no folder matches"):
        imdb_source.check_local_source(pattern)


def test_the_window_becomes_the_splits_and_the_previous_span_its_own_split(tmp_path):
    for span in (1, 2, 3):
        drop(tmp_path / "reviews", f"span-{span}", seed=span)
    examples = run_executor(
        str(tmp_path / "reviews" / "span-{SPAN}"), tmp_path / "out", range_config=imdb_spans.rolling_range(2)
    )
    assert examples.span == 3
    assert examples.get_string_custom_property(imdb_example_gen.SPANS_PROPERTY) == "2,3"
    assert examples.get_int_custom_property(imdb_example_gen.PREVIOUS_SPAN_PROPERTY) == 1
    assert set(artifact_utils.decode_split_names(examples.split_names)) == {"train", "eval", "test", "previous_span"}
    ids = [r["review_id"] for name in ("train", "eval") for r in read_split(examples, name)]
    assert len(ids) == 2 * 20 and {i.split("/")[0] for i in ids} == {"span-2", "span-3"}
    previous = read_split(examples, "previous_span")
    assert len(previous) == 20 and {r["review_id"].split("/")[0] for r in previous} == {"span-1"}


def test_the_first_span_has_no_previous_span_split(tmp_path):
    drop(tmp_path / "reviews", "span-1")
    examples = run_executor(str(tmp_path / "reviews" / "span-{SPAN}"), tmp_path / "out")
    assert examples.span == 1 and "previous_span" not in artifact_utils.decode_split_names(examples.split_names)
    assert examples.get_int_custom_property(imdb_example_gen.PREVIOUS_SPAN_PROPERTY) == 0


def test_the_cache_key_changes_only_when_what_is_read_changes(tmp_path):
    reviews = tmp_path / "reviews"
    drop(reviews, "span-1", seed=1)
    pattern = str(reviews / "span-{SPAN}")
    first = imdb_example_gen.read_fingerprint(pattern, None, None)
    assert imdb_example_gen.read_fingerprint(pattern, None, None) == first  # unchanged span: cache hit
    drop(reviews, "span-2", seed=2)
    second = imdb_example_gen.read_fingerprint(pattern, None, None)
    assert second != first and "span 2" in second and "span 1" in second  # newest + previous are read
    assert imdb_example_gen.read_fingerprint(pattern, None, None) == second


def test_examples_artifact_type_has_tfxs_span_and_version_properties():
    assert {"span", "version"} <= set(standard_artifacts.Examples.PROPERTIES)
