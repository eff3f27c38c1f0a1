"""Builds BERT models in TF Hub format (an encoder SavedModel and a preprocessing SavedModel).

The TF Hub text-encoder interface is the one the tutorial's handles implement: the preprocessor maps a
batch of raw strings to `input_word_ids`, `input_mask` and `input_type_ids`; the encoder maps those to
`pooled_output`, `sequence_output` and `encoder_outputs`. Both SavedModels here are exported with
Model Garden's `export_tfhub_lib`, so they load with `hub.KerasLayer` exactly like tfhub.dev handles.

`build_random_bert` makes a small randomly initialised BERT: the offline stand-in for a pretrained
encoder in tests and when no network is available.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import tensorflow as tf
from official.legacy.bert import configs as bert_configs
from official.nlp.tools import export_tfhub_lib

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ENCODER_DIR = "encoder"
PREPROCESS_DIR = "preprocess"


@dataclasses.dataclass(frozen=True)
class HubBertPaths:
    """Where a Hub-format BERT pair lives on disk."""

    root: Path

    @property
    def encoder(self) -> Path:
        return self.root / ENCODER_DIR

    @property
    def preprocess(self) -> Path:
        return self.root / PREPROCESS_DIR

    def exists(self) -> bool:
        return all((p / "saved_model.pb").exists() for p in (self.encoder, self.preprocess))


@dataclasses.dataclass(frozen=True)
class RandomBertSpec:
    """Size of a randomly initialised BERT."""

    num_layers: int = 2
    hidden_size: int = 64
    num_attention_heads: int = 2
    intermediate_size: int = 128
    max_position_embeddings: int = 512
    seq_length: int = 128
    seed: int = 0


def write_vocab(words: Iterable[str], path: Path) -> Path:
    """Writes a WordPiece vocab: the special tokens, then each distinct lower-cased word once."""
    seen: dict[str, None] = {token: None for token in SPECIAL_TOKENS}
    for word in words:
        seen.setdefault(word.lower(), None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{token}\n" for token in seen), encoding="utf-8")
    return path


def export_hub_bert(
    bert_config: bert_configs.BertConfig,
    checkpoint_writer,
    vocab_file: Path,
    output_root: Path,
    *,
    do_lower_case: bool,
    seq_length: int,
) -> HubBertPaths:
    """Exports an encoder + preprocessing SavedModel pair under `output_root` atomically.

    `checkpoint_writer(encoder, checkpoint_prefix)` fills the freshly built `BertEncoder` with weights
    and saves them with `tf.train.Checkpoint(encoder=encoder).save(...)`, returning the saved path;
    `export_tfhub_lib` restores them.
    """
    output_root = Path(output_root)
    output_root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_root.name}-", dir=output_root.parent))
    paths = HubBertPaths(staging)
    try:
        encoder = export_tfhub_lib.get_bert_encoder(bert_config)
        checkpoint_prefix = checkpoint_writer(encoder, str(staging / "checkpoint" / "ckpt"))
        export_tfhub_lib.export_model(
            str(paths.encoder),
            bert_config=bert_config,
            model_checkpoint_path=checkpoint_prefix,
            with_mlm=False,
            vocab_file=str(vocab_file),
            do_lower_case=do_lower_case,
        )
        export_tfhub_lib.export_preprocessing(
            str(paths.preprocess),
            vocab_file=str(vocab_file),
            do_lower_case=do_lower_case,
            tokenize_with_offsets=False,
            default_seq_length=seq_length,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging / "checkpoint")
    if output_root.exists():
        shutil.rmtree(output_root)
    os.replace(staging, output_root)
    return HubBertPaths(output_root)


def build_random_bert(vocab_file: Path, output_root: Path, spec: RandomBertSpec = RandomBertSpec()) -> HubBertPaths:
    """Builds a small randomly initialised Hub-format BERT over `vocab_file` (uncased)."""
    vocab_size = sum(1 for line in Path(vocab_file).read_text(encoding="utf-8").splitlines() if line)
    bert_config = bert_configs.BertConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        type_vocab_size=2,
    )

    def write_random_checkpoint(encoder, prefix: str) -> str:
        return tf.train.Checkpoint(encoder=encoder).save(prefix)

    tf.keras.utils.set_random_seed(spec.seed)

    return export_hub_bert(
        bert_config, write_random_checkpoint, Path(vocab_file), Path(output_root),
        do_lower_case=True, seq_length=spec.seq_length,
    )
