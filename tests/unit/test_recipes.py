"""Training defaults by data: the best measured recipe on a real corpus, the tutorial's on request, the quick
look on the synthetic corpus; a flag always wins over the recipe."""

import dataclasses

import pytest

import kubeflow_runner
import local_runner
from config import pipeline as configs
from runners import cli

KUBEFLOW_FLAGS = [
    "--pipeline-root",
    "gs://b/root",
    "--data",
    "gs://b/aclImdb",
    "--serving-model-dir",
    "gs://b/s",
    "--image",
    "registry.example/team/imdb-bert-tfx:1",
]


def training(run):
    return run.config.training, run.config.train_steps


def test_a_real_corpus_trains_the_best_measured_recipe(tiny_corpus, tmp_path):
    args = local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path)])
    config, steps = training(args)
    assert (config.seq_length, config.truncation, config.learning_rate, config.epochs, steps) == (
        512,
        "head+tail",
        5e-5,
        5,
        900,
    )
    assert (config.short_seq_length, config.short_seq_epochs, config.validation_epochs()) == (128, 1, [4, 5])
    assert config.attention_dropout_rate == 0.0
    assert args.config.eval_steps is None, "validated on the whole eval split: a subset picks the wrong epoch"
    assert cli.recipe_line(args.recipe, args.config) == (
        "Training recipe: best (seq 512, head+tail, lr 5e-05, 900 steps in 5 epochs, first epoch at seq 128, "
        "validated after the last 2, attention dropout 0)"
    )
    compiled = kubeflow_runner.parse_args(KUBEFLOW_FLAGS)
    assert training(compiled)[0].seq_length == 512 and compiled.recipe == "best"


def test_recipe_two_pass_is_the_former_best_with_the_encoders_attention_dropout(tiny_corpus, tmp_path):
    args = local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path), "--recipe", "two-pass"])
    config, steps = training(args)
    assert (config.seq_length, config.truncation, config.learning_rate, config.epochs, steps) == (
        512,
        "head+tail",
        5e-5,
        5,
        1250,
    )
    assert config.attention_dropout_rate is None


def test_recipe_fast_is_the_one_pass_at_256_tokens(tiny_corpus, tmp_path):
    args = local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path), "--recipe", "fast"])
    config, steps = training(args)
    assert (config.seq_length, config.truncation, config.learning_rate, config.epochs, steps) == (
        256,
        "head+tail",
        5e-5,
        5,
        625,
    )


def test_recipe_tutorial_is_the_tutorials_settings_exactly(tiny_corpus, tmp_path):
    args = local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path), "--recipe", "tutorial"])
    config, steps = training(args)
    # "Classify text with BERT": 128 tokens (the preprocessor's default, its head), AdamW 3e-5, 10% warm-up,
    # 5 epochs over the data, batch 32, dropout 0.1.
    assert (config.seq_length, config.truncation, config.learning_rate, config.epochs, steps) == (
        128,
        "head",
        3e-5,
        5,
        None,
    )
    assert (config.batch_size, config.warmup_fraction, config.dropout_rate) == (32, 0.1, 0.1)


def test_the_synthetic_corpus_stays_a_quick_look(tmp_path):
    args = local_runner.parse_args(["--output-dir", str(tmp_path)])
    config, steps = training(args)
    assert (
        (config.epochs, steps)
        == (configs.RECIPES["quick-look"]["epochs"], configs.RECIPES["quick-look"]["train_steps"])
        == (2, 30)
    )
    assert args.recipe == "quick-look" and config.seq_length == 128


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--seq-length", "384"], {"seq_length": 384, "truncation": "head+tail", "steps": 900, "epochs": 5}),
        (["--attention-dropout-rate", "0.1"], {"attention_dropout_rate": 0.1, "steps": 900}),
        # --epochs alone: 3 passes, each at the length and validated; --seq-length alone: every epoch at it
        (["--epochs", "3"], {"seq_length": 512, "epochs": 3, "steps": None, "short_seq_epochs": 0}),
        (["--seq-length", "64"], {"seq_length": 64, "short_seq_length": None, "validated_epochs": None}),
        (["--epochs", "4", "--short-seq-epochs", "3"], {"short_seq_epochs": 3, "short_seq_length": 128}),
        (["--train-steps", "100"], {"epochs": 5, "steps": 100}),
        (["--eval-steps", "40"], {"steps": 900, "eval_steps": 40}),  # validation on the eval split's first 1,280
        (["--short-seq-epochs", "0"], {"short_seq_epochs": 0, "seq_length": 512}),  # no curriculum
        (["--validated-epochs", "5"], {"validated_epochs": 5}),  # validated after every epoch
        (["--recipe", "tutorial", "--learning-rate", "5e-5"], {"seq_length": 128, "learning_rate": 5e-5}),
    ],
)
def test_a_flag_wins_over_the_recipe(flags, expected, tiny_corpus, tmp_path):
    args = local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path), *flags])
    config, steps = training(args)
    got = {**dataclasses.asdict(config), "steps": steps, "eval_steps": args.config.eval_steps}
    assert {key: got[key] for key in expected} == expected
    assert "changed by --" in cli.recipe_line(args.recipe, args.config)


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--epochs", "2", "--short-seq-epochs", "2"],
            "--short-seq-epochs 2: must be fewer than --epochs (2), and 0 without --short-seq-length",
        ),
        (
            ["--seq-length", "128", "--validated-epochs", "2"],
            "--short-seq-length 128: must be less than --seq-length (128)",
        ),
        (["--validated-epochs", "6"], "--validated-epochs 6: must be at most --epochs (5)"),
    ],
)
def test_a_curriculum_that_cannot_run_is_refused_naming_its_flag(flags, message, tiny_corpus, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        local_runner.parse_args(["--data", str(tiny_corpus), "--output-dir", str(tmp_path), *flags])
    assert refused.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: {message} (see --help)\n")
