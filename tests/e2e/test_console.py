"""What a person sees: a run's console fits on one screen and tells the story (components, what they decided,
progress, where things are); the log file holds everything; every failure is one line with its exit code."""

import functools
import http.server
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

import local_runner
from config import pipeline as configs
from runners import failures

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPONENT_LINE = re.compile(r"^\d\d:\d\d:\d\d  (\w+) (\.\.\.|done in \S+)(: (.*))?$")


def tiny_flags(output_dir: Path, data: str, bert) -> list[str]:
    return [
        "--output-dir",
        str(output_dir),
        "--data",
        data,
        "--preprocess-handle",
        str(bert.preprocess),
        "--encoder-handle",
        str(bert.encoder),
        "--seq-length",
        "64",
        "--epochs",
        "2",
        "--train-steps",
        "120",
        "--learning-rate",
        "1e-3",
        "--test-split",
        "",
    ]


@pytest.mark.slow
def test_a_runs_console_fits_on_one_screen_and_its_log_file_holds_everything(tiny_corpus, tiny_bert, tmp_path):
    result = subprocess.run(
        [sys.executable, "local_runner.py", *tiny_flags(tmp_path / "out", str(tiny_corpus), tiny_bert)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) < 40, result.stdout
    assert result.stderr == "", result.stderr[-3000:]
    said = {match[1]: match[4] or "" for line in lines if (match := COMPONENT_LINE.match(line)) and match[2] != "..."}
    assert {
        "ImdbExampleGen",
        "StatisticsGen",
        "AnomaliesGate",
        "DistributionValidator",
        "LatestServedModel",
        "Trainer",
        "Evaluator",
        "Pusher",
        "EvaluationReport",
    } <= set(said), result.stdout
    assert re.fullmatch(r"train [\d,]+, eval [\d,]+ examples", said["StatisticsGen"])
    assert said["AnomaliesGate"] == "no anomalies against the schema"
    assert "skew: eval split vs train split: within bounds" in said["DistributionValidator"]
    assert said["LatestServedModel"].startswith("baseline: none")
    assert re.fullmatch(r"best epoch \d of 2, validation accuracy [01]\.\d{4}", said["Trainer"])
    assert re.fullmatch(
        r"accuracy [01]\.\d{4} \(needs >= 0\.7; no served model to compare with\): BLESSED", said["Evaluator"]
    )
    assert re.fullmatch(r"pushed version \d+", said["Pusher"]) and said["EvaluationReport"] == "BLESSED"
    progress = [line for line in lines if re.match(r"^    epoch \d/2  step \d+/120  [\d.]+ ex/s  epoch ", line)]
    assert len(progress) >= 2 and "ETA" in progress[0] and "validation accuracy" in progress[-1]
    log_path = Path(re.search(r"full log: (\S+)$", lines[2])[1])
    assert any(line.startswith(("Pushed model: ", "Evaluation report: ", "Run history: ")) for line in lines)
    log = log_path.read_text()
    assert "Component Trainer is running." in log and "cpu_feature_guard" in log  # TFX's and TensorFlow's own
    assert len(log.splitlines()) > 20 * len(lines)


def corpus_variant(tiny_corpus: Path, tmp_path: Path, damage) -> str:
    corpus = tmp_path / "aclImdb"
    shutil.copytree(tiny_corpus, corpus)
    data = damage(corpus)  # a tarball or URL made from the corpus, or None: the damaged folder itself
    return data if isinstance(data, str) else str(corpus)


def failure_line(capsys, exit_code: int | None = None) -> str:
    """The one line the runner wrote, naming `exit_code` if given; in this process, a library's warnings printed
    on import may precede it."""
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("local_runner.py:")]
    assert "Traceback" not in err and err.strip().endswith(line), err[-3000:]
    assert exit_code is None or failures.printed_code(line) == exit_code, line
    return line


def first_review(corpus: Path) -> Path:
    return sorted((corpus / "train" / "pos").iterdir())[0]


def tarball(corpus: Path, extra: str | None = None, truncate: bool = False) -> str:
    path = corpus.parent / "aclImdb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(corpus, arcname="aclImdb")
        if extra:
            info = tarfile.TarInfo(extra)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    if truncate:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def refused_url(corpus: Path) -> str:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(corpus.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/missing/aclImdb_v1.tar.gz"


# case -> (damage, expected text, where: the component, or --data for what the runner checks before TensorFlow)
DATA_FAILURES = {
    "non-UTF-8 review": (
        lambda c: first_review(c).write_bytes(b"\xff\xfe great"),
        "not valid UTF-8 at byte 0",
        "ImdbExampleGen",
    ),
    "empty review": (lambda c: first_review(c).write_text("  "), "the review is empty", "ImdbExampleGen"),
    "bad file name": (
        lambda c: (c / "train" / "neg" / "notes.txt").write_text("x"),
        "is not <id>_<rating>.txt",
        "--data",
    ),
    "rating of 11": (
        lambda c: first_review(c).rename(first_review(c).with_name("99999_11.txt")),
        "rating 11 is outside 1-10",
        "--data",
    ),
    "missing label folder": (lambda c: shutil.rmtree(c / "train" / "neg"), "train/neg: missing", "--data"),
    "path traversal in the archive": (lambda c: tarball(c, extra="aclImdb/../../evil.txt"), "evil.txt", "--data"),
    "truncated archive": (lambda c: tarball(c, truncate=True), "corrupt or truncated archive", "--data"),
    "refused URL": (refused_url, "HTTP 404", "ImdbExampleGen"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(DATA_FAILURES))
def test_a_data_failure_is_one_line_with_exit_code_3(case, tiny_corpus, tiny_bert, tmp_path, capsys):
    damage, expected, where = DATA_FAILURES[case]
    data = corpus_variant(tiny_corpus, tmp_path, damage)
    with pytest.raises(SystemExit) as exit_:
        local_runner.main(tiny_flags(tmp_path / "out", data, tiny_bert))
    assert exit_.value.code == failures.DATA
    line = failure_line(capsys, failures.DATA)
    assert line.startswith(f"local_runner.py: error in {where}: ") and expected in line, line
    assert not (tmp_path / "out" / "pipelines" / configs.PIPELINE_NAME / "Trainer").exists()


@pytest.mark.slow
def test_a_wrong_checksum_is_one_line_with_exit_code_3(tiny_corpus, tiny_bert, tmp_path, capsys):
    archive = corpus_variant(tiny_corpus, tmp_path, tarball)
    with pytest.raises(SystemExit) as exit_:
        local_runner.main([*tiny_flags(tmp_path / "out", archive, tiny_bert), "--data-sha256", "0" * 64])
    line = failure_line(capsys, failures.DATA)
    assert exit_.value.code == failures.DATA and "SHA-256" in line and "in --data" in line, line


@pytest.mark.slow
def test_a_damaged_metadata_database_is_one_line_with_exit_code_6(tiny_corpus, tiny_bert, tmp_path, capsys):
    metadata = Path(configs.metadata_path(str(tmp_path / "out")))
    metadata.parent.mkdir(parents=True)
    metadata.write_bytes(b"this is not SQLite " * 100)
    with pytest.raises(SystemExit) as exit_:
        local_runner.main(tiny_flags(tmp_path / "out", str(tiny_corpus), tiny_bert))
    line = failure_line(capsys, failures.STORAGE)
    assert exit_.value.code == failures.STORAGE, line
    assert "the ML Metadata database is damaged" in line and "move its folder" in line


@pytest.mark.slow
def test_a_broken_served_version_stops_the_run_in_the_baseline_step(tiny_corpus, tiny_bert, tmp_path, capsys):
    broken = Path(configs.serving_model_dir(str(tmp_path / "out"))) / "1700000000"
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"copied in by hand")
    with pytest.raises(SystemExit) as exit_:
        local_runner.main(tiny_flags(tmp_path / "out", str(tiny_corpus), tiny_bert))
    line = failure_line(capsys, failures.MODEL)
    assert exit_.value.code == failures.MODEL, line
    assert line.startswith("local_runner.py: error in LatestServedModel: ") and str(broken) in line
    assert "remove that folder" in line and "atomic_pusher rollback" in line
    assert not (tmp_path / "out" / "pipelines" / configs.PIPELINE_NAME / "Trainer").exists()
    predicted = subprocess.run(
        [sys.executable, "-m", "runners.predict", "--model", str(broken), "fine"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode != 0 and "Traceback" not in predicted.stderr
    (last,) = predicted.stderr.splitlines()  # exactly one line: TensorFlow's own went to the log
    assert str(broken) in last and "atomic_pusher rollback" in last, predicted.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root to mount a small tmpfs")
def test_a_full_disk_is_one_line_and_a_rerun_with_cache_completes(tiny_corpus, tiny_bert, tmp_path):
    output, flags = tmp_path / "out", shlex.join(tiny_flags(tmp_path / "out", str(tiny_corpus), tiny_bert))
    output.mkdir()
    runner = f"{sys.executable} local_runner.py {flags}"
    script = (
        f"mount -t tmpfs -o size=3m tmpfs {output} || exit 99; {runner} 2> {tmp_path}/full.err; "
        f"echo $? > {tmp_path}/full.code; mount -o remount,size=2g {output}; "
        f"{runner} --cache > {tmp_path}/rerun.out 2>&1; echo $? > {tmp_path}/rerun.code; "
        f"ls {output}/serving_model/{configs.PIPELINE_NAME} > {tmp_path}/versions"
    )
    subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=PROJECT_ROOT, timeout=1800, check=True)
    lines = (tmp_path / "full.err").read_text().strip().splitlines()
    assert (tmp_path / "full.code").read_text().strip() == str(failures.STORAGE), lines
    assert len(lines) == 1 and "no space left on the device" in lines[0] and "--cache" in lines[0], lines
    assert (tmp_path / "rerun.code").read_text().strip() == "0", (tmp_path / "rerun.out").read_text()[-3000:]
    assert len((tmp_path / "versions").read_text().split()) == 1  # one whole version, none half-way
