"""Does mixed_bfloat16 training keep accuracy? Trains the pipeline's Trainer (`modules.trainer.run_fn`)
twice on the same real IMDB reviews, in float32 and in mixed_bfloat16, and scores both exported models
on a disjoint slice of held-out reviews.

    .venv/bin/python -m bench.precision_accuracy [--train 3200] [--heldout 4000] [--epochs 2]

Needs the aclImdb train tarball (default: ../shared/data/aclImdb_train.tar.gz). Uses the offline default
encoder (pretrained MiniLM). Slices (disjoint): train, a small validation set for the Trainer, held-out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

VALIDATION_REVIEWS = 320


def main() -> None:
    from bench import reviews

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=reviews.DEFAULT_TARBALL)
    parser.add_argument("--train", type=int, default=3200, help="training reviews")
    parser.add_argument("--heldout", type=int, default=4000, help="held-out reviews scored")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    from absl import logging
    from tfx.components.trainer.fn_args_utils import FnArgs

    from config import pipeline as configs
    from modules import hardware, trainer
    from modules import model as model_lib
    from runners import offline_assets

    logging.set_verbosity(logging.INFO)
    train = reviews.real_reviews(args.data, args.train)
    validation = reviews.real_reviews(args.data, VALIDATION_REVIEWS, skip=args.train)
    heldout_texts, heldout_labels = reviews.real_reviews(args.data, args.heldout, skip=args.train + VALIDATION_REVIEWS)
    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        train_file = reviews.write_examples(*train, Path(tmp) / "train.gz")
        validation_file = reviews.write_examples(*validation, Path(tmp) / "validation.gz")
        for precision in (hardware.FLOAT32, hardware.MIXED_BFLOAT16):
            run_dir = Path(tmp) / precision
            started = time.perf_counter()
            trainer.run_fn(
                FnArgs(
                    train_files=[train_file],
                    eval_files=[validation_file],
                    train_steps=None,
                    eval_steps=None,
                    model_run_dir=str(run_dir / "model_run"),
                    serving_model_dir=str(run_dir / "serving"),
                    custom_config=dict(
                        preprocess_handle=str(bert.preprocess),
                        encoder_handle=str(bert.encoder),
                        epochs=args.epochs,
                        precision=precision,
                        backup_root=str(run_dir / "backup"),
                    ),
                )
            )
            train_seconds = time.perf_counter() - started
            predict = tf.saved_model.load(str(run_dir / "serving")).signatures[model_lib.TEXT_SIGNATURE]
            probabilities = np.concatenate(
                [
                    predict(text=tf.constant(heldout_texts[i : i + 64]))[model_lib.PROBABILITY_OUTPUT].numpy().ravel()
                    for i in range(0, len(heldout_texts), 64)
                ]
            )
            accuracy = float(np.mean((probabilities >= 0.5) == np.array(heldout_labels)))
            results[precision] = (accuracy, args.epochs * args.train / train_seconds)
            print(f"{precision}: held-out accuracy {accuracy:.4f}", flush=True)

    print(
        f"\nMiniLM fine-tuned by modules.trainer.run_fn on {args.train} real reviews x {args.epochs} epochs, "
        f"scored on {args.heldout} disjoint held-out reviews through the exported model"
    )
    print(f"{'precision':<16} {'held-out accuracy':>18} {'train examples/s (incl. build, validation)':>44}")
    for precision, (accuracy, rate) in results.items():
        print(f"{precision:<16} {accuracy:18.4f} {rate:44.1f}")
    difference = results[hardware.MIXED_BFLOAT16][0] - results[hardware.FLOAT32][0]
    standard_error = np.sqrt(2 * 0.25 / args.heldout)
    print(
        f"accuracy difference bf16 - f32: {100 * difference:+.2f} points "
        f"(binomial standard error of a difference at this size: about {100 * standard_error:.1f} points at most)"
    )


if __name__ == "__main__":
    main()
