"""The predict command and docs/serving.md's TF Serving requests, against a real exported model."""

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from config import pipeline as configs
from modules import model as model_lib
from modules import predict
from runners import predict as predict_command
from tests.support.docs import docs_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REVIEWS = ["A wonderful, moving and brilliant film.", "Awful.", " ".join(["dull"] * 80), "It was fine, I guess."]


@pytest.fixture(scope="module")
def exported_model(tiny_bert, tmp_path_factory) -> Path:
    spec = model_lib.ClassifierSpec(str(tiny_bert.preprocess), str(tiny_bert.encoder), seq_length=64, dropout_rate=0.1)
    classifier = model_lib.build_classifier(spec)
    head = classifier.logit_model.get_layer("classifier")
    head.set_weights([np.full_like(w, 0.3) for w in head.get_weights()])  # spread-out probabilities
    export_dir = tmp_path_factory.mktemp("serving") / "1700000000"
    model_lib.export_serving_model(classifier, str(export_dir))
    return export_dir


def one_at_a_time(model_dir: Path, texts: list[str]) -> list[float]:
    signature = tf.saved_model.load(str(model_dir)).signatures[model_lib.TEXT_SIGNATURE]
    return [float(signature(text=tf.constant([t]))["probability"][0, 0]) for t in texts]


@pytest.mark.slow
def test_length_sorted_batches_give_each_review_its_own_probability_in_input_order(exported_model):
    predictions = predict.classify(str(exported_model), REVIEWS, batch_size=2)
    assert [p.text for p in predictions] == REVIEWS
    np.testing.assert_allclose([p.probability for p in predictions], one_at_a_time(exported_model, REVIEWS), atol=1e-5)
    assert len({round(p.probability, 4) for p in predictions}) > 1
    assert all(p.label == model_lib.CLASS_NAMES[p.probability >= 0.5] for p in predictions)


@pytest.mark.slow
def test_sentences_file_and_stdin_give_the_same_json_lines(exported_model, tmp_path, capsys):
    reviews_file = tmp_path / "reviews.txt"
    reviews_file.write_text("\n".join(REVIEWS[:2] + [""] + REVIEWS[2:]) + "\n", encoding="utf-8")
    outputs = []
    for argv, stdin in (([*REVIEWS], None), (["--file", str(reviews_file)], None), ([], reviews_file.read_text())):
        code = predict_command.main(
            ["--model", str(exported_model), "--format", "jsonl", "--batch-size", "3", *argv],
            stdin=io.StringIO(stdin or ""),
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        outputs.append([json.loads(line) for line in captured.out.splitlines()])
    blank = {"text": "", "probability": None, "label": None}  # the file's and stdin's blank line, in its place
    assert outputs[1] == outputs[2] == outputs[0][:2] + [blank] + outputs[0][2:]
    assert [row["text"] for row in outputs[0]] == REVIEWS
    assert set(outputs[0][0]) == {"text", "probability", "label"}


@pytest.mark.slow
def test_the_newest_pushed_version_is_the_default_and_the_table_shows_it(exported_model, tmp_path, monkeypatch, capsys):
    serving_root = Path(configs.serving_model_dir(str(tmp_path)))
    (serving_root / "99").mkdir(parents=True)  # an older version, not a SavedModel: must not be chosen
    (serving_root / "1700000000").symlink_to(exported_model, target_is_directory=True)
    monkeypatch.setattr(configs, "OUTPUT_DIR", str(tmp_path))
    assert predict_command.main(["Great film."]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["probability", "label", "text"]
    assert table[1].endswith("Great film.")


def fake_classify(sent: list[list[str]]):
    """classify, without a model: records what is sent to it; a review's probability is its length / 100."""

    def classify(model_dir, texts, batch_size=predict.DEFAULT_BATCH_SIZE, progress=False):
        sent.append(list(texts))
        return [predict.Prediction(t, len(t) / 100, model_lib.CLASS_NAMES[len(t) >= 50]) for t in texts]

    return classify


def test_a_blank_line_keeps_its_place_and_is_not_sent_to_the_model(tmp_path, monkeypatch, capsys):
    (model := tmp_path / "model").mkdir()
    (model / "saved_model.pb").write_bytes(b"")  # passes the early check; classify is faked
    sent: list[list[str]] = []
    monkeypatch.setattr(predict, "classify", fake_classify(sent))
    lines = ["Great.", "", "   ", "Awful, really.", ""]
    (reviews := tmp_path / "reviews.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    blank = {"text": "", "probability": None, "label": None}
    for argv, stdin in ((["--file", str(reviews)], ""), ([], reviews.read_text())):
        code = predict_command.main(["--model", str(model), "--format", "jsonl", *argv], io.StringIO(stdin))
        captured = capsys.readouterr()
        assert code == 0, captured.err
        rows = [json.loads(line) for line in captured.out.splitlines()]
        assert rows == [rows[0], blank, blank, rows[3], blank] and len(rows) == len(lines)
        assert (rows[0]["text"], rows[3]["text"]) == ("Great.", "Awful, really.")
        assert sent.pop() == ["Great.", "Awful, really."]
    assert predict_command.main(["--model", str(model), "--file", str(reviews)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + len(lines) and table[2] == table[3] == table[5] == ""
    assert table[1].endswith("Great.") and table[4].endswith("Awful, really.")


LOADED_AFTER_MAIN = (
    "import io, sys\nfrom runners import predict\ncode = predict.main(sys.argv[1:], io.StringIO(''))\n"
    "print(code, sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))"
)


def test_a_model_folder_without_a_saved_model_is_refused_before_tensorflow_loads(tmp_path):
    (empty := tmp_path / "model").mkdir()
    command = [sys.executable, "-m", "runners.predict", "--model", str(empty), "Great."]
    refused = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: {empty}: no SavedModel here (no saved_model.pb). Pass --model with a pushed model version folder, "
        f"or run the pipeline until a model is blessed and pushed."
    ]
    (version := tmp_path / "serving" / "1700000000").mkdir(parents=True)
    refused = subprocess.run(
        [*command[:4], str(version), "Great."], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert f"{version}: served version 1700000000 is not a loadable SavedModel (no saved_model.pb)" in refused.stderr
    assert f"atomic_pusher rollback {tmp_path / 'serving'} VERSION" in refused.stderr
    for model in (empty, version, tmp_path / "nowhere"):
        loaded = subprocess.run(
            [sys.executable, "-c", LOADED_AFTER_MAIN, "--model", str(model), "Great."],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert loaded.stdout.strip() == "2 []", loaded.stderr[-2000:]  # refused, and TensorFlow never imported


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["--model", "/nonexistent/model", "Great."], "", "no SavedModel here (no such folder)"),
        (["--file", "/nonexistent/reviews.txt"], "", "no such file"),
        ([], "\n  \n", "no reviews in stdin"),
    ],
)
def test_bad_input_stops_with_a_message_that_says_what_to_do(argv, stdin, message, capsys):
    assert predict_command.main(argv, stdin=io.StringIO(stdin)) == 2
    assert message in capsys.readouterr().err


def test_a_model_without_the_text_signature_is_refused(tmp_path, capsys):
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"serving_default": module.double})
    assert predict_command.main(["--model", str(tmp_path / "other"), "Great."]) == 2
    assert "no 'predict_text' signature (it has ['serving_default'])" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_runs_as_documented(exported_model):
    completed = subprocess.run(
        [sys.executable, "-m", "runners.predict", "--model", str(exported_model), "--format", "jsonl"],
        input="Great film.\nTerrible.\n",
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert [json.loads(line)["text"] for line in completed.stdout.splitlines()] == ["Great film.", "Terrible."]


def readme_request(signature: str) -> dict:
    """The JSON body of docs/serving.md's curl request for `signature`."""
    readme = docs_text("serving")
    block = re.search(rf"<!-- rest-request: {signature} -->\n```bash\n(.*?)```", readme, re.S).group(1)
    return json.loads(re.search(r"-d '(.*)'", block, re.S).group(1))


def rest_instances_to_tensor(instances: list) -> tf.Tensor:
    """TF Serving's REST row format for a one-input signature: each instance is the value, and
    {"b64": ...} is a base64-encoded binary string."""
    values = [base64.b64decode(i["b64"]) if isinstance(i, dict) else i.encode() for i in instances]
    return tf.constant(values, tf.string)


@pytest.mark.slow
@pytest.mark.parametrize("signature", [model_lib.TEXT_SIGNATURE, model_lib.SERVING_SIGNATURE])
def test_the_readme_rest_requests_are_accepted_by_the_signatures(exported_model, signature):
    body = readme_request(signature)
    assert body.get("signature_name", model_lib.SERVING_SIGNATURE) == signature
    loaded = tf.saved_model.load(str(exported_model)).signatures[signature]
    (input_name,) = loaded.structured_input_signature[1]
    outputs = loaded(**{input_name: rest_instances_to_tensor(body["instances"])})
    assert outputs[model_lib.PROBABILITY_OUTPUT].shape == (len(body["instances"]), 1)
    assert set(outputs) == {model_lib.PROBABILITY_OUTPUT, model_lib.CLASS_NAME_OUTPUT}


@pytest.mark.slow
def test_the_readme_lists_the_tensorflow_text_ops_the_model_needs(exported_model):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((exported_model / "saved_model.pb").read_bytes())
    graph = saved_model.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
    core_ops = subprocess.run(  # in a process without tensorflow_text, its ops are not registered
        [
            sys.executable,
            "-c",
            "import sys, tensorflow as tf\nfrom tensorflow.python.framework import op_def_registry"
            "\nprint(' '.join(o for o in sys.argv[1:] if op_def_registry.get(o) is not None))",
            *sorted(ops),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    readme = docs_text("serving")
    listed = re.search(r"<!-- tf-text-ops -->(.*?)<!-- /tf-text-ops -->", readme, re.S).group(1)
    assert set(re.findall(r"`([^`]+)`", listed)) == ops - set(core_ops)
