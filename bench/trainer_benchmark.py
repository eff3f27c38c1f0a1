"""Training throughput: the pipeline's Trainer against a plain Keras script written the tutorial's way.

    .venv/bin/python -m bench.trainer_benchmark [--encoder minilm|L4H512|L2H128] [--rounds 3] [--steps 8]

Both ways fine-tune the same encoder on the same reviews (real IMDB reviews from the shared tarball when it
is there, else the synthetic corpus) with batch 32, sequence length 128, AdamW from `create_optimizer`:
- tutorial: `hub.KerasLayer` preprocessor and encoder inside the model, float32, raw strings from memory;
- trainer: what `modules.trainer.run_fn` builds and feeds (`build_classifier` at the precision `auto`
  picks here, with the native encoder whose last layer computes only what `pooled_output` needs,
  `compile_classifier`, `make_dataset` tokenizing gzipped tf.Example TFRecords in tf.data).
The two are measured in alternating segments (A B A B ...) in one process, after one warm-up segment
each, so both see the same machine load; each segment's first step is left out of its timing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

SEQ_LENGTH = 128
BATCH_SIZE = 32
ENCODER_SHAPES = {"L4H512": (4, 512), "L2H128": (2, 128)}


class StepTimer:
    """Collects the wall time of steps 2..n of each `fit` call."""

    def __init__(self):
        import tensorflow as tf

        timer = self

        class Callback(tf.keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                timer.stamps.append(time.perf_counter())

        self.callback = Callback()
        self.stamps: list[float] = []

    def segment(self, fit) -> tuple[int, float]:
        self.stamps = []
        fit()
        return len(self.stamps) - 1, self.stamps[-1] - self.stamps[0]


def encoder_paths(name: str, workdir: Path):
    from config import pipeline as configs
    from modules import hub_bert
    from runners import offline_assets

    minilm = offline_assets.pretrained_minilm(configs.CACHE_DIR, SEQ_LENGTH)
    if name == "minilm":
        return minilm, "MiniLM L-6/H-384 (pretrained, offline default)"
    layers, hidden = ENCODER_SHAPES[name]
    vocab = next(minilm.preprocess.rglob("vocab.txt"))
    spec = hub_bert.RandomBertSpec(
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=hidden // 64,
        intermediate_size=4 * hidden,
        seq_length=SEQ_LENGTH,
    )
    return hub_bert.build_random_bert(vocab, workdir / name, spec), f"BERT L-{layers}/H-{hidden} (random weights)"


def tutorial_model(preprocess: str, encoder: str):
    """The tutorial's `build_classifier_model`, verbatim in substance."""
    import tensorflow as tf
    import tensorflow_hub as hub

    text_input = tf.keras.layers.Input(shape=(), dtype=tf.string, name="text")
    encoder_inputs = hub.KerasLayer(preprocess, name="preprocessing")(text_input)
    outputs = hub.KerasLayer(encoder, trainable=True, name="BERT_encoder")(encoder_inputs)
    net = tf.keras.layers.Dropout(0.1)(outputs["pooled_output"])
    net = tf.keras.layers.Dense(1, activation=None, name="classifier")(net)
    return tf.keras.Model(text_input, net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm", choices=("minilm", *ENCODER_SHAPES))
    parser.add_argument("--data", type=Path, default=None, help="aclImdb tarball (default: the shared one if present)")
    parser.add_argument("--rounds", type=int, default=3, help="measured A/B rounds")
    parser.add_argument("--steps", type=int, default=8, help="training steps per segment")
    parser.add_argument("--precision", default="auto", help="the trainer's precision (default: auto)")
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from official.nlp import optimization

    from bench import reviews
    from modules import hardware, trainer
    from modules import model as model_lib

    tarball = args.data or (reviews.DEFAULT_TARBALL if reviews.DEFAULT_TARBALL.exists() else None)
    count = BATCH_SIZE * args.steps * 4
    texts, labels = reviews.real_reviews(tarball, count) if tarball else reviews.synthetic_reviews(count)
    data_name = f"{count} real IMDB reviews" if tarball else f"{count} synthetic reviews"
    total_steps = args.steps * (args.rounds + 1)

    with tempfile.TemporaryDirectory() as tmp:
        bert, encoder_name = encoder_paths(args.encoder, Path(tmp))
        records = reviews.write_examples(texts, labels, Path(tmp) / "train.gz")

        tutorial = tutorial_model(str(bert.preprocess), str(bert.encoder))
        tutorial.compile(
            optimizer=optimization.create_optimizer(3e-5, total_steps, int(0.1 * total_steps), optimizer_type="adamw"),
            loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
        )
        tutorial_data = (
            tf.data.Dataset.from_tensor_slices((texts, [float(y) for y in labels]))
            .shuffle(len(texts), seed=0)
            .repeat()
            .batch(BATCH_SIZE)
            .prefetch(tf.data.AUTOTUNE)
        )

        precision = hardware.resolve_precision(args.precision)
        config = trainer.TrainingConfig(
            str(bert.preprocess), str(bert.encoder), seq_length=SEQ_LENGTH, batch_size=BATCH_SIZE, precision=precision
        )
        classifier = model_lib.build_classifier(trainer.classifier_spec(config), precision)
        trainer.compile_classifier(classifier, config, total_steps)
        encoder_kind = (
            "hub.KerasLayer"
            if any(isinstance(layer, hub.KerasLayer) for layer in classifier.logit_model.layers)
            else "native, output_range=1"
        )
        trainer_data = trainer.make_dataset([records], BATCH_SIZE, seed=0, preprocessor=classifier.preprocessor)

        timer = StepTimer()
        ways = {
            "tutorial (float32, hub.KerasLayer)": lambda: tutorial.fit(
                tutorial_data, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=[timer.callback]
            ),
            f"trainer ({precision}, {encoder_kind})": lambda: classifier.logit_model.fit(
                trainer_data, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=[timer.callback]
            ),
        }
        for name, fit in ways.items():
            print(f"warm-up: {name}", flush=True)
            timer.segment(fit)
        totals = {name: [0, 0.0] for name in ways}
        for round_number in range(1, args.rounds + 1):
            for name, fit in ways.items():
                steps, seconds = timer.segment(fit)
                totals[name][0] += steps
                totals[name][1] += seconds
                print(f"round {round_number}: {name}: {steps * BATCH_SIZE / seconds:.1f} examples/s", flush=True)

    print(
        f"\nTraining throughput, {encoder_name}, batch {BATCH_SIZE} x seq {SEQ_LENGTH}, {data_name}, "
        f"{os.cpu_count()} CPU cores, {len(tf.config.list_physical_devices('GPU'))} GPU(s)"
    )
    print(f"{'way':<48} {'examples/s':>11}")
    rates = {}
    for name, (steps, seconds) in totals.items():
        rates[name] = steps * BATCH_SIZE / seconds
        print(f"{name:<48} {rates[name]:11.1f}")
    tutorial_rate, trainer_rate = rates.values()
    print(f"{'ratio trainer / tutorial':<48} {trainer_rate / tutorial_rate:11.2f}")


if __name__ == "__main__":
    main()
