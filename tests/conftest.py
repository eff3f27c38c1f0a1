"""Shared fixtures: tiny offline assets built once per test session."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported

from pathlib import Path

import pytest

from components.synthetic_corpus import SyntheticCorpusSpec, write_synthetic_corpus
from modules import hub_bert
from components import synthetic_corpus

TINY_BERT = hub_bert.RandomBertSpec(num_layers=1, hidden_size=32, num_attention_heads=2,
                                    intermediate_size=64, seq_length=64)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> hub_bert.HubBertPaths:
    root = tmp_path_factory.mktemp("tiny_bert")
    vocab = hub_bert.write_vocab(synthetic_corpus.LEXICON, root / "vocab.txt")
    return hub_bert.build_random_bert(vocab, root / "bert", TINY_BERT)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "aclImdb"
    return write_synthetic_corpus(root, SyntheticCorpusSpec(reviews_per_label={"train": 120, "test": 30}))
