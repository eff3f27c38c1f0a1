"""The names of the data that the settings refer to, declared once: each tf.Example's features (--slice-features
names some), the splits ImdbExampleGen writes (--test-split, the gate's split, the train split's buckets), and
TFX's span spec in a --data series. The model, ingestion and validation read them here too."""

from __future__ import annotations

TEXT_FEATURE = "text"  # tf.Example feature: the review
LABEL_FEATURE = "label"  # tf.Example feature: 0 negative, 1 positive (int)
RATING_FEATURE = "rating"  # tf.Example feature: 1-10 stars (int)
REVIEW_ID_FEATURE = "review_id"  # tf.Example feature: "[span-<n>/]<corpus split>/<label dir>/<id>"
LENGTH_BUCKET_FEATURE = "length_bucket"  # tf.Example feature: words, as a range such as "100-199"
# The example splits ImdbExampleGen writes: aclImdb/train divided by review id into TRAIN and EVAL, aclImdb/test
# whole as TEST, and the previous span's aclImdb/train (a series of spans) as PREVIOUS_SPAN.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"
PREVIOUS_SPAN_SPLIT = "previous_span"
# TFX's specs (tests/unit/test_imdb_spans.py checks they are the same), spelled here and matched by hand
# (components/ingestion/imdb_spans.py): the runners check a span source before TensorFlow loads, and
# tfx.components.example_gen.utils imports it; its matcher also fails on a trailing "/" or a non-numeric match
# (span-old) and reads one span, not a window.
SPAN_SPEC = "{SPAN}"
VERSION_SPEC = "{VERSION}"


def has_spans(source: str) -> bool:
    """Whether a --data source names a series of spans (reviews/span-{SPAN})."""
    return SPAN_SPEC in source
