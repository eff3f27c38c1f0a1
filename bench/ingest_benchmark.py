"""Ingestion benchmark: the real IMDB train reviews, tarball to TFRecords, against the tutorial's reader.

    .venv/bin/python -m bench.ingest_benchmark [--archive ../shared/data/aclImdb_train.tar.gz]

Measures, on the same archive and machine:
1. the pipeline's way: ImdbExampleGen in a one-component LocalDagRunner pipeline (Beam DirectRunner),
   from the tarball (checksum, safe extraction) to gzipped tf.Example TFRecords, train/eval split;
2. the tutorial's way: `tf.keras.utils.text_dataset_from_directory` over the extracted folder, one
   pass (the tutorial's own extraction, `tf.keras.utils.get_file(..., untar=True)`, is timed apart).
Prints wall times and reviews/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = PROJECT_ROOT.parent / "shared" / "data" / "aclImdb_train.tar.gz"


def count_records(pattern: str) -> int:
    import tensorflow as tf

    files = tf.io.gfile.glob(pattern)
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def pipeline_ingest(archive: Path, work: Path, beam_args: list[str]) -> tuple[float, dict[str, int]]:
    from absl import logging
    from tfx import v1 as tfx

    from components.ingestion.imdb_example_gen import ImdbExampleGen
    from config import pipeline as configs
    from pipeline.pipeline import train_split_config

    logging.set_verbosity(logging.WARNING)
    example_gen = ImdbExampleGen(
        source=str(archive),
        download_dir=str(work / "cache"),
        train_split_config=train_split_config(configs.TRAIN_SPLIT_BUCKETS),
        test_split_name="",
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest-bench",
        pipeline_root=str(work / "root"),
        components=[example_gen],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(work / "metadata.db")
        ),
        beam_pipeline_args=beam_args,
    )
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    elapsed = time.perf_counter() - started
    examples_dir = next((work / "root" / "ImdbExampleGen" / "examples").iterdir())
    counts = {split: count_records(str(examples_dir / f"Split-{split}" / "*.gz")) for split in ("train", "eval")}
    return elapsed, counts


def tutorial_read(archive: Path, work: Path) -> tuple[float, float, int]:
    import tensorflow as tf

    started = time.perf_counter()
    with tarfile.open(archive) as tar:
        tar.extractall(work / "tutorial", filter="data")
    extract_seconds = time.perf_counter() - started
    train_dir = work / "tutorial" / "aclImdb" / "train"
    shutil.rmtree(train_dir / "unsup", ignore_errors=True)
    started = time.perf_counter()
    dataset = tf.keras.utils.text_dataset_from_directory(str(train_dir), batch_size=32, seed=42)
    reviews = sum(int(tf.shape(labels)[0]) for _, labels in dataset)
    return extract_seconds, time.perf_counter() - started, reviews


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--beam-arg", action="append", default=[], help="e.g. --beam-arg=--direct_num_workers=2")
    args = parser.parse_args()
    if not args.archive.exists():
        print(f"SKIPPED: {args.archive} not found (the real IMDB train split is not part of the project).")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pipeline_seconds, counts = pipeline_ingest(args.archive, work / "pipeline", args.beam_arg)
        extract_seconds, read_seconds, tutorial_reviews = tutorial_read(args.archive, work)
    reviews = sum(counts.values())
    print(f"\nIngestion of {args.archive.name} ({args.archive.stat().st_size / 1e6:.1f} MB), {os.cpu_count()} cores")
    print(f"{'way':<58} {'wall s':>8} {'reviews':>8} {'reviews/s':>10}")
    print(
        f"{'pipeline: ImdbExampleGen, tarball -> TFRecords (' + ' '.join(args.beam_arg or ['DirectRunner']) + ')':<58} "
        f"{pipeline_seconds:8.1f} {reviews:8d} {reviews / pipeline_seconds:10.0f}"
    )
    print(f"{'tutorial: extract tarball (tarfile)':<58} {extract_seconds:8.1f}")
    print(
        f"{'tutorial: text_dataset_from_directory, one pass':<58} {read_seconds:8.1f} {tutorial_reviews:8d} "
        f"{tutorial_reviews / read_seconds:10.0f}"
    )
    print(
        f"{'tutorial: extract + one pass':<58} {extract_seconds + read_seconds:8.1f} {tutorial_reviews:8d} "
        f"{tutorial_reviews / (extract_seconds + read_seconds):10.0f}"
    )
    print(f"splits: {counts}")


if __name__ == "__main__":
    main()
