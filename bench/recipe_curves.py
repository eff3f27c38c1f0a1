"""Time-to-accuracy curves of the pipeline's own recipes, measured in one invocation: each named recipe (as
`config.pipeline.RECIPES` declares it) trained by the pipeline's Trainer function (`modules.trainer.run_fn`, with
its curriculum, validation schedule and best-epoch export) on the train split of the real train archive as
ImdbExampleGen writes it, validated on its eval split (about 5,000 reviews).

    .venv/bin/python -m bench.recipe_curves [--recipes best,two-pass] [--target 0.92] [--max-minutes 50]

The recipes run one after the other, each in a child process (its own TensorFlow state and memory). A point of a
curve is a validated epoch: its accuracy on the eval split, and the Trainer's wall minutes from the child's start
to the end of that validation (model build, training steps and every validation pass before it: what a person
waits). A recipe still training at `--max-minutes` is stopped there; its curve is what it reached by then. Rows go
to `<out>/recipe_curves.csv` as each recipe ends, the plot (accuracy against Trainer minutes) to
`<out>/recipe_curves.png`; each child's log to `<workdir>/recipes/<recipe>/trainer.log`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import logging as std_logging
import math
import multiprocessing
import os
import shutil
import time
from pathlib import Path

from bench import machine, time_to_accuracy

CSV_FIELDS = ("recipe", "epoch", "step", "trainer_minutes", "eval_accuracy", "eval_loss")
ACCURACY_TAG, LOSS_TAG = "epoch_binary_accuracy", "epoch_loss"
POLL_SECONDS = 10


@dataclasses.dataclass(frozen=True)
class RecipeRun:
    """One recipe's run: its folders, and what its Trainer is given."""

    recipe: str
    directory: Path
    examples_uri: str

    @property
    def model_run_dir(self) -> Path:
        return self.directory / "model_run"

    @property
    def serving_model_dir(self) -> Path:
        return self.directory / "serving_model"


def train(run: RecipeRun, preprocess_handle: str, encoder_handle: str) -> None:
    """The child: `run_fn` with the recipe's settings (the rest at their defaults), as the pipeline passes them."""
    log = os.open(run.directory / "trainer.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for stream in (1, 2):  # TensorFlow's own lines too, from its import on
        os.dup2(log, stream)

    from absl import logging
    from tfx.components.trainer.fn_args_utils import FnArgs

    from config import pipeline as configs
    from config.training import TRAINING_FIELDS, TrainingConfig
    from modules import progress, trainer

    logging.set_verbosity(logging.INFO)
    progress.LOGGER.setLevel(std_logging.INFO)  # a line every 30 s: how far it is
    settings = configs.recipe(run.recipe)
    training = TrainingConfig(
        **{name: value for name, value in settings.items() if name in TRAINING_FIELDS},
        preprocess_handle=preprocess_handle,
        encoder_handle=encoder_handle,
        backup_root=str(run.directory / "backup"),
    )
    trainer.run_fn(
        FnArgs(
            train_files=time_to_accuracy.split_files(run.examples_uri, "train"),
            eval_files=time_to_accuracy.split_files(run.examples_uri, "eval"),
            train_steps=settings["train_steps"],
            eval_steps=settings["eval_steps"] or None,
            model_run_dir=str(run.model_run_dir),
            serving_model_dir=str(run.serving_model_dir),
            custom_config=dataclasses.asdict(training),
        )
    )


def validated_epochs(run: RecipeRun, started: float) -> list[dict]:
    """The run's validated epochs, from the TensorBoard logs its Trainer writes (each event carries its wall time)."""
    import tensorflow as tf

    from config import pipeline as configs

    settings = configs.recipe(run.recipe)  # every recipe field, the recipe's value or its default
    steps_per_epoch = math.ceil(settings["train_steps"] / settings["epochs"]) if settings["train_steps"] else None
    points: dict[int, dict] = {}
    for path in sorted(glob.glob(str(run.model_run_dir / "validation" / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag not in (ACCURACY_TAG, LOSS_TAG):
                    continue
                point = points.setdefault(
                    event.step,
                    dict(
                        recipe=run.recipe,
                        epoch=event.step + 1,
                        step=(event.step + 1) * steps_per_epoch if steps_per_epoch else "",
                        trainer_minutes=round((event.wall_time - started) / 60, 2),
                    ),
                )
                key = "eval_accuracy" if value.tag == ACCURACY_TAG else "eval_loss"
                point[key] = round(float(tf.make_ndarray(value.tensor)), 4)
    return [points[step] for step in sorted(points)]


def run_recipe(run: RecipeRun, bert, max_minutes: float) -> tuple[list[dict], float, bool]:
    """Trains `run` in a child process, stopped at `max_minutes`; returns its validated epochs, its wall minutes
    and whether it finished (exported)."""
    shutil.rmtree(run.directory, ignore_errors=True)
    run.directory.mkdir(parents=True)
    child = multiprocessing.get_context("spawn").Process(
        target=train, args=(run, str(bert.preprocess), str(bert.encoder)), name=f"recipe {run.recipe}"
    )
    started = time.time()
    child.start()
    while child.is_alive() and time.time() - started < max_minutes * 60:
        child.join(POLL_SECONDS)
    finished = not child.is_alive()
    if not finished:
        child.kill()
        child.join()
    elif child.exitcode != 0:
        raise SystemExit(f"{run.recipe}: the Trainer failed (exit code {child.exitcode}); see {run.directory}")
    return validated_epochs(run, started), (time.time() - started) / 60, finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    time_to_accuracy.add_data_arguments(parser)  # each recipe's run goes to <workdir>/recipes/<recipe>
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--recipes", default="best,two-pass", help="comma-separated names of config.pipeline.RECIPES")
    parser.add_argument("--target", type=float, default=0.92)
    parser.add_argument("--max-minutes", type=float, default=50.0, help="a recipe still training then is stopped")
    args = parser.parse_args()

    from config import pipeline as configs
    from runners import offline_assets

    recipes = args.recipes.split(",")
    unknown = [name for name in recipes if name not in configs.RECIPES]
    if unknown:
        parser.error(f"--recipes: unknown {', '.join(unknown)}; known: {', '.join(configs.RECIPES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    bert = offline_assets.pretrained_minilm(configs.CACHE_DIR)
    examples, _, _ = time_to_accuracy.prepare_data(args.data, args.workdir)
    print(f"{machine.cores_and_cpu()}; recipes {', '.join(recipes)}; at most {args.max_minutes:g} min each")

    rows: list[dict] = []
    summary = []
    for recipe in recipes:
        run = RecipeRun(recipe, args.workdir / "recipes" / recipe, examples.uri)
        points, minutes, finished = run_recipe(run, bert, args.max_minutes)
        for point in points:
            print(
                f"{recipe}: epoch {point['epoch']} (step {point['step']}), {point['trainer_minutes']:.1f} Trainer "
                f"minutes, eval accuracy {point['eval_accuracy']:.4f}",
                flush=True,
            )
        rows += points
        summary.append((recipe, points, minutes, finished))
        with open(args.out / "recipe_curves.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        time_to_accuracy.plot_curves(
            rows,
            "recipe",
            "trainer_minutes",
            "Trainer wall minutes (build, steps and validation passes)",
            "The recipes' time to accuracy, real IMDB train archive",
            args.target,
            args.out / "recipe_curves.png",
        )

    print(f"\nTime to eval accuracy {args.target} (Trainer wall minutes, validation included):")
    for recipe, points, minutes, finished in summary:
        reached = next((p for p in points if p["eval_accuracy"] >= args.target), None)
        best = max(points, key=lambda p: p["eval_accuracy"], default=None)
        print(
            f"  {recipe}: "
            + (f"{reached['trainer_minutes']:.1f} min at epoch {reached['epoch']}" if reached else "not reached")
            + (f"; best {best['eval_accuracy']:.4f} at epoch {best['epoch']}" if best else "; no epoch validated")
            + (f"; Trainer {minutes:.1f} min with export" if finished else f"; stopped at {minutes:.1f} min")
        )


if __name__ == "__main__":
    main()
