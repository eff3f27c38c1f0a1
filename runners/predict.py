"""The predict command: classifies reviews with a pushed model (`modules.predict`).

    python -m runners.predict "What a great film." "Dreadful."      # sentences as arguments
    python -m runners.predict --file reviews.txt --format jsonl      # one review per line
    cat reviews.txt | python -m runners.predict                      # stdin
    python -m runners.predict --model tfx_output/serving_model/imdb-bert-tfx/1764000000 "Great."

Uses the served version (the highest) under the local runner's serving directory unless `--model` names one. Large
inputs
go in length-sorted batches, with a progress bar on stderr; results come out in input order. The input is read and
checked before TensorFlow loads; TensorFlow's own lines go to a log file (PREDICT_LOG), never to the console.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING, TextIO

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

if TYPE_CHECKING:  # modules.predict loads TensorFlow: imported only where a prediction is made
    from modules.predict import Prediction
from modules import serving_versions
from pipeline import configs
from runners import console

PREDICT_LOG = os.path.join(tempfile.gettempdir(), "imdb-bert-tfx-predict.log")  # the newest command's


class InputError(ValueError):
    """No reviews to classify, or a file that cannot be read; the message says what to give instead."""


def read_texts(sentences: list[str], file: str | None, stdin: TextIO) -> list[str]:
    """The reviews to classify: the arguments, else the file's lines, else stdin's (blank lines skipped)."""
    if sentences and file:
        raise InputError("give sentences as arguments or --file, not both")
    if sentences:
        lines, origin = sentences, "the arguments"
    elif file:
        try:
            with open(file, encoding="utf-8") as f:
                lines, origin = f.read().splitlines(), file
        except FileNotFoundError:
            raise InputError(f"{file}: no such file; --file takes a text file with one review per line") from None
        except UnicodeDecodeError as error:
            raise InputError(f"{file}: not UTF-8 text ({error}); re-encode it as UTF-8") from None
        except OSError as error:
            raise InputError(
                f"{file}: cannot be read ({error.strerror or error}); --file takes a readable text "
                f"file with one review per line"
            ) from None
    elif stdin.isatty():
        raise InputError("no input: give sentences as arguments, --file PATH, or pipe reviews into stdin")
    else:
        lines, origin = stdin.read().splitlines(), "stdin"
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise InputError(f"no reviews in {origin}: it is empty or only blank lines")
    return texts


def format_table(predictions: list[Prediction], width: int = 80) -> str:
    rows = [f"{'probability':>11}  {'label':<8}  text"]
    for p in predictions:
        text = p.text if len(p.text) <= width else p.text[: width - 3] + "..."
        rows.append(f"{p.probability:11.4f}  {p.label:<8}  {text}")
    return "\n".join(rows)


def main(argv: list[str] | None = None, stdin: TextIO = sys.stdin) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*", help="reviews to classify")
    parser.add_argument("--file", help="text file with one review per line")
    parser.add_argument(
        "--model",
        help=f"SavedModel folder (default: the served version under {configs.serving_model_dir(configs.OUTPUT_DIR)})",
    )
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--batch-size", type=int, help="reviews per batch (default: modules.predict's, 32)")
    args = parser.parse_args(argv)
    try:
        texts = read_texts(args.sentences, args.file, stdin)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(PREDICT_LOG, "w"):  # the newest command's log only
        pass
    with console.RunConsole(PREDICT_LOG) as screen:
        from modules.predict import DEFAULT_BATCH_SIZE, PredictError, classify

        batch_size = args.batch_size or DEFAULT_BATCH_SIZE
        try:
            model_dir = args.model
            if model_dir is None:
                serving = configs.serving_model_dir(configs.OUTPUT_DIR)
                model_dir = serving_versions.served_model(serving)
                if model_dir is None:
                    model_dir = serving_versions.served_model(configs.serving_model_dir(configs.quick_look_dir()))
                    if model_dir is None:
                        raise PredictError(
                            f"{serving}: no pushed model version; run the pipeline until a model is "
                            f"blessed. Or pass --model DIR."
                        )
                    screen.say(f"No real model is pushed yet; using the quick look's {model_dir}", failure=True)
            with contextlib.redirect_stdout(screen.errors):  # the progress bar; stdout carries only the results
                predictions = classify(model_dir, texts, batch_size, progress=len(texts) > batch_size)
        except PredictError as error:
            screen.say(f"error: {error}", failure=True)
            return 2
        screen.say(
            format_table(predictions)
            if args.format == "table"
            else "\n".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) for p in predictions)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
