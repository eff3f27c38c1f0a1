"""Builds BERT models in TF Hub format (an encoder and a preprocessing SavedModel, exported with Model Garden's
`export_tfhub_lib`, so they load like tfhub.dev handles); `build_random_bert` makes a small random one, the
offline stand-in for a pretrained encoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import tensorflow as tf
from official.legacy.bert import configs as bert_configs
from official.nlp.tools import export_tfhub_lib

from modules import staging
from modules.encoders import HubBertPaths

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


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
    tokens = dict.fromkeys([*SPECIAL_TOKENS, *(word.lower() for word in words)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
    return path


def export_hub_bert(
    bert_config: bert_configs.BertConfig,
    vocab_file: Path,
    output_root: Path,
    *,
    do_lower_case: bool,
    seq_length: int,
    fill_weights: Callable[[tf.keras.Model], None] | None = None,
) -> HubBertPaths:
    """Exports an encoder + preprocessing SavedModel pair under `output_root` atomically; `fill_weights(encoder)`
    sets the new `BertEncoder`'s weights (left random without it)."""
    with staging.staged(output_root) as staged_root:
        paths = HubBertPaths(staged_root)
        encoder = export_tfhub_lib.get_bert_encoder(bert_config)
        if fill_weights is not None:
            fill_weights(encoder)
        checkpoint_prefix = tf.train.Checkpoint(encoder=encoder).save(str(staged_root.parent / "checkpoint" / "ckpt"))
        export_tfhub_lib.export_model(
            str(paths.encoder),
            bert_config=bert_config,
            with_mlm=False,
            model_checkpoint_path=checkpoint_prefix,
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
    return HubBertPaths(output_root)


def build_random_bert(vocab_file: Path, output_root: Path, spec: RandomBertSpec = RandomBertSpec()) -> HubBertPaths:
    """Builds a small randomly initialised Hub-format BERT over `vocab_file` (uncased)."""
    bert_config = bert_configs.BertConfig(
        vocab_size=sum(1 for line in Path(vocab_file).read_text(encoding="utf-8").splitlines() if line),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position_embeddings,
        type_vocab_size=2,
    )
    tf.keras.utils.set_random_seed(spec.seed)
    return export_hub_bert(
        bert_config, Path(vocab_file), Path(output_root), do_lower_case=True, seq_length=spec.seq_length
    )
