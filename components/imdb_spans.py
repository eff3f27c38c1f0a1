"""Spans: numbered drops of reviews, each an aclImdb folder, found by TFX's `{SPAN}` / `{VERSION}` specs.

    reviews/span-{SPAN}/                  ->  reviews/span-1/, reviews/span-2/, ... (each with train/, test/)
    reviews/span-{SPAN}/v{VERSION}/       ->  the highest version of each span is read

A source with `{SPAN}` is a series of drops; a run reads a window of them, chosen by a TFX `RangeConfig`:
`rolling_range` (the newest `num_spans`, none older than `start_span_number`; the default is the newest
span alone) or `static_range` (spans `start_span_number`..`end_span_number`, e.g. to backfill). The newest
span older than the window is the *previous span*: this run's data is compared with it for drift.
"""

from __future__ import annotations

import dataclasses
import glob as local_glob
import os
import re
from typing import Any

# TFX's specs (tfx.components.example_gen.utils; tests/test_imdb_spans.py checks they are the same), spelled
# here so that the runners check a span source before TFX or TensorFlow is imported.
SPAN_SPEC = "{SPAN}"
VERSION_SPEC = "{VERSION}"


class SpanError(ValueError):
    """The span pattern matches nothing, or the range selects nothing; the message names both."""


@dataclasses.dataclass(frozen=True)
class Span:
    number: int
    version: int | None
    path: str


@dataclasses.dataclass(frozen=True)
class SpanSelection:
    window: list[Span]  # ascending; the last is the newest
    previous: Span | None

    @property
    def newest(self) -> Span:
        return self.window[-1]


def has_spans(source: str) -> bool:
    return SPAN_SPEC in source


def _pattern_regex(pattern: str) -> re.Pattern:
    if pattern.count(SPAN_SPEC) != 1 or pattern.count(VERSION_SPEC) > 1:
        raise SpanError(f"{pattern}: a span pattern holds {SPAN_SPEC} once (and {VERSION_SPEC} at most once)")
    regex = re.escape(pattern.rstrip("/"))
    regex = regex.replace(re.escape(SPAN_SPEC), r"(?P<span>\d+)").replace(re.escape(VERSION_SPEC), r"(?P<version>\d+)")
    return re.compile(regex + "/?")


def find_spans(pattern: str) -> list[Span]:
    """Every span folder matching `pattern` (local or gs://...), its highest version, ascending by span."""
    regex = _pattern_regex(pattern)
    glob = pattern.rstrip("/").replace(SPAN_SPEC, "*").replace(VERSION_SPEC, "*")
    if "://" in pattern:
        from tfx.dsl.io import fileio

        paths, isdir = fileio.glob(glob), fileio.isdir
    else:
        paths, isdir = local_glob.glob(glob), os.path.isdir
    newest: dict[int, Span] = {}
    for path in paths:
        match = regex.fullmatch(path)
        if not match or not isdir(path):
            continue
        version = match.groupdict().get("version")
        span = Span(int(match["span"]), int(version) if version is not None else None, path)
        known = newest.get(span.number)
        if known is None or (span.version or 0) > (known.version or 0):
            newest[span.number] = span
    return [newest[number] for number in sorted(newest)]


def find_and_select(pattern: str, range_config: Any) -> SpanSelection:
    """`select` over `find_spans(pattern)`: the window and the previous span a run reads."""
    return select(find_spans(pattern), range_config, pattern)


def rolling_range(num_spans: int) -> Any:
    """The newest `num_spans` spans (`--spans K`), as a TFX RangeConfig."""
    from tfx.proto import range_config_pb2

    return range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=num_spans))


def select(spans: list[Span], range_config: Any, pattern: str) -> SpanSelection:
    """The window `range_config` (a TFX RangeConfig, or None) picks from `spans` (default: the newest span)
    and the span before it."""
    if not spans:
        raise SpanError(f"{pattern}: no folder matches; expected span folders such as "
                        f"{pattern.replace(SPAN_SPEC, '1').replace(VERSION_SPEC, '1')}, each an aclImdb folder")
    kind = range_config.WhichOneof("range") if range_config is not None else None
    if kind == "static_range":
        low, high = range_config.static_range.start_span_number, range_config.static_range.end_span_number
        window = [s for s in spans if low <= s.number <= high]
    else:
        rolling = range_config.rolling_range if kind == "rolling_range" else None
        start = rolling.start_span_number if rolling else 0
        window = [s for s in spans if s.number >= start][-((rolling.num_spans if rolling else 0) or 1):]
    if not window:
        raise SpanError(f"{pattern}: the range {range_config} selects none of the spans "
                        f"{[s.number for s in spans]}")
    older = [s for s in spans if s.number < window[0].number]
    return SpanSelection(window, older[-1] if older else None)
