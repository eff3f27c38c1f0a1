"""Warm start on a new span of real reviews: accuracy against training steps, from the served model or from
the pretrained encoder.

    .venv/bin/python -m bench.warm_start [--span-reviews 6000] [--eval-reviews 2000] [--first-steps 200]
        [--steps 100] [--eval-every 25]

Three disjoint sets of real IMDB reviews from the train archive (`../shared/data/aclImdb_train.tar.gz`),
half positive each: span 1, span 2 and span 2's eval set. First a model is trained on span 1 from the
pretrained encoder (the offline MiniLM, `--first-steps` steps at `--learning-rate`) and exported, as the
Pusher would serve it. Then span 2 is trained `--steps` steps two ways, both scored on span 2's eval set
every `--eval-every` steps (step 0 included):
- warm: `modules.trainer.restore_served_weights` from that export, at TrainingConfig's
  `warm_start_learning_rate` (what `--warm-start` does);
- encoder: from the pretrained encoder again, at `--learning-rate` (what a run without it does).
Both at sequence length 128, batch 32, the precision `auto` picks, AdamW with 10% warm-up and linear decay
over `--steps`. Rows go to `<out>/warm_start.csv` as they are measured.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

from bench import reviews

BATCH_SIZE = 32
SEQ_LENGTH = 128
CSV_FIELDS = ("way", "step", "train_seconds", "eval_accuracy")


def train_and_score(
    classifier, train, evaluation, steps: int, eval_every: int, way: str, rows: list[dict], log_path: Path
) -> None:
    """Trains `steps` steps, scoring on `evaluation` at step 0 and every `eval_every` steps."""
    train_seconds = 0.0
    done = 0
    batches = iter(train)
    while True:
        _, accuracy = classifier.logit_model.evaluate(evaluation, verbose=0)
        row = {"way": way, "step": done, "train_seconds": round(train_seconds, 1), "eval_accuracy": round(accuracy, 4)}
        rows.append(row)
        with open(log_path, "a", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS).writerow(row)
        print(row, flush=True)
        if done >= steps:
            return
        chunk = min(eval_every, steps - done)
        started = time.perf_counter()
        for _ in range(chunk):
            classifier.logit_model.train_on_batch(*next(batches))
        train_seconds += time.perf_counter() - started
        done += chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tarball", type=Path, default=reviews.DEFAULT_TARBALL)
    parser.add_argument("--out", type=Path, default=Path("/tmp/imdb-bert-tfx-warm-start"))
    parser.add_argument("--span-reviews", type=int, default=6000)
    parser.add_argument("--eval-reviews", type=int, default=2000)
    parser.add_argument("--first-steps", type=int, default=200)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    args = parser.parse_args()

    import tensorflow as tf

    import modules  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
    from config import pipeline as configs
    from config.training import TrainingConfig
    from modules import hardware, trainer
    from modules import model as model_lib
    from runners import offline_assets

    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "warm_start.csv"
    with open(log_path, "w", newline="") as f:
        csv.DictWriter(f, CSV_FIELDS).writeheader()
    files = {}
    for name, count, skip in (
        ("span1", args.span_reviews, 0),
        ("span2", args.span_reviews, args.span_reviews),
        ("span2_eval", args.eval_reviews, 2 * args.span_reviews),
    ):
        texts, labels = reviews.real_reviews(args.tarball, count, skip=skip)
        files[name] = [reviews.write_examples(texts, labels, args.out / f"{name}.tfrecord.gz")]
    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    precision = hardware.resolve_precision("auto")
    print(f"CPU: {platform.processor() or platform.machine()}, precision {precision}", flush=True)

    def fresh(learning_rate: float, steps: int):
        tf.keras.utils.set_random_seed(42)
        config = TrainingConfig(
            str(bert.preprocess),
            str(bert.encoder),
            seq_length=SEQ_LENGTH,
            learning_rate=learning_rate,
            batch_size=BATCH_SIZE,
            precision=precision,
        )
        classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
        return classifier, config, steps

    def datasets(classifier, span: str):
        train = trainer.make_dataset(files[span], BATCH_SIZE, seed=42, preprocessor=classifier.preprocessor)
        evaluation = trainer.make_eval_dataset(
            files["span2_eval"], BATCH_SIZE, preprocessor=classifier.preprocessor, num_examples=args.eval_reviews
        )
        return train, evaluation

    rows: list[dict] = []
    served = args.out / "served" / "1"
    classifier, config, steps = fresh(args.learning_rate, args.first_steps)
    trainer.compile_classifier(classifier, config, steps)
    train_and_score(classifier, *datasets(classifier, "span1"), steps, steps, "span 1 (encoder)", rows, log_path)
    model_lib.export_serving_model(classifier, str(served))

    for way, learning_rate in (
        ("span 2 warm", TrainingConfig.warm_start_learning_rate),
        ("span 2 encoder", args.learning_rate),
    ):
        classifier, config, steps = fresh(learning_rate, args.steps)
        if way.endswith("warm"):
            trainer.restore_served_weights(classifier, str(served))
        trainer.compile_classifier(classifier, config, steps)
        train_and_score(classifier, *datasets(classifier, "span2"), steps, args.eval_every, way, rows, log_path)
    print(f"Rows in {log_path}")


if __name__ == "__main__":
    main()
