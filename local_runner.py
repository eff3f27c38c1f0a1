"""Runs the imdb-bert-tfx pipeline on this machine: LocalDagRunner, SQLite ML Metadata, Beam DirectRunner.

python local_runner.py                      # offline default: synthetic corpus, pretrained MiniLM BERT
python local_runner.py --data ~/aclImdb --preprocess-handle URL_OR_DIR --encoder-handle URL_OR_DIR
python local_runner.py --data https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz ...
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import sys
import tempfile
import time

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from components.ingestion import imdb_source
from config import ids
from config import pipeline as configs
from modules import encoders
from runners import cli, failures, interrupts, offline_assets, run_lock

REAL_CORPUS_HINT = """That was a quick look (a synthetic corpus). For a real model, about 0.92 eval accuracy in 45-55
Trainer minutes with validation on 2 cores (--recipe fast: 0.91 in 25-30; --recipe tutorial; docs/training.md):
  .venv/bin/python local_runner.py --data https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"""
EXAMPLE_SENTENCES = ["This movie was a delight, brilliant and moving.", "A dull, tedious film. I hated every minute."]


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """What one `local_runner.py` invocation runs: the pipeline's config and where this machine keeps things."""

    config: configs.PipelineConfig
    recipe: str
    output_dir: str
    cache_dir: str
    synthetic: bool  # the offline default corpus (no --data): a quick look, kept apart in <output dir>/quick-look
    lock_dir: str  # --output-dir: one run at a time in it, quick look or not
    verbose: bool = False


def check_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--data names a corpus that exists (if local), and the output and cache folders can be written."""
    if args.data is not None:
        try:
            imdb_source.check_local_source(args.data)
        except imdb_source.SourceError as error:
            parser.error(f"--data {error}")
    for flag, path in (("--output-dir", args.output_dir), ("--cache-dir", args.cache_dir)):
        try:  # exists or can be made, and a file can be written in it
            os.makedirs(path, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
                pass
        except OSError as error:
            parser.error(f"{flag} {path!r}: cannot be written ({error.strerror or error}); give a folder you can write")


def parse_args(argv: list[str] | None = None) -> LocalRun:
    """The run the flags describe, every value checked (a bad one exits with code 2 and one line)."""
    parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--output-dir",
        default=configs.OUTPUT_DIR,
        help="pipeline artifacts, ML Metadata and pushed models (default: %(default)s)",
    )
    parser.add_argument("--cache-dir", default=configs.CACHE_DIR, help="offline defaults are built here")
    parser.add_argument(
        "--data", help="aclImdb folder, .tar.gz, or URL of the tarball; default: the synthetic offline corpus"
    )
    cli.add_model_flags(parser)
    parser.add_argument("--verbose", action="store_true", help="also show the full log on the console")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="reuse finished executions of earlier runs whose inputs and settings are unchanged "
        "(TFX caching), e.g. to rerun after a crash",
    )
    args = parser.parse_args(argv)
    check_paths(parser, args)
    handles = cli.checked(parser, lambda: cli.encoder_handles(args))
    if handles is None:  # the offline default, converted into the cache by set-up (or on first use)
        handles = offline_assets.minilm_paths(args.cache_dir).handles()
    source = args.data or str(offline_assets.synthetic_corpus_path(args.cache_dir))
    recipe = cli.recipe_name(args, real_data=args.data is not None)
    # The quick look keeps its own artifacts, metadata and served models: no real run is judged against it.
    output_dir = args.output_dir if args.data else configs.quick_look_dir(args.output_dir)
    config = cli.checked(
        parser,
        lambda: cli.pipeline_config(
            args,
            root=configs.pipeline_root(output_dir),
            data=cli.data_config(
                args,
                source=source if "://" in source else os.path.abspath(os.path.expanduser(source)),
                download_dir=configs.download_dir(args.cache_dir),
            ),
            handles=handles,
            serving_model_dir=configs.serving_model_dir(output_dir),
            recipe=recipe,
            enable_cache=args.cache,
        ),
    )
    return LocalRun(
        config,
        recipe,
        output_dir,
        args.cache_dir,
        synthetic=args.data is None,
        lock_dir=args.output_dir,
        verbose=args.verbose,
    )


def main(argv: list[str] | None = None) -> None:
    with interrupts.trapped(until_exit=argv is None):
        try:
            local_run = parse_args(argv)
            with run_lock.hold(local_run.lock_dir):
                code = run(local_run, resume_command(argv))
        except run_lock.RunLockHeld as error:
            print(f"local_runner.py: error: {error}", file=sys.stderr)
            code = failures.LOCKED
        except KeyboardInterrupt as error:  # before or after the pipeline: nothing is lost
            interrupts.stopping()
            code = interrupts.interrupted_by(error) or failures.INTERRUPTED
            print(
                f"local_runner.py: interrupted ({interrupts.signal_name(error)}) outside the pipeline, nothing is "
                f"lost (exit code {code})",
                file=sys.stderr,
            )
    if code:  # a finished run returns, so a caller in the same process (the tests) goes on
        sys.exit(code)


def resume_command(argv: list[str] | None) -> str:
    """This command with --cache, as a shell line: what picks a stopped run up (finished steps reused)."""
    if argv is None:  # the command line as typed, the interpreter's own options included
        command = list(sys.orig_argv)
    else:
        command = [sys.executable, os.path.relpath(__file__), *argv]
    return shlex.join(command + ([] if "--cache" in command else ["--cache"]))


def run(local_run: LocalRun, resume: str) -> int:
    """The pipeline under the run's console: a short story on the terminal, everything in the log file. Returns the
    exit code: 0, or that of a failure or an interrupt, which end the run with one line on stderr
    (runners/failures.py)."""
    from runners import console, run_history, runs

    config, output_dir = local_run.config, local_run.output_dir
    metadata_path = configs.metadata_path(output_dir)
    log_path = os.path.join(output_dir, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
    started = time.time()

    def summarize(component: str) -> str:
        from runners import console_summaries  # TFX's readers: imported once a component has finished

        return console_summaries.component_summary(metadata_path, config.name, component)

    with console.RunConsole(log_path, summarize, verbose=local_run.verbose) as screen:
        screen.say(cli.recipe_line(local_run.recipe, config))
        screen.say(f"Data: {config.data.source}" + (" (synthetic quick look)" if local_run.synthetic else ""))
        screen.say(f"Output: {output_dir}; full log: {log_path}")

        def end(error: BaseException) -> int:
            """Ends the run `error` stopped: its one line, its end in the run history; returns the exit code."""
            interrupts.stopping()
            code, line = stopped(screen, local_run, error, log_path, resume)
            screen.say(line, failure=True)
            run_history.record_end(metadata_path, started)
            return code

        with interrupts.last_words(end):  # a second signal before the stop took effect ends the process with them
            try:
                if not local_run.synthetic:  # the corpus's layout, in seconds, before TensorFlow loads
                    data = config.data
                    imdb_source.check_local_corpus(
                        data.source, data.download_dir, data.sha256, bool(data.test_split), data.spans
                    )
                before, after, report = run_pipeline(local_run, metadata_path)
                interrupts.check()  # a stop whose exception was dropped: the run was interrupted all the same
            except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001  (one line, an exit code, a log)
                return end(error)
        run_history.record_end(metadata_path, started)
        history = runs.write_page(run_history.read_runs(metadata_path), output_dir)
        say_outcome(screen, local_run, before, after, report, history)
    return 0


def stopped(screen, local_run: LocalRun, error: BaseException, log_path: str, resume: str) -> tuple[int, str]:
    """The exit code and the one line of a run that `error` stopped; the traceback goes to the log."""
    code = interrupts.interrupted_by(error)
    logging.error("The run %s", "was interrupted" if code else "failed", exc_info=error)
    if code is None:
        code, message = failures.code_and_message(error)
        where = f" in {screen.running}" if screen.running else (" in --data" if code == failures.DATA else "")
        return code, f"local_runner.py: error{where}: {message} (exit code {code}; full log: {log_path})"
    kept = [f"finished components {', '.join(screen.finished)}" if screen.finished else "no finished component"]
    if screen.running == ids.TRAINER:
        from pipeline.pipeline import trainer_backup_root

        try:
            epochs = interrupts.trainer_epochs_kept(trainer_backup_root(local_run.config))
        except Exception:  # noqa: BLE001  (what is kept is a courtesy: never fail the ending over it)
            logging.exception("Could not read the Trainer's backup")
            epochs = 0
        kept.append(
            f"the Trainer's epoch {epochs} of {local_run.config.training.epochs} (a rerun resumes after it)"
            if epochs
            else "no finished epoch of the Trainer"
        )
    where = f"in {screen.running}" if screen.running else "between components"
    return code, (
        f"local_runner.py: interrupted ({interrupts.signal_name(error)}) {where} (exit code {code}; full "
        f"log: {log_path}); kept: {' and '.join(kept)}; resume with: {resume}"
    )


def run_pipeline(local_run: LocalRun, metadata_path: str) -> tuple[str | None, str | None, str | None]:
    """Builds the offline defaults the run uses (cached), fails fast on an encoder that cannot serve, and runs the
    pipeline; returns the served version folders before and after, and the report's path."""
    from tfx import v1 as tfx

    from components.evaluation import evaluation_report
    from modules import serving_versions
    from pipeline.pipeline import create_pipeline

    training = local_run.config.training
    if local_run.synthetic:
        offline_assets.synthetic_corpus_dir(local_run.cache_dir)
    if training.encoder_handle == str(offline_assets.minilm_paths(local_run.cache_dir).encoder):
        offline_assets.pretrained_minilm(local_run.cache_dir)
    encoders.check_handles(
        encoders.EncoderHandles(training.encoder_handle, training.preprocess_handle), training.seq_length
    )  # before any Beam work
    os.makedirs(os.path.dirname(metadata_path), exist_ok=True)
    metadata_config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    serving = local_run.config.serving_model_dir
    before = serving_versions.served_model(serving)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(local_run.config, metadata_config))
    return before, serving_versions.served_model(serving), evaluation_report.latest_report_path(metadata_config)


def say_outcome(
    screen, local_run: LocalRun, before: str | None, after: str | None, report: str | None, history: str
) -> None:
    from modules import predict

    if report:
        screen.say(f"Evaluation report: {report}")
    screen.say(f"RunRecord history: {history}")
    if after is None:
        screen.say(f"No model is pushed yet in {local_run.config.serving_model_dir}: this run's model was not blessed.")
        return
    screen.say(
        f"Pushed model: {after} (over HTTP: make serve)"
        if after != before
        else f"This run's model was not blessed; the serving model is still {after}"
    )
    for prediction in predict.classify(after, EXAMPLE_SENTENCES):
        screen.say(f"  {prediction.probability:.3f}  {prediction.label:<8}  {prediction.text}")
    if local_run.synthetic:
        for line in REAL_CORPUS_HINT.splitlines():
            screen.say(line)


if __name__ == "__main__":
    main()
