"""The BERT encoders the tutorial offers, by name, and the checks a handle must pass before any work starts.

Each name maps to a TF Hub encoder handle and its matching preprocessing handle (the tutorial's
`map_name_to_handle` / `map_model_to_preprocess`). Handles are URLs or local SavedModel folders;
URLs are fetched by tensorflow_hub, which caches them under `TFHUB_CACHE_DIR` when that is set.
"""

from __future__ import annotations

import dataclasses

from modules.model_interface import ENCODER_INPUTS

ENCODER_OUTPUTS = ("pooled_output", "sequence_output")
PREPROCESS_FUNCTIONS = ("tokenize", "bert_pack_inputs")

_UNCASED_PREPROCESS = "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"


@dataclasses.dataclass(frozen=True)
class EncoderHandles:
    encoder: str
    preprocess: str


def _small_berts() -> dict[str, EncoderHandles]:
    handles = {}
    for layers in (2, 4, 6, 8, 10, 12):
        for hidden in (128, 256, 512, 768):
            name = f"small_bert/bert_en_uncased_L-{layers}_H-{hidden}_A-{hidden // 64}"
            handles[name] = EncoderHandles(f"https://tfhub.dev/tensorflow/{name}/1", _UNCASED_PREPROCESS)
    return handles


ENCODERS: dict[str, EncoderHandles] = {
    "bert_en_uncased_L-12_H-768_A-12": EncoderHandles(
        "https://tfhub.dev/tensorflow/bert_en_uncased_L-12_H-768_A-12/3", _UNCASED_PREPROCESS),
    "bert_en_cased_L-12_H-768_A-12": EncoderHandles(
        "https://tfhub.dev/tensorflow/bert_en_cased_L-12_H-768_A-12/3",
        "https://tfhub.dev/tensorflow/bert_en_cased_preprocess/3"),
    "bert_multi_cased_L-12_H-768_A-12": EncoderHandles(
        "https://tfhub.dev/tensorflow/bert_multi_cased_L-12_H-768_A-12/3",
        "https://tfhub.dev/tensorflow/bert_multi_cased_preprocess/3"),
    **_small_berts(),
    "albert_en_base": EncoderHandles(
        "https://tfhub.dev/tensorflow/albert_en_base/2", "https://tfhub.dev/tensorflow/albert_en_preprocess/3"),
    "electra_small": EncoderHandles("https://tfhub.dev/google/electra_small/2", _UNCASED_PREPROCESS),
    "electra_base": EncoderHandles("https://tfhub.dev/google/electra_base/2", _UNCASED_PREPROCESS),
    "experts_pubmed": EncoderHandles("https://tfhub.dev/google/experts/bert/pubmed/2", _UNCASED_PREPROCESS),
    "experts_wiki_books": EncoderHandles("https://tfhub.dev/google/experts/bert/wiki_books/2", _UNCASED_PREPROCESS),
    "talking-heads_base": EncoderHandles(
        "https://tfhub.dev/tensorflow/talkheads_ggelu_bert_en_base/1", _UNCASED_PREPROCESS),
}


class EncoderError(ValueError):
    """An unknown encoder name or an unusable handle; the message says what is available or wrong."""


def by_name(name: str) -> EncoderHandles:
    if name not in ENCODERS:
        raise EncoderError(f"unknown encoder '{name}'. Available: {', '.join(ENCODERS)}; or pass "
                           f"--encoder-handle and --preprocess-handle (URLs or SavedModel folders).")
    return ENCODERS[name]


def _load(handle: str, role: str):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (the preprocessors' ops)

    try:
        return hub.load(handle)
    except Exception as error:  # hub raises many types: URLError, OSError, ValueError, NotFoundError...
        raise EncoderError(
            f"{role} handle '{handle}' cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0][:300]}). "
            f"Give a reachable TF Hub URL or a local SavedModel folder; known names: --encoder NAME "
            f"(see modules/encoders.py), offline: leave both handles unset for the built-in MiniLM.") from error


def position_embeddings(encoder) -> int | None:
    """How many positions a loaded BERT encoder embeds (the longest sequence it reads); None if unknown."""
    lengths = [v.shape[0] for v in encoder.variables if "position_embedding" in v.name and len(v.shape) == 2]
    return lengths[0] if len(lengths) == 1 else None


def check_handles(handles: EncoderHandles, seq_length: int | None = None) -> None:
    """Loads both handles and checks they implement the TF Hub BERT preprocessor / encoder interface, and
    that the encoder embeds `seq_length` positions when given."""
    preprocess = _load(handles.preprocess, "preprocess")
    missing = [f for f in PREPROCESS_FUNCTIONS if not hasattr(preprocess, f)]
    if missing:
        raise EncoderError(f"preprocess handle '{handles.preprocess}' is not a BERT preprocessor: it has no "
                           f"{missing} (a TF Hub BERT preprocessing model has tokenize and bert_pack_inputs).")
    import tensorflow as tf

    encoder = _load(handles.encoder, "encoder")
    inputs = {name: tf.zeros([1, 8], tf.int32) for name in ENCODER_INPUTS}
    try:
        outputs = encoder(inputs, training=False)
    except Exception as error:
        raise EncoderError(f"encoder handle '{handles.encoder}' does not take the BERT inputs "
                           f"{list(ENCODER_INPUTS)} ({type(error).__name__}).") from error
    missing = [name for name in ENCODER_OUTPUTS if not isinstance(outputs, dict) or name not in outputs]
    if missing:
        raise EncoderError(f"encoder handle '{handles.encoder}' does not return {missing}; a TF Hub BERT "
                           f"encoder returns {list(ENCODER_OUTPUTS)}.")
    positions = position_embeddings(encoder)
    if seq_length is not None and positions is not None and seq_length > positions:
        raise EncoderError(f"--seq-length {seq_length} is longer than the encoder '{handles.encoder}' reads: it "
                           f"embeds {positions} positions; give --seq-length {positions} or less.")
