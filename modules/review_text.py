"""How review text is normalized and cut to the encoder's length: one definition for ingestion, training and
serving, so the pushed model reads a pasted review exactly as training read the corpus.

`<br />` tags become newlines; a long review keeps its `head`, `tail` or `head+tail` (Sun et al. 2019: 128 head
and 382 tail of 510 tokens did best on IMDb; the same share is kept at any sequence length).
"""

from __future__ import annotations

from config.training import HEAD, HEAD_AND_TAIL, SPECIAL_TOKENS, TAIL, TRUNCATIONS

# RE2 (tf.strings.regex_replace) and Python's `re` read this pattern the same way.
LINE_BREAK_PATTERN = r"(?i)<br\s*/?>"
LINE_BREAK_REPLACEMENT = "\n"

# Sun et al.'s split of a 510-token budget: 128 head tokens, 382 tail tokens.
_HEAD_SHARE = (128, 510)


def head_and_tail_lengths(truncation: str, seq_length: int) -> tuple[int, int]:
    """How many leading and trailing tokens a review longer than the budget keeps."""
    budget = seq_length - SPECIAL_TOKENS
    if budget < 1:
        raise ValueError(f"seq_length must be at least {SPECIAL_TOKENS + 1}, got {seq_length}")
    if truncation == HEAD:
        return budget, 0
    if truncation == TAIL:
        return 0, budget
    if truncation == HEAD_AND_TAIL:
        head = budget * _HEAD_SHARE[0] // _HEAD_SHARE[1]
        return head, budget - head
    raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")


def normalize(text):
    """Review strings (a tf.string tensor) with `<br />` tags turned into newlines."""
    import tensorflow as tf

    return tf.strings.regex_replace(text, LINE_BREAK_PATTERN, LINE_BREAK_REPLACEMENT)


def truncate(tokens, truncation: str, seq_length: int):
    """Each row of `tokens` (a [batch, (tokens)] RaggedTensor) cut by `truncation` to fit `seq_length`."""
    import tensorflow as tf

    head, tail = head_and_tail_lengths(truncation, seq_length)
    lengths = tokens.row_lengths()
    positions = tf.ragged.range(tf.zeros_like(lengths), lengths)
    keep = (positions < head) | (positions >= tf.expand_dims(lengths - tail, 1))
    return tf.ragged.boolean_mask(tokens, keep)
