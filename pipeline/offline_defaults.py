"""The offline defaults: a synthetic aclImdb corpus and a small random Hub BERT, built once and cached.

They let the pipeline run end to end with no network. Each asset is keyed by the parameters it was
built from, so changing a size builds a new one instead of reusing a stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from absl import logging

from components import synthetic_corpus
from modules import hub_bert


def _key(*specs) -> str:
    payload = json.dumps([dataclasses.asdict(s) for s in specs], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def synthetic_corpus_dir(cache_dir: str, spec: synthetic_corpus.SyntheticCorpusSpec) -> str:
    """An aclImdb-layout folder of synthetic reviews, generated on first use."""
    root = Path(cache_dir) / f"synthetic_aclImdb-{_key(spec)}"
    if not (root / "README").exists():
        logging.info("Generating the synthetic offline corpus in %s", root)
        synthetic_corpus.write_synthetic_corpus(root, spec)
    return str(root)


def random_bert(cache_dir: str, spec: hub_bert.RandomBertSpec = hub_bert.RandomBertSpec()) -> hub_bert.HubBertPaths:
    """A small random Hub-format BERT whose vocab covers the synthetic corpus, built on first use."""
    paths = hub_bert.HubBertPaths(Path(cache_dir) / f"random_bert-{_key(spec)}")
    if not paths.exists():
        logging.info("Building the offline random BERT (%s) in %s", spec, paths.root)
        vocab = hub_bert.write_vocab(synthetic_corpus.LEXICON, Path(cache_dir) / "synthetic_vocab.txt")
        hub_bert.build_random_bert(vocab, paths.root, spec)
    return paths
