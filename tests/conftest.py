"""Shared fixtures: tiny offline assets built once per test session."""

from pathlib import Path

import pytest

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from components.ingestion import synthetic_corpus
from components.ingestion.synthetic_corpus import SyntheticCorpusSpec, write_synthetic_corpus
from modules import hub_bert
from tests.support.tiny_assets import TINY_BERT


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> hub_bert.HubBertPaths:
    root = tmp_path_factory.mktemp("tiny_bert")
    vocab = hub_bert.write_vocab(synthetic_corpus.LEXICON, root / "vocab.txt")
    return hub_bert.build_random_bert(vocab, root / "bert", TINY_BERT)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "aclImdb"
    return write_synthetic_corpus(root, SyntheticCorpusSpec(reviews_per_label={"train": 120, "test": 30}))
