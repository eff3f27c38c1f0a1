"""The run-history page as a person reads it: titled with the output folder, one row per run with its duration.
(How it looks: docs/continuous-training.md, "The run history", has the command for a headless Chromium screenshot.)"""

import html

from runners import runs
from runners.run_history import RunRecord


def test_the_page_names_the_output_folder_and_each_runs_own_duration(tmp_path):
    output_dir = str(tmp_path / "tfx_output")
    (tmp_path / "tfx_output").mkdir()
    history = [
        RunRecord("run-1", 1_800_000_000.0, 42.0, data="aclImdb", verdict="stopped at Trainer"),
        RunRecord(
            "run-2", 1_800_000_600.0, 95.0, data="aclImdb", eval_accuracy=0.91, verdict="blessed", pushed="1800000700"
        ),
    ]
    path = runs.write_page(history, output_dir)
    page = open(path, encoding="utf-8").read()
    assert f"<title>Runs of {html.escape(output_dir)}</title>" in page
    assert f"<h1>Runs of {html.escape(output_dir)}</h1>" in page and runs.HISTORY_PAGE not in page
    assert "<td>0.7 min</td>" in page and "<td>1.6 min</td>" in page
    assert "data:image/png;base64," in page


def test_runs_that_never_reached_the_evaluator_get_a_sentence_not_an_empty_plot(tmp_path):
    path = runs.write_page([RunRecord("run-1", 1_800_000_000.0, 42.0, verdict="stopped at Trainer")], str(tmp_path))
    page = open(path, encoding="utf-8").read()
    assert "No run has reached the Evaluator yet" in page and "data:image/png" not in page
