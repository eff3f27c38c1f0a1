"""Time to accuracy on the real corpus, the way MLPerf Training times BERT: wall time until a target quality.

    .venv/bin/python -m bench.time_to_accuracy [--ways tutorial,trainer] [--target 0.85] [--max-steps 1250]

Both ways fine-tune the same encoder (default: the offline MiniLM) on the train split of the real train
archive (`../shared/data/aclImdb_train.tar.gz`) as ImdbExampleGen writes it, and are scored on its eval split
(about 5,000 reviews) every `--eval-every` steps:
- tutorial: the recipe of "Classify text with BERT": `text_dataset_from_directory` over the extracted review
  files of the train split (it shuffles the file list), `hub.KerasLayer` preprocessor and encoder, float32,
  sequence length 128, batch 32, AdamW 3e-5 with 10% warm-up; scored on the eval split's raw files;
- trainer: what `modules.trainer.run_fn` builds and feeds (`build_classifier` at the `--precision` `auto`
  picks here, `compile_classifier`, `make_dataset` over the split's TFRecords, length-bucketed batches),
  with the `--seq-length`, `--truncation`, `--learning-rate` and `--attention-dropout-rate` given; scored on the
  split's TFRecords in length-grouped batches (`make_eval_dataset`, as the Trainer validates).
Both use the same learning-rate schedule over `--schedule-steps` (default `--max-steps`). Training time
counts the optimizer steps only (from the first batch of each interval to its last); evaluation is timed
apart. Each way stops when it first reaches `--target`, or runs on to `--max-steps` if named in `--full`.
Every evaluation is appended to `<out>/time_to_accuracy.csv` as it happens, and the plot
`<out>/time_to_accuracy.png` (eval accuracy against training minutes) is redrawn after each.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

from bench import machine, reviews
from modules import figures

BATCH_SIZE = 32
TUTORIAL_SEQ_LENGTH = 128
CSV_FIELDS = ("way", "step", "examples", "train_seconds", "eval_seconds", "eval_accuracy", "eval_loss")


def prepare_data(tarball: Path, workdir: Path):
    """Runs ImdbExampleGen's executor on the archive (train 4 : eval 1, no test split) and lays out the
    tutorial's folders of the same reviews (symlinks). Returns (examples artifact, tutorial train dir,
    tutorial eval dir)."""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.ingestion import imdb_example_gen as gen
    from components.ingestion import imdb_source
    from config import pipeline as configs

    data_root = imdb_source.resolve(str(tarball), str(workdir / "downloads"))
    split_config = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in configs.TRAIN_SPLIT_BUCKETS.items()
        ]
    )
    examples = standard_artifacts.Examples()
    examples.uri = str(workdir / "examples")
    if not (workdir / "examples" / "Split-eval").exists():
        started = time.perf_counter()
        gen.Executor().Do(
            {},
            {gen.EXAMPLES_KEY: [examples]},
            {
                gen.SOURCE_KEY: data_root,
                gen.DOWNLOAD_DIR_KEY: str(workdir / "downloads"),
                gen.TRAIN_SPLIT_CONFIG_KEY: proto_utils.proto_to_json(split_config),
                gen.TEST_SPLIT_NAME_KEY: "",
            },
        )
        print(f"ImdbExampleGen: {time.perf_counter() - started:.0f} s", flush=True)
    examples.split_names = '["train", "eval"]'
    splits = gen.assign_splits(gen.list_review_files(data_root, "train"), [], split_config, "")
    folders = {}
    for split in ("train", "eval"):
        folder = workdir / f"tutorial_{split}"
        folders[split] = folder
        if folder.exists():
            continue
        for review in splits[split]:
            link = folder / review.label_dir / os.path.basename(review.path)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(review.path)
    return examples, folders["train"], folders["eval"]


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """`--data` and `--workdir`, what `prepare_data` reads and where it writes."""
    parser.add_argument("--data", type=Path, default=reviews.DEFAULT_TARBALL, help="aclImdb train tarball")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/imdb-time-to-accuracy"),
        help="the extracted corpus and its examples, reused between runs",
    )


def split_files(examples_uri: str, split: str) -> list[str]:
    """The record files of one split of the examples `prepare_data` writes."""
    return [os.path.join(examples_uri, f"Split-{split}", "*.gz")]


class Stopwatch:
    """Keras callback: training seconds (first to last batch of each interval) and evaluation per interval;
    stops training at the target unless told to run on."""

    def __init__(self, way: str, target: float, full: bool, log_path: Path, on_eval):
        import tensorflow as tf

        watch = self
        self.way, self.target, self.full, self.log_path, self.on_eval = way, target, full, log_path, on_eval
        self.train_seconds = 0.0
        self.reached: dict | None = None
        self.rows: list[dict] = []

        class Callback(tf.keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                watch.interval_start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                watch.last_batch_end = time.perf_counter()

            def on_test_begin(self, logs=None):
                watch.eval_start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                watch.train_seconds += watch.last_batch_end - watch.interval_start
                steps = (epoch + 1) * self.params["steps"]
                row = dict(
                    way=watch.way,
                    step=steps,
                    examples=steps * BATCH_SIZE,
                    train_seconds=round(watch.train_seconds, 1),
                    eval_seconds=round(time.perf_counter() - watch.eval_start, 1),
                    eval_accuracy=round(logs["val_binary_accuracy"], 4),
                    eval_loss=round(logs["val_loss"], 4),
                )
                watch.record(row)
                if watch.reached is None and row["eval_accuracy"] >= watch.target:
                    watch.reached = row
                    if not watch.full:
                        self.model.stop_training = True

        self.callback = Callback()

    def record(self, row: dict) -> None:
        self.rows.append(row)
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(
            f"{row['way']}: step {row['step']}, {row['train_seconds'] / 60:.1f} training minutes, "
            f"eval accuracy {row['eval_accuracy']:.4f} ({row['eval_seconds']:.0f} s to evaluate)",
            flush=True,
        )
        self.on_eval()


def create_optimizer(learning_rate: float, schedule_steps: int):
    from official.nlp import optimization

    return optimization.create_optimizer(
        init_lr=learning_rate,
        num_train_steps=schedule_steps,
        num_warmup_steps=int(0.1 * schedule_steps),
        optimizer_type="adamw",
    )


def tutorial_way(bert, train_dir: Path, eval_dir: Path, args):
    """The tutorial's model and data, verbatim in substance."""
    import tensorflow as tf
    import tensorflow_hub as hub

    from bench.trainer_benchmark import tutorial_model

    tf.keras.utils.set_random_seed(args.seed)
    train = (
        tf.keras.utils.text_dataset_from_directory(str(train_dir), batch_size=BATCH_SIZE, seed=args.seed)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    evaluation = tf.keras.utils.text_dataset_from_directory(str(eval_dir), batch_size=BATCH_SIZE, shuffle=False)
    model = tutorial_model(str(bert.preprocess), str(bert.encoder))
    model.compile(
        optimizer=create_optimizer(3e-5, args.schedule_steps),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    del hub
    return model, train, evaluation.cache(), None


def trainer_way(bert, examples, args):
    import tensorflow as tf

    from modules import hardware, trainer
    from modules import model as model_lib

    tf.keras.utils.set_random_seed(args.seed)
    files = lambda split: split_files(examples.uri, split)
    precision = hardware.resolve_precision(args.precision)
    config = trainer.TrainingConfig(
        str(bert.preprocess),
        str(bert.encoder),
        seq_length=args.seq_length,
        truncation=args.truncation,
        learning_rate=args.learning_rate,
        batch_size=BATCH_SIZE,
        precision=precision,
        seed=args.seed,
        attention_dropout_rate=args.attention_dropout_rate,
    )
    classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
    trainer.compile_classifier(classifier, config, args.schedule_steps)
    train = trainer.make_dataset(files("train"), BATCH_SIZE, seed=args.seed, preprocessor=classifier.preprocessor)
    evaluation = trainer.make_eval_dataset(files("eval"), BATCH_SIZE, preprocessor=classifier.preprocessor)
    return classifier.logit_model, train, evaluation, None, precision


def plot_curves(
    rows: list[dict], series: str, minutes: str, xlabel: str, title: str, target: float, path: Path
) -> None:
    """Eval accuracy against `rows[minutes]`, a line per value of `rows[series]`, and the target; saved to `path`."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing to close

    figure = Figure(figsize=(8, 5))
    axes = figure.subplots()
    for name in dict.fromkeys(row[series] for row in rows):
        points = [row for row in rows if row[series] == name]
        axes.plot([float(p[minutes]) for p in points], [float(p["eval_accuracy"]) for p in points], "o-", label=name)
    axes.axhline(target, color="grey", linestyle="--", label=f"target {target}")
    axes.set(xlabel=xlabel, ylabel="accuracy on the eval split", title=title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.write_bytes(figures.png_bytes(figure))


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--ways", default="tutorial,trainer", help="comma-separated: tutorial, trainer")
    parser.add_argument(
        "--label", default="", help="added to the trainer way's name in the results, e.g. 'two-epoch schedule'"
    )
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--full", default="", help="comma-separated ways that run on to --max-steps after the target")
    parser.add_argument("--max-steps", type=int, default=1250, help="per way (1250 steps of 32: two epochs)")
    parser.add_argument("--schedule-steps", type=int, default=None, help="learning-rate schedule length")
    parser.add_argument("--eval-every", type=int, default=125)
    parser.add_argument("--seq-length", type=int, default=TUTORIAL_SEQ_LENGTH)
    parser.add_argument("--truncation", default="head")
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--attention-dropout-rate",
        type=float,
        default=None,
        help="the trainer way's attention dropout (default: the encoder's own)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.schedule_steps = args.schedule_steps or args.max_steps
    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    log_path, plot_path = args.out / "time_to_accuracy.csv", args.out / "time_to_accuracy.png"

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from config import pipeline as configs
    from runners import offline_assets

    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    examples, train_dir, eval_dir = prepare_data(args.data, args.workdir)
    print(
        f"{machine.cores_and_cpu()}, {len(tf.config.list_physical_devices('GPU'))} GPU(s); "
        f"MiniLM L-6/H-384; batch {BATCH_SIZE}; up to {args.max_steps} steps per way",
        flush=True,
    )

    summary = []
    for way in args.ways.split(","):
        if way == "tutorial":
            model, train, evaluation, eval_steps = tutorial_way(bert, train_dir, eval_dir, args)
            name = "tutorial (float32, hub.KerasLayer, seq 128, head)"
        else:
            model, train, evaluation, eval_steps, precision = trainer_way(bert, examples, args)
            name = (
                f"trainer ({precision}, seq {args.seq_length}, {args.truncation}, "
                f"lr {args.learning_rate:g}"
                + (
                    ""
                    if args.attention_dropout_rate is None
                    else f", attention dropout {args.attention_dropout_rate:g}"
                )
                + f"{', ' + args.label if args.label else ''})"
            )
        watch = Stopwatch(
            name,
            args.target,
            way in args.full.split(","),
            log_path,
            lambda: plot_curves(
                [{**row, "train_minutes": float(row["train_seconds"]) / 60} for row in read_rows(log_path)],
                "way",
                "train_minutes",
                "training minutes (evaluation excluded)",
                "Time to accuracy, real IMDB train archive",
                args.target,
                plot_path,
            ),
        )
        started = time.perf_counter()
        model.fit(
            train,
            epochs=math.ceil(args.max_steps / args.eval_every),
            steps_per_epoch=args.eval_every,
            validation_data=evaluation,
            validation_steps=eval_steps,
            callbacks=[watch.callback],
            verbose=2,
        )
        wall = time.perf_counter() - started
        best = max(watch.rows, key=lambda row: row["eval_accuracy"])
        summary.append((name, watch.reached, best, wall))
        del model, train, evaluation
        tf.keras.backend.clear_session()

    print(f"\nTime to eval accuracy {args.target} (training minutes, evaluation excluded):")
    for name, reached, best, wall in summary:
        when = (
            f"{reached['train_seconds'] / 60:.1f} min at step {reached['step']}"
            if reached
            else f"not reached in {args.max_steps} steps"
        )
        print(
            f"  {name}: {when}; best {best['eval_accuracy']:.4f} at step {best['step']}; "
            f"wall {wall / 60:.1f} min with evaluation"
        )
    if len(summary) == 2 and all(reached for _, reached, _, _ in summary):
        print(f"  ratio tutorial / trainer: {summary[0][1]['train_seconds'] / summary[1][1]['train_seconds']:.2f}")


if __name__ == "__main__":
    main()
