"""Mistakes and faults: bad input refused in seconds with one line, atomic pushes, caching that is never stale,
one run per output directory. (A pipeline run killed at four points and rerun each time is run 1 of
tests/e2e/test_model_validation.py.)"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ml_metadata as mlmd
import pytest
from ml_metadata.proto import metadata_store_pb2

from components.serving import atomic_pusher
from config import pipeline as configs
from config.settings import ConfigError
from config.training import TrainingConfig
from modules import serving_versions
from runners import run_lock
from tests.support import crash_points

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_command(script: str, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


BAD_LOCAL_FLAGS = [
    (["--batch-size", "0"], "--batch-size 0: must be an integer >= 1"),
    (["--epochs", "0"], "--epochs 0: must be an integer >= 1"),
    (["--train-steps", "0"], "--train-steps 0: must be an integer >= 1"),
    (["--eval-steps", "-3"], "--eval-steps -3: must be an integer >= 1"),
    (["--learning-rate", "0"], "--learning-rate 0.0: must be a number > 0"),
    (["--warmup-fraction", "1"], "--warmup-fraction 1.0: must be a number in [0, 1)"),
    (["--dropout-rate", "-0.1"], "--dropout-rate -0.1: must be a number in [0, 1)"),
    (["--seq-length", "1024"], "--seq-length 1024: must be an integer >= 3 and <= 512"),
    (["--truncation", "middle"], "argument --truncation: invalid choice: 'middle'"),
    (["--accuracy-threshold", "1.5"], "--accuracy-threshold 1.5: must be a number in [0, 1]"),
    (["--max-accuracy-drop", "-0.01"], "--max-accuracy-drop -0.01: must be a number in [0, 1]"),
    (["--slice-features", "rating,genre"], "--slice-features 'rating,genre': genre not in the schema"),
    (["--data", "/nonexistent/aclImdb"], "--data /nonexistent/aclImdb: no such file or folder"),
    (["--data", "/etc/passwd"], "--data /etc/passwd: not a folder or a .tar.gz/.tgz/.tar archive"),
    (["--data", "/etc"], "--data /etc: no aclImdb corpus found"),
    (["--output-dir", "/proc/imdb-bert-tfx"], "--output-dir '/proc/imdb-bert-tfx': cannot be written"),
    (["--batch-size", "many"], "argument --batch-size: invalid int value: 'many'"),
    (
        ["--data", "/nonexistent/span-{SPAN}"],
        "--data /nonexistent/span-{SPAN}: no folder matches; expected span folders such as /nonexistent/span-1",
    ),
    (["--spans", "2"], "--spans 2: --data must name a series of spans with {SPAN}"),
    (["--warm-start-epochs", "0"], "--warm-start-epochs 0: must be an integer >= 1"),
    (["--warm-start-learning-rate", "-1"], "--warm-start-learning-rate -1.0: must be a number > 0"),
]


def assert_one_line_refusal(result: subprocess.CompletedProcess, expected: str, *, after_tensorflow=False) -> None:
    """Exit code 2 and one line naming the problem, no traceback. Where the check needs TensorFlow loaded
    (`after_tensorflow`), TensorFlow's own start-up log lines may come first; the refusal is the last line."""
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(lines) == 1 or after_tensorflow, result.stderr[-2000:]
    assert expected in lines[-1] and lines[-1].startswith(("local_runner.py: error:", "kubeflow_runner.py: error:"))


@pytest.mark.parametrize("flags,expected", BAD_LOCAL_FLAGS, ids=[" ".join(f) for f, _ in BAD_LOCAL_FLAGS])
def test_the_local_runner_refuses_bad_input_at_once_with_one_line(flags, expected, tmp_path):
    started = time.monotonic()
    result = run_command("local_runner.py", "--output-dir", str(tmp_path / "out"), *flags)
    assert_one_line_refusal(result, expected)
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out" / "pipelines").exists()


KUBEFLOW_FLAGS = [
    "--pipeline-root",
    "gs://b/r",
    "--data",
    "gs://b/d",
    "--serving-model-dir",
    "gs://b/s",
    "--image",
    "registry.example/team/imdb-bert-tfx:1",
]


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--batch-size", "0"], "--batch-size 0: must be an integer >= 1"),
        (["--accuracy-threshold", "-1"], "--accuracy-threshold -1.0: must be a number in [0, 1]"),
        (["--pipeline-root", "minio://mlpipeline/v2"], "--pipeline-root minio://mlpipeline/v2: the pipeline's pods"),
        (["--image", "imdb-bert-tfx:local"], "--image imdb-bert-tfx:local: a cluster pulls each task's image from a"),
    ],
)
def test_the_kubeflow_runner_refuses_bad_flags_at_once_with_one_line(flags, expected, tmp_path):
    result = run_command("kubeflow_runner.py", *KUBEFLOW_FLAGS, "--output-file", str(tmp_path / "spec.json"), *flags)
    assert_one_line_refusal(result, expected)
    assert not (tmp_path / "spec.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "parameter,expected",
    [
        ('train_args={"num_steps": -5}', "'train_args': num_steps -5: must be an integer >= 1"),
        (
            'eval_config={"metrics_specs": [{"metrics": [{"class_name": "BinaryAccuracy", "threshold": '
            '{"value_threshold": {"lower_bound": 70}}}]}]}',
            "'eval_config': BinaryAccuracy lower_bound 70.0: must be a number in [0, 1]",
        ),
    ],
)
def test_the_kubeflow_runner_refuses_bad_runtime_parameter_values_before_compiling(
    parameter, expected, tmp_path, capsys
):
    import kubeflow_runner

    with pytest.raises(SystemExit) as exit_:
        kubeflow_runner.main([*KUBEFLOW_FLAGS, "--output-file", str(tmp_path / "spec.json"), "--parameter", parameter])
    assert exit_.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"kubeflow_runner.py: error: runtime parameter {expected}")
    assert not (tmp_path / "spec.json").exists()


@pytest.mark.slow
def test_encoder_checks_name_the_handle_and_the_longest_sequence_it_reads(tiny_bert, tmp_path):
    from modules import encoders

    result = run_command(
        "local_runner.py",
        "--output-dir",
        str(tmp_path / "out"),
        "--preprocess-handle",
        str(tiny_bert.preprocess),
        "--encoder-handle",
        str(tmp_path / "none"),
    )
    assert_one_line_refusal(result, f"encoder handle '{tmp_path / 'none'}' cannot be loaded", after_tensorflow=True)
    handles = encoders.EncoderHandles(encoder=str(tiny_bert.encoder), preprocess=str(tiny_bert.preprocess))
    encoders.check_handles(handles, 512)
    with pytest.raises(
        encoders.EncoderError,
        match="--seq-length 600 is longer than the encoder .* it embeds 512 positions; give --seq-length 512 or less",
    ):
        encoders.check_handles(handles, 600)


@pytest.mark.parametrize(
    "field,value",
    [
        ("batch_size", 0),
        ("epochs", -1),
        ("learning_rate", 0.0),
        ("warmup_fraction", 1.0),
        ("dropout_rate", 1.0),
        ("seq_length", 2),
        ("truncation", "middle"),
        ("precision", "float16"),
    ],
)
def test_the_trainer_refuses_a_bad_custom_config_before_training(field, value):
    custom_config = {"preprocess_handle": "p", "encoder_handle": "e", field: value}
    with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')} "):
        TrainingConfig.from_custom_config(custom_config)


def test_a_second_run_on_the_same_output_directory_stops_at_once_naming_the_lock_and_the_other_run(tmp_path):
    output_dir = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from runners import run_lock\n"
                "with run_lock.hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)"
            ),
            str(output_dir),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        second = run_command("local_runner.py", "--output-dir", str(output_dir))
        assert time.monotonic() - started < 30
        assert second.returncode == run_lock.EXIT_CODE, second.stderr[-2000:]
        message = second.stderr.strip().splitlines()[-1]
        assert str(output_dir / run_lock.LOCK_FILE) in message and f"pid {holder.pid}" in message
        assert not (output_dir / "metadata").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock, none is left stale
        holder.wait()
    with run_lock.hold(str(output_dir)) as path:
        assert f"pid {os.getpid()}" in Path(path).read_text()


def save_doubler(path: Path) -> None:
    """A real SavedModel, small: y = 2x."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": 2 * x}

    module = Doubler()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.double})


PUSH = (
    "import sys; from components.serving import atomic_pusher; print(atomic_pusher.push(sys.argv[1], sys.argv[2])[0])"
)


@pytest.mark.slow
def test_a_push_killed_mid_copy_leaves_no_version_and_the_next_push_cleans_up(tmp_path):
    import tensorflow as tf

    model, serving = tmp_path / "model", tmp_path / "serving"
    save_doubler(model)
    killed = subprocess.run(
        [sys.executable, "-c", PUSH, str(model), str(serving)],
        cwd=PROJECT_ROOT,
        env=crash_points.env(crash_points.PUSHER_COPY),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    leftovers = [p.name for p in serving.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(atomic_pusher.STAGING_PREFIX)
    assert serving_versions.versions(str(serving)) == [], "TF Serving would see no version at all"

    (serving / "9999999999").mkdir()  # a version from the future: never replaced, the next is one past it
    (serving / "9999999999" / "keep").write_text("untouched")
    version, path = atomic_pusher.push(str(model), str(serving))
    assert version == "10000000000"
    assert sorted(p.name for p in serving.iterdir()) == ["10000000000", "9999999999"]
    assert (serving / "9999999999" / "keep").read_text() == "untouched"
    loaded = tf.saved_model.load(path)
    assert loaded.signatures["serving_default"](x=tf.constant([1.5]))["y"].numpy().tolist() == [3.0]


def metadata_store(output_dir: Path) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = configs.metadata_path(str(output_dir))
    return mlmd.MetadataStore(config)


def executions_of(store: mlmd.MetadataStore, component: str) -> list:
    types = {t.id: t.name for t in store.get_execution_types()}
    return [e for e in store.get_executions() if types[e.type_id].endswith(component)]


def example_gen_pipeline(corpus: Path, output_dir: Path):
    from tfx import v1 as tfx

    from components.ingestion.imdb_example_gen import ImdbExampleGen
    from pipeline.pipeline import train_split_config

    return tfx.dsl.Pipeline(
        pipeline_name="cache-test",
        pipeline_root=str(output_dir / "root"),
        enable_cache=True,
        components=[
            ImdbExampleGen(
                source=str(corpus),
                download_dir=str(output_dir / "downloads"),
                train_split_config=train_split_config(configs.TRAIN_SPLIT_BUCKETS),
                test_split_name="test",
            )
        ],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            configs.metadata_path(str(output_dir))
        ),
    )


@pytest.mark.slow
def test_cached_ingestion_is_reused_for_the_same_files_and_never_for_a_changed_corpus(tiny_corpus, tmp_path):
    import shutil

    from tfx import v1 as tfx

    from tests.support.example_gen_helpers import read_split

    corpus = tmp_path / "aclImdb"
    shutil.copytree(tiny_corpus, corpus)
    output_dir = tmp_path / "out"
    store = lambda: metadata_store(output_dir)
    states = lambda: [e.last_known_state for e in executions_of(store(), "ImdbExampleGen")]
    E = metadata_store_pb2.Execution

    for _ in range(2):
        tfx.orchestration.LocalDagRunner().run(example_gen_pipeline(corpus, output_dir))
    assert states() == [E.COMPLETE, E.CACHED]

    edited = sorted((corpus / "train" / "pos").iterdir())[0]
    edited.write_text("An edited review, read again. " + edited.read_text())
    (corpus / "train" / "neg" / "99999_2.txt").write_text("A review added after the first run. Dull.")
    tfx.orchestration.LocalDagRunner().run(example_gen_pipeline(corpus, output_dir))
    assert states() == [E.COMPLETE, E.CACHED, E.COMPLETE]

    from tfx.types import standard_artifacts

    newest = max(store().get_artifacts_by_type("Examples"), key=lambda a: a.id)
    examples = standard_artifacts.Examples()
    examples.set_mlmd_artifact(newest)
    rows = [row for split in ("train", "eval") for row in read_split(examples, split)]
    assert len(rows) == 2 * 120 + 1
    assert any(row["text"].startswith("An edited review, read again.") for row in rows)
    assert any(row["review_id"] == "train/neg/99999" for row in rows)


@pytest.mark.slow
def test_a_signal_while_a_version_is_renamed_and_recorded_waits_until_both_are_done(tmp_path):
    model, serving = tmp_path / "model", tmp_path / "serving"
    save_doubler(model)
    # Ctrl-C's default meaning (KeyboardInterrupt) even when the tests run in a background job, whose children
    # inherit SIGINT ignored.
    script = (
        "import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from components.serving import atomic_pusher\ntry:\n"
        "    atomic_pusher.push(sys.argv[1], sys.argv[2], lambda version, path: print('recorded', version))\n"
        "except KeyboardInterrupt:\n    print('interrupted after the push')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model), str(serving)],
        cwd=PROJECT_ROOT,
        env=crash_points.env(crash_points.PUSHER_COMMIT, "SIGINT"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    (version,) = serving_versions.versions(str(serving))
    assert result.stdout.splitlines() == [f"recorded {version}", "interrupted after the push"], result.stderr[-2000:]
    assert [p.name for p in serving.iterdir()] == [str(version)], "the whole version, and no staging folder"
    assert sorted(p.name for p in (serving / str(version)).iterdir()) == sorted(p.name for p in model.iterdir())
