"""The predict command: classifies reviews with a pushed model (`modules.predict`).

    python -m runners.predict "What a great film." "Dreadful."      # sentences as arguments
    python -m runners.predict --file reviews.txt --format jsonl      # one review per line
    cat reviews.txt | python -m runners.predict                      # stdin
    python -m runners.predict --model tfx_output/serving_model/imdb-bert-tfx/1764000000 "Great."

Uses the served version (the highest) under the local runner's serving directory unless `--model` names one. Large
inputs go in length-sorted batches, with a progress bar on stderr; results come out in input order, one row per input
line: a blank line is not sent to the model and keeps its place as an empty row (in JSON lines
`{"text": "", "probability": null, "label": null}`), so JSON line N answers input line N. The input, and a local
`--model` folder's saved_model.pb, are checked before TensorFlow loads; TensorFlow's own lines go to a log file
(PREDICT_LOG), never to the console.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import typing
from typing import TYPE_CHECKING, TextIO

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

if TYPE_CHECKING:  # modules.predict loads TensorFlow: imported only where a prediction is made
    from modules.predict import Prediction
from config import pipeline as configs
from modules import serving_versions
from runners import console

PREDICT_LOG = os.path.join(tempfile.gettempdir(), "imdb-bert-tfx-predict.log")  # the newest command's


class InputError(ValueError):
    """No reviews to classify, a file that cannot be read, or a local --model folder without a SavedModel; the
    message says what to give instead."""


def check_model_folder(model: str) -> None:
    """Refuses a local --model folder without a SavedModel, before TensorFlow loads (gs:// and other URLs are read
    with TensorFlow's filesystems: checked when the model loads)."""
    if not serving_versions.is_local(model) or serving_versions.holds_saved_model(model):
        return
    base, version = os.path.split(os.path.normpath(model))
    if version.isdigit() and os.path.isdir(model):  # a broken served version: as modules.predict says of one
        raise InputError(
            f"{model}: served version {version} is not a loadable SavedModel (no saved_model.pb); remove that folder "
            f"(or move it out of {base}), or serve a good version again with `.venv/bin/python -m "
            f"components.serving.atomic_pusher rollback {base} VERSION`"
        )
    if os.path.isdir(model):
        reason = "no saved_model.pb"
    else:
        reason = "not a folder" if os.path.exists(model) else "no such folder"
    raise InputError(
        f"{model}: no SavedModel here ({reason}). Pass --model with a pushed model version folder, or run the "
        f"pipeline until a model is blessed and pushed."
    )


def read_texts(sentences: list[str], file: str | None, stdin: TextIO) -> list[str]:
    """The reviews to classify, stripped: the arguments, else the file's lines, else stdin's. A blank line stays, as
    "": it keeps its place in the output, and is not classified."""
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
    texts = [line.strip() for line in lines]
    if not any(texts):
        raise InputError(f"no reviews in {origin}: it is empty or only blank lines")
    return texts


class NoServedModel(Exception):
    """Neither the real runs' nor the quick look's serving directory holds a pushed version."""


def default_serving_directory(output_dir: str | None = None) -> tuple[str, bool]:
    """The serving directory a command uses without --model: the real runs' (under `output_dir`, by default the
    runners') if it holds a pushed version, else the quick look's (then True); NoServedModel, saying what to run, if
    neither does."""
    output_dir = output_dir or configs.OUTPUT_DIR
    serving = configs.serving_model_dir(output_dir)
    if serving_versions.served_model(serving) is not None:
        return serving, False
    quick_look = configs.serving_model_dir(configs.quick_look_dir(output_dir))
    if serving_versions.served_model(quick_look) is not None:
        return quick_look, True
    raise NoServedModel(
        f"{serving}: no pushed model version; run the pipeline (`make run`) until a model is blessed and pushed, "
        f"or pass --model DIR."
    )


def in_input_order(texts: list[str], predictions: list[Prediction]) -> list[Prediction | None]:
    """One row per text: the next prediction (those of the non-blank texts, in order), None for a blank one."""
    classified = iter(predictions)
    return [next(classified) if text else None for text in texts]


def format_table(rows: list[Prediction | None], width: int = 80) -> str:
    lines = [f"{'probability':>11}  {'label':<8}  text"]
    for p in rows:
        if p is None:  # a blank input line
            lines.append("")
            continue
        text = p.text if len(p.text) <= width else p.text[: width - 3] + "..."
        lines.append(f"{p.probability:11.4f}  {p.label:<8}  {text}")
    return "\n".join(lines)


def format_jsonl(rows: list[Prediction | None]) -> str:
    blank = {"text": "", "probability": None, "label": None}
    return "\n".join(json.dumps(dataclasses.asdict(p) if p else blank, ensure_ascii=False) for p in rows)


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
        if args.model is not None:
            check_model_folder(args.model)
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
                serving, quick_look = default_serving_directory()
                model_dir = typing.cast(str, serving_versions.served_model(serving))
                if quick_look:
                    screen.say(f"No real model is pushed yet; using the quick look's {model_dir}", failure=True)
            reviews = [text for text in texts if text]  # a blank line is not classified; it keeps its place
            with contextlib.redirect_stdout(screen.errors):  # the progress bar; stdout carries only the results
                predictions = classify(model_dir, reviews, batch_size, progress=len(reviews) > batch_size)
        except (PredictError, NoServedModel) as error:
            screen.say(f"error: {error}", failure=True)
            return 2
        rows = in_input_order(texts, predictions)
        screen.say(format_table(rows) if args.format == "table" else format_jsonl(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
