"""Classifies reviews with a pushed model: a library (`classify`) and a command line.

    python -m modules.predict "What a great film." "Dreadful."      # sentences as arguments
    python -m modules.predict --file reviews.txt --format jsonl      # one review per line
    cat reviews.txt | python -m modules.predict                      # stdin
    python -m modules.predict --model tfx_output/serving_model/imdb-bert-tfx/1764000000 "Great."

Uses the newest version under the local runner's serving directory unless `--model` names one.
Large inputs go in batches, sorted by length so each batch carries little padding (the model trims
padding per batch), with a progress bar on stderr; results come out in input order.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from typing import Iterable, TextIO

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the BERT preprocessor uses)

from modules import model as model_lib
from modules import serving_versions

DEFAULT_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Prediction:
    text: str
    probability: float
    label: str


class PredictError(Exception):
    """A problem with the model or the input, with a message that says what to do."""


def latest_pushed_model(serving_model_dir: str) -> str:
    """The newest `<serving_model_dir>/<version>/` SavedModel; versions are increasing integers."""
    versions = serving_versions.versions(serving_model_dir)
    if not versions:
        raise FileNotFoundError(
            f"{serving_model_dir}: no pushed model version; run the pipeline until a model is blessed.")
    return os.path.join(serving_model_dir, str(versions[-1]))


def latest_pushed_model_or_none(serving_model_dir: str) -> str | None:
    try:
        return latest_pushed_model(serving_model_dir)
    except FileNotFoundError:
        return None


def load_text_signature(model_dir: str):
    """The SavedModel's `predict_text` signature, or a PredictError saying why it cannot be used."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise PredictError(f"{model_dir}: no SavedModel here (no saved_model.pb). Pass --model with a pushed "
                           f"model version folder, or run the pipeline until a model is blessed and pushed.")
    signatures = tf.saved_model.load(model_dir).signatures
    signature = signatures.get(model_lib.TEXT_SIGNATURE)
    if signature is None:
        raise PredictError(f"{model_dir}: no '{model_lib.TEXT_SIGNATURE}' signature (it has {sorted(signatures)}); "
                           f"export the model with modules.model.export_serving_model.")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if (set(inputs) != {model_lib.TEXT_INPUT} or inputs[model_lib.TEXT_INPUT].dtype != tf.string
            or not {model_lib.PROBABILITY_OUTPUT, model_lib.CLASS_NAME_OUTPUT} <= set(outputs)):
        raise PredictError(f"{model_dir}: '{model_lib.TEXT_SIGNATURE}' takes {inputs} and returns {sorted(outputs)}; "
                           f"expected a string input '{model_lib.TEXT_INPUT}' and outputs "
                           f"'{model_lib.PROBABILITY_OUTPUT}' and '{model_lib.CLASS_NAME_OUTPUT}'.")
    return signature


def classify(model_dir: str, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE,
             progress: bool = False) -> list[Prediction]:
    """Runs the SavedModel's `predict_text` signature on `texts`, in length-sorted batches; returns the
    predictions in input order."""
    signature = load_text_signature(model_dir)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    bar = tf.keras.utils.Progbar(len(texts), unit_name="review") if progress else None
    results: list[Prediction | None] = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        outputs = signature(**{model_lib.TEXT_INPUT: tf.constant([texts[i] for i in batch])})
        probabilities = outputs[model_lib.PROBABILITY_OUTPUT].numpy().reshape(-1)
        labels = outputs[model_lib.CLASS_NAME_OUTPUT].numpy().reshape(-1)
        for i, probability, label in zip(batch, probabilities, labels):
            results[i] = Prediction(texts[i], float(probability), label.decode())
        if bar is not None:
            bar.add(len(batch))
    return results


def read_texts(sentences: list[str], file: str | None, stdin: TextIO) -> list[str]:
    """The reviews to classify: the arguments, else the file's lines, else stdin's lines (blank lines
    are skipped)."""
    if sentences and file:
        raise PredictError("give sentences as arguments or --file, not both")
    if sentences:
        lines: Iterable[str] = sentences
        origin = "the arguments"
    elif file:
        try:
            with open(file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise PredictError(f"{file}: no such file; --file takes a text file with one review per line") from None
        except UnicodeDecodeError as error:
            raise PredictError(f"{file}: not UTF-8 text ({error}); re-encode it as UTF-8") from None
        origin = file
    else:
        if stdin.isatty():
            raise PredictError("no input: give sentences as arguments, --file PATH, or pipe reviews into stdin")
        lines = stdin.read().splitlines()
        origin = "stdin"
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise PredictError(f"no reviews in {origin}: it is empty or only blank lines")
    return texts


def format_table(predictions: list[Prediction], width: int = 80) -> str:
    rows = [f"{'probability':>11}  {'label':<8}  text"]
    for p in predictions:
        text = p.text if len(p.text) <= width else p.text[:width - 3] + "..."
        rows.append(f"{p.probability:11.4f}  {p.label:<8}  {text}")
    return "\n".join(rows)


def format_jsonl(predictions: list[Prediction]) -> str:
    return "\n".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) for p in predictions)


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    from pipeline import configs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*", help="reviews to classify")
    parser.add_argument("--file", help="text file with one review per line")
    parser.add_argument("--model", help="SavedModel folder (default: newest version under "
                                        f"{configs.serving_model_dir(configs.OUTPUT_DIR)})")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)
    try:
        texts = read_texts(args.sentences, args.file, stdin)
        model_dir = args.model
        if model_dir is None:
            try:
                model_dir = latest_pushed_model(configs.serving_model_dir(configs.OUTPUT_DIR))
            except FileNotFoundError as error:
                raise PredictError(f"{error} Or pass --model DIR.") from None
        with contextlib.redirect_stdout(sys.stderr):  # the progress bar; stdout carries only the results
            predictions = classify(model_dir, texts, args.batch_size, progress=len(texts) > args.batch_size)
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(predictions) if args.format == "table" else format_jsonl(predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
