"""Inference speed: the pushed model's export against the tutorial's reloaded Keras model, and what
trimming padding and batching by length buy.

    .venv/bin/python -m bench.inference_benchmark [--encoder minilm|L4H512|L2H128] [--reviews 512]

All models share one encoder and classifier weights; inputs are real IMDB reviews (the shared tarball)
when present, else synthetic ones. Ways:
- tutorial: the tutorial's model (`hub.KerasLayer` preprocessor + encoder) saved with `model.save` and
  reloaded with `tf.saved_model.load`, called on a batch of strings, then `tf.sigmoid`;
- export, padded: this project's export with every batch padded to the sequence length;
- export (what the Trainer pushes): the export that trims each batch's shared padding;
- export + length-sorted batches: the same, fed reviews sorted by length (what `modules.predict` does).
Batch-1 latency (p50, p99) and batch-32 throughput are measured in alternating rounds in one process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

BATCH_SIZE = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm", choices=("minilm", "L4H512", "L2H128"))
    parser.add_argument("--reviews", type=int, default=256, help="reviews for throughput (and the parity check)")
    parser.add_argument("--single", type=int, default=100, help="batch-1 requests per way")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from bench import reviews
    from bench.trainer_benchmark import SEQ_LENGTH, encoder_paths, tutorial_model
    from modules import model as model_lib

    tarball = reviews.DEFAULT_TARBALL if reviews.DEFAULT_TARBALL.exists() else None
    texts = (reviews.real_reviews(tarball, args.reviews) if tarball else reviews.synthetic_reviews(args.reviews))[0]
    data_name = f"{len(texts)} real IMDB reviews" if tarball else f"{len(texts)} synthetic reviews"

    with tempfile.TemporaryDirectory() as tmp:
        bert, encoder_name = encoder_paths(args.encoder, Path(tmp))
        classifier = model_lib.build_classifier(
            model_lib.ClassifierSpec(str(bert.preprocess), str(bert.encoder), SEQ_LENGTH, dropout_rate=0.1)
        )
        head = classifier.logit_model.get_layer("classifier")
        head.set_weights([np.random.default_rng(0).normal(0, 0.5, w.shape).astype(w.dtype) for w in head.get_weights()])
        model_lib.export_serving_model(classifier, f"{tmp}/trimmed")
        model_lib.export_serving_model(classifier, f"{tmp}/padded", trim=False)
        tutorial = tutorial_model(str(bert.preprocess), str(bert.encoder))
        tutorial.get_layer("classifier").set_weights(head.get_weights())
        tutorial.save(f"{tmp}/tutorial", include_optimizer=False)

        reloaded = tf.saved_model.load(f"{tmp}/tutorial")
        trimmed = tf.saved_model.load(f"{tmp}/trimmed").signatures[model_lib.TEXT_SIGNATURE]
        padded = tf.saved_model.load(f"{tmp}/padded").signatures[model_lib.TEXT_SIGNATURE]
        calls = {
            "tutorial: reloaded Keras model": lambda batch: tf.sigmoid(reloaded(tf.constant(batch))),
            "export, padded to seq length": lambda batch: padded(text=tf.constant(batch)),
            "export, trimmed (pushed model)": lambda batch: trimmed(text=tf.constant(batch)),
            "export, trimmed + length-sorted": lambda batch: trimmed(text=tf.constant(batch)),
        }
        for call in calls.values():  # trace every batch shape once
            call(texts[:1]), call(texts[:BATCH_SIZE])
        input_sets = {"full reviews": texts, "first sentences": [first_sentence(t) for t in texts]}
        references = {
            "padded export": lambda batch: padded(text=batch)["probability"],
            "tutorial model": lambda batch: tf.sigmoid(reloaded(batch)),
        }
        tables = {
            name: measure(calls, inputs, args.single, args.rounds, trimmed, references)
            for name, inputs in input_sets.items()
        }

    for set_name, (latencies, rates, parity) in tables.items():
        print(
            f"\nInference on {set_name} ({data_name}), {encoder_name}, seq length {SEQ_LENGTH}, "
            f"{os.cpu_count()} CPU cores"
        )
        print(f"{'way':<36} {'p50 ms (b=1)':>13} {'p99 ms (b=1)':>13} {'reviews/s (b=32)':>17}")
        for name in calls:
            p50, p99 = np.percentile(np.array(latencies[name]) * 1e3, [50, 99])
            print(f"{name:<36} {p50:13.1f} {p99:13.1f} {rates[name]:17.1f}")
        base = rates["tutorial: reloaded Keras model"]
        print(
            f"throughput ratio pushed model / tutorial: {rates['export, trimmed (pushed model)'] / base:.2f} "
            f"(length-sorted: {rates['export, trimmed + length-sorted'] / base:.2f}); "
            "max |probability difference| of the pushed model vs "
            + ", ".join(f"{reference}: {difference:.1e}" for reference, difference in parity.items())
        )


def first_sentence(review: str) -> str:
    return review.replace("<br />", " ").split(". ")[0].strip() + "."


def measure(calls: dict, texts: list[str], single: int, rounds: int, trimmed, references: dict):
    """Batch-1 latencies and batch-32 throughput of each way, in alternating rounds; and the largest
    probability difference between the pushed (trimmed) export and each reference (random and
    length-sorted batches)."""
    import numpy as np
    import tensorflow as tf

    def probabilities(call, batch_texts):
        return np.concatenate(
            [
                np.asarray(call(tf.constant(batch_texts[i : i + BATCH_SIZE]))).ravel()
                for i in range(0, len(batch_texts), BATCH_SIZE)
            ]
        )

    by_length = sorted(texts, key=len)
    orders = (texts, by_length)
    pushed = [probabilities(lambda batch: trimmed(text=batch)["probability"], order) for order in orders]
    parity = {
        name: max(
            float(np.abs(expected - probabilities(reference, order)).max()) for expected, order in zip(pushed, orders)
        )
        for name, reference in references.items()
    }
    latencies = {name: [] for name in calls}
    totals = {name: [0, 0.0] for name in calls}
    singles = texts[:: max(1, len(texts) // single)][:single]
    for round_number in range(rounds):
        for name, call in calls.items():
            for text in singles[round_number::rounds]:
                started = time.perf_counter()
                call([text])
                latencies[name].append(time.perf_counter() - started)
            inputs = by_length if "length-sorted" in name else texts
            started = time.perf_counter()
            for i in range(0, len(inputs), BATCH_SIZE):
                call(inputs[i : i + BATCH_SIZE])
            totals[name][0] += len(inputs)
            totals[name][1] += time.perf_counter() - started
        print(f"round {round_number + 1} done", flush=True)
    return latencies, {name: count / seconds for name, (count, seconds) in totals.items()}, parity


if __name__ == "__main__":
    main()
