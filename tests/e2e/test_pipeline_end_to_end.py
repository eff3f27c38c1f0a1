"""The pipeline stops before training on data that fails validation. (The whole pipeline blessing, pushing and
serving is tests/e2e/test_model_validation.py's run 1.)"""

from pathlib import Path

import pytest

import local_runner
from config import pipeline as configs


@pytest.mark.slow
def test_anomalies_stop_the_pipeline_before_training(tiny_corpus, tiny_bert, tmp_path, capsys):
    strict_schema = tmp_path / "schema.pbtxt"
    strict_schema.write_text(
        Path(configs.SCHEMA_FILE).read_text().replace("int_domain { min: 1 max: 10 }", "int_domain { min: 1 max: 4 }")
    )
    output_dir = tmp_path / "output"
    with pytest.raises(SystemExit) as failure:
        local_runner.main(
            [
                "--output-dir",
                str(output_dir),
                "--data",
                str(tiny_corpus),
                "--schema-file",
                str(strict_schema),
                "--preprocess-handle",
                str(tiny_bert.preprocess),
                "--encoder-handle",
                str(tiny_bert.encoder),
            ]
        )
    assert failure.value.code == 4  # runners/failures.py: the data failed validation
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert message.startswith("local_runner.py: error in AnomaliesGate: Data validation failed")
    assert "split 'train', feature 'rating'" in message and "Out-of-range" in message
    assert not (output_dir / "pipelines" / configs.PIPELINE_NAME / "Trainer").exists()
    assert not Path(configs.serving_model_dir(str(output_dir))).exists()
