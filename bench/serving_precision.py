"""Serving cost of a pushed model on whole reviews at the length it serves, in float32 (what the export serves)
and in bfloat16, beside the tutorial's model (128 tokens, float32); and whether bfloat16 keeps its answers.

    .venv/bin/python -m bench.serving_precision --model SERVING_DIR/VERSION --examples 'EVAL_SPLIT/*.gz'
        [--seq-length 512 --truncation head+tail] [--reviews 0] [--speed-reviews 256] [--single 100]

- speed: reviews/s at batch 32 over the eval split's first --speed-reviews reviews, in the records' order (as
  requests come), and batch-1 latency (p50, p99) over --single of them; the ways alternate in --rounds rounds;
- agreement: on --reviews eval reviews (0: all), the largest |probability difference| of bfloat16 against
  float32 and each way's accuracy against the labels (the tutorial's head is untrained: speed only).
The float32 way is the pushed SavedModel's `predict_text`; the bfloat16 way is its weights (restored as a warm
start restores them) in the Trainer's bfloat16 classifier, trimmed as the export trims. Prints a table; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a pushed version: SERVING_DIR/VERSION")
    parser.add_argument("--examples", required=True, help="eval split records, e.g. '.../Split-eval/*.gz'")
    parser.add_argument("--seq-length", type=int, default=512)
    parser.add_argument("--truncation", default="head+tail")
    parser.add_argument("--reviews", type=int, default=0, help="reviews of the agreement check (0: all)")
    parser.add_argument("--speed-reviews", type=int, default=256)
    parser.add_argument("--single", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from bench.trainer_benchmark import tutorial_model
    from config import pipeline as configs
    from modules import hardware, trainer
    from modules import model as model_lib
    from runners import offline_assets

    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    records = trainer.read_records([args.examples]).batch(512).map(trainer._parse_batch).unbatch()
    if args.reviews:
        records = records.take(args.reviews)
    pairs = [(text.decode("utf-8"), int(label)) for text, label in records.as_numpy_iterator()]
    texts, labels = [text for text, _ in pairs], np.array([label for _, label in pairs])

    served = tf.saved_model.load(args.model).signatures[model_lib.TEXT_SIGNATURE]
    spec = model_lib.ClassifierSpec(str(bert.preprocess), str(bert.encoder), args.seq_length, 0.1, args.truncation)
    bf16 = model_lib.build_classifier(spec, hardware.MIXED_BFLOAT16)
    trainer.restore_served_weights(bf16, args.model)
    tutorial = tutorial_model(str(bert.preprocess), str(bert.encoder))
    text_spec = [tf.TensorSpec([None], tf.string)]
    ways = {
        f"pushed model, float32 (seq {args.seq_length})": lambda batch: served(text=batch)["probability"],
        f"pushed model, bfloat16 (seq {args.seq_length})": tf.function(
            lambda batch: tf.sigmoid(
                bf16.logit_model(model_lib.trim_padding(bf16.preprocessor(batch)), training=False)
            ),
            input_signature=text_spec,
        ),
        "tutorial's model, float32 (seq 128, untrained head)": tf.function(
            lambda batch: tf.sigmoid(tutorial(batch, training=False)), input_signature=text_spec
        ),
    }

    def probabilities(call, inputs: list[str], batch_size: int = 32) -> np.ndarray:
        batches = [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]
        return np.concatenate([call(tf.constant(batch)).numpy().reshape(-1) for batch in batches])

    speed_texts = texts[: args.speed_reviews]
    throughput: dict[str, list[float]] = {name: [] for name in ways}
    latencies: dict[str, list[float]] = {name: [] for name in ways}
    for call in ways.values():  # warm-up: traces every shape class once
        probabilities(call, speed_texts[:64])
        call(tf.constant(speed_texts[:1]))
    for _ in range(args.rounds):
        for name, call in ways.items():
            started = time.perf_counter()
            probabilities(call, speed_texts)
            throughput[name].append(len(speed_texts) / (time.perf_counter() - started))
            for text in speed_texts[: args.single // args.rounds]:
                started = time.perf_counter()
                call(tf.constant([text])).numpy()
                latencies[name].append(1000 * (time.perf_counter() - started))

    print(f"{machine.cores_and_cpu()}; {len(speed_texts)} eval reviews for speed, {args.rounds} rounds\n")
    print("| way | p50 ms (b=1) | p99 ms (b=1) | reviews/s (b=32) |\n| --- | ---: | ---: | ---: |")
    for name in ways:
        p50, p99 = np.percentile(latencies[name], 50), np.percentile(latencies[name], 99)
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {statistics.median(throughput[name]):.1f} |", flush=True)

    float32_way, bf16_way = list(ways)[:2]
    exact, reduced = probabilities(ways[float32_way], texts), probabilities(ways[bf16_way], texts)
    accuracy = lambda p: float(np.mean((p >= 0.5) == labels))
    print(
        f"\nAgreement on {len(texts)} eval reviews: largest |bfloat16 - float32| probability "
        f"{np.max(np.abs(reduced - exact)):.2e} (mean {np.mean(np.abs(reduced - exact)):.2e}); "
        f"{int(np.sum((reduced >= 0.5) != (exact >= 0.5)))} answers differ; accuracy float32 {accuracy(exact):.4f}, "
        f"bfloat16 {accuracy(reduced):.4f}"
    )


if __name__ == "__main__":
    main()
