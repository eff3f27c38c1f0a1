"""Spans: numbered drops of reviews, each an aclImdb folder, found by TFX's `{SPAN}` / `{VERSION}` specs.

`reviews/span-{SPAN}` matches reviews/span-1, span-2, ...; `reviews/span-{SPAN}/v{VERSION}` reads each span's
highest version. A TFX RangeConfig picks the window a run reads (`rolling_range`: the newest `num_spans`;
`static_range`: a backfill; default: the newest span). The newest span older than the window is the previous
span, which this run's data is compared with for drift.
"""

import dataclasses
import glob as local_glob
import os
import re
from typing import Any

from config.examples import SPAN_SPEC, VERSION_SPEC


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


def find_spans(pattern: str) -> list[Span]:
    """Every span folder matching `pattern` (local or gs://...), its highest version, ascending by span."""
    if pattern.count(SPAN_SPEC) != 1 or pattern.count(VERSION_SPEC) > 1:
        raise SpanError(f"{pattern}: a span pattern holds {SPAN_SPEC} once (and {VERSION_SPEC} at most once)")
    escaped = re.escape(pattern.rstrip("/")).replace(re.escape(SPAN_SPEC), r"(?P<span>\d+)")
    regex = re.compile(escaped.replace(re.escape(VERSION_SPEC), r"(?P<version>\d+)") + "/?")
    glob = pattern.rstrip("/").replace(SPAN_SPEC, "*").replace(VERSION_SPEC, "*")
    if "://" in pattern:
        from tfx.dsl.io import fileio

        paths, isdir = fileio.glob(glob), fileio.isdir
    else:
        paths, isdir = local_glob.glob(glob), os.path.isdir
    spans = [
        Span(int(match["span"]), int(match["version"]) if "version" in regex.groupindex else None, path)
        for path in paths
        if (match := regex.fullmatch(path)) and isdir(path)
    ]
    newest = {s.number: s for s in sorted(spans, key=lambda s: (s.number, s.version or 0))}  # highest version last
    return list(newest.values())


def find_and_select(pattern: str, range_config: Any) -> SpanSelection:
    """`select` over `find_spans(pattern)`: the window and the previous span a run reads."""
    return select(find_spans(pattern), range_config, pattern)


def rolling_range(num_spans: int) -> Any:
    """The newest `num_spans` spans (`--spans K`), as a TFX RangeConfig."""
    from tfx.proto import range_config_pb2

    return range_config_pb2.RangeConfig(rolling_range=range_config_pb2.RollingRange(num_spans=num_spans))


def select(spans: list[Span], range_config: Any, pattern: str) -> SpanSelection:
    """The window a TFX RangeConfig (None: the newest span) picks from `spans`, and the span before it."""
    if not spans:
        raise SpanError(
            f"{pattern}: no folder matches; expected span folders such as "
            f"{pattern.replace(SPAN_SPEC, '1').replace(VERSION_SPEC, '1')}, each an aclImdb folder"
        )
    kind = range_config.WhichOneof("range") if range_config is not None else None
    if kind == "static_range":
        low, high = range_config.static_range.start_span_number, range_config.static_range.end_span_number
        window = [s for s in spans if low <= s.number <= high]
    else:
        rolling = range_config.rolling_range if kind == "rolling_range" else None
        start = rolling.start_span_number if rolling else 0
        window = [s for s in spans if s.number >= start][-((rolling.num_spans if rolling else 0) or 1) :]
    if not window:
        raise SpanError(f"{pattern}: the range {range_config} selects none of the spans {[s.number for s in spans]}")
    older = [s for s in spans if s.number < window[0].number]
    return SpanSelection(window, older[-1] if older else None)
