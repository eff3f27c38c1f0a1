"""Running ImdbExampleGen's executor and reading what it wrote: shared by the tests that need examples."""

from pathlib import Path

import tensorflow as tf
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.ingestion import imdb_example_gen as gen


def run_executor(
    data_root: Path | str,
    output_dir: Path,
    buckets=(("train", 4), ("eval", 1)),
    test_split: str = "test",
    range_config=None,
) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(output_dir)
    split_config = example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in buckets]
    )
    gen.Executor().Do(
        {},
        {gen.EXAMPLES_KEY: [examples]},
        {
            gen.SOURCE_KEY: str(data_root),
            gen.DOWNLOAD_DIR_KEY: str(output_dir.parent / "downloads"),
            gen.TRAIN_SPLIT_CONFIG_KEY: proto_utils.proto_to_json(split_config),
            gen.TEST_SPLIT_NAME_KEY: test_split,
            gen.RANGE_CONFIG_KEY: proto_utils.proto_to_json(range_config) if range_config else None,
        },
    )
    return examples


def read_split(examples: standard_artifacts.Examples, split: str) -> list[dict]:
    files = tf.io.gfile.glob(artifact_utils.get_split_uri([examples], split) + "/*.gz")
    assert files, f"no files written for split {split}"
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        f = example.features.feature
        rows.append(
            dict(
                text=f["text"].bytes_list.value[0].decode(),
                label=f["label"].int64_list.value[0],
                rating=f["rating"].int64_list.value[0],
                review_id=f["review_id"].bytes_list.value[0].decode(),
                length_bucket=f["length_bucket"].bytes_list.value[0].decode(),
            )
        )
    return rows


def label_mean_of_prefix(examples: standard_artifacts.Examples, split: str) -> tuple[float, int, list[str]]:
    """Label mean of the first 1,000 records the Trainer reads from a split (at most half the split, so a
    label-sorted split cannot pass), with the prefix size and every review id in reading order."""
    from modules import trainer

    records = trainer.read_records([artifact_utils.get_split_uri([examples], split) + "/*.gz"])
    rows = [tf.train.Example.FromString(record.numpy()).features.feature for record in records]
    prefix = rows[: min(1000, len(rows) // 2)]
    return (
        sum(row["label"].int64_list.value[0] for row in prefix) / len(prefix),
        len(prefix),
        [row["review_id"].bytes_list.value[0].decode() for row in rows],
    )
