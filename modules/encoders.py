"""The tutorial's BERT encoders by name (TF Hub encoder and matching preprocessor handles), and the checks a
handle must pass before any work starts. Handles are URLs (cached under `TFHUB_CACHE_DIR`) or SavedModel folders.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from modules.model_interface import ENCODER_INPUTS, ENCODER_OUTPUTS

PREPROCESS_FUNCTIONS = ("tokenize", "bert_pack_inputs")

_HUB = "https://tfhub.dev/"


@dataclasses.dataclass(frozen=True)
class EncoderHandles:
    encoder: str
    preprocess: str


def _hub(encoder: str, preprocess: str = "bert_en_uncased") -> EncoderHandles:
    """The tfhub.dev encoder at `encoder` and the TF Hub preprocessor `<preprocess>_preprocess/3`."""
    return EncoderHandles(_HUB + encoder, f"{_HUB}tensorflow/{preprocess}_preprocess/3")


ENCODERS: dict[str, EncoderHandles] = {
    "bert_en_uncased_L-12_H-768_A-12": _hub("tensorflow/bert_en_uncased_L-12_H-768_A-12/3"),
    "bert_en_cased_L-12_H-768_A-12": _hub("tensorflow/bert_en_cased_L-12_H-768_A-12/3", "bert_en_cased"),
    "bert_multi_cased_L-12_H-768_A-12": _hub("tensorflow/bert_multi_cased_L-12_H-768_A-12/3", "bert_multi_cased"),
    **{
        f"small_bert/bert_en_uncased_L-{layers}_H-{hidden}_A-{hidden // 64}": _hub(
            f"tensorflow/small_bert/bert_en_uncased_L-{layers}_H-{hidden}_A-{hidden // 64}/1"
        )
        for layers in (2, 4, 6, 8, 10, 12)
        for hidden in (128, 256, 512, 768)
    },
    "albert_en_base": _hub("tensorflow/albert_en_base/2", "albert_en"),
    "electra_small": _hub("google/electra_small/2"),
    "electra_base": _hub("google/electra_base/2"),
    "experts_pubmed": _hub("google/experts/bert/pubmed/2"),
    "experts_wiki_books": _hub("google/experts/bert/wiki_books/2"),
    "talking-heads_base": _hub("tensorflow/talkheads_ggelu_bert_en_base/1"),
}


class EncoderError(ValueError):
    """An unknown encoder name or an unusable handle; the message says what is available or wrong."""


def by_name(name: str) -> EncoderHandles:
    if name not in ENCODERS:
        raise EncoderError(
            f"unknown encoder '{name}'. Available: {', '.join(ENCODERS)}; or pass "
            f"--encoder-handle and --preprocess-handle (URLs or SavedModel folders)."
        )
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
            f"(see modules/encoders.py), offline: leave both handles unset for the built-in MiniLM."
        ) from error


def check_handles(handles: EncoderHandles, seq_length: int | None = None) -> None:
    """Loads both handles; checks they are a TF Hub BERT preprocessor and encoder embedding `seq_length` positions."""
    preprocess = _load(handles.preprocess, "preprocess")
    missing = [f for f in PREPROCESS_FUNCTIONS if not hasattr(preprocess, f)]
    if missing:
        raise EncoderError(
            f"preprocess handle '{handles.preprocess}' is not a BERT preprocessor: it has no "
            f"{missing} (a TF Hub BERT preprocessing model has tokenize and bert_pack_inputs)."
        )
    import tensorflow as tf

    encoder = _load(handles.encoder, "encoder")
    inputs = {name: tf.zeros([1, 8], tf.int32) for name in ENCODER_INPUTS}
    try:
        outputs = encoder(inputs, training=False)
    except Exception as error:
        raise EncoderError(
            f"encoder handle '{handles.encoder}' does not take the BERT inputs "
            f"{list(ENCODER_INPUTS)} ({type(error).__name__})."
        ) from error
    missing = [name for name in ENCODER_OUTPUTS if not isinstance(outputs, dict) or name not in outputs]
    if missing:
        raise EncoderError(
            f"encoder handle '{handles.encoder}' does not return {missing}; a TF Hub BERT "
            f"encoder returns {list(ENCODER_OUTPUTS)}."
        )
    # How many positions the encoder embeds: the longest sequence it reads.
    positions = [v.shape[0] for v in encoder.variables if "position_embedding" in v.name and len(v.shape) == 2]
    if seq_length is not None and len(positions) == 1 and seq_length > positions[0]:
        raise EncoderError(
            f"--seq-length {seq_length} is longer than the encoder '{handles.encoder}' reads: it "
            f"embeds {positions[0]} positions; give --seq-length {positions[0]} or less."
        )


@dataclasses.dataclass(frozen=True)
class HubBertPaths:
    """Where a Hub-format BERT pair lives on disk."""

    root: Path

    @property
    def encoder(self) -> Path:
        return self.root / "encoder"

    @property
    def preprocess(self) -> Path:
        return self.root / "preprocess"

    def handles(self) -> EncoderHandles:
        return EncoderHandles(encoder=str(self.encoder), preprocess=str(self.preprocess))

    def exists(self) -> bool:
        return all((p / "saved_model.pb").exists() for p in (self.encoder, self.preprocess))
