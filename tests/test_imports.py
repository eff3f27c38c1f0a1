"""Data flows one way: runners, then `pipeline/`, then `components/` and `modules/`; wiring the DAG loads none
of the model's libraries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOADED = r"""
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names})))
"""
MODEL_LIBRARIES = ("tensorflow_hub", "official", "modules.model", "modules.trainer", "modules.keras_encoder")


def modules_loaded_by(module: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", LOADED.format(module=module, names=set(
        name.split(".")[0] for name in MODEL_LIBRARIES))], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # imports TFX, TFMA and Beam in a fresh process
def test_the_pipeline_definition_loads_neither_tf_hub_nor_model_garden_nor_the_model():
    # TFX itself (tfx.v1 -> TFMA) loads TF Text; TF Hub, Model Garden and the model's modules stay unloaded
    # until the Trainer runs.
    loaded = modules_loaded_by("pipeline.pipeline")
    assert not [m for m in loaded if any(m == lib or m.startswith(lib + ".") for lib in MODEL_LIBRARIES)], loaded
    assert "modules.model_interface" in loaded, "the names the Evaluator needs come from the light module"


def test_the_runners_check_flags_without_tensorflow():
    loaded = subprocess.run([sys.executable, "-c", (
        "import sys, local_runner, kubeflow_runner\n"
        "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert loaded.stdout.strip() == "[]", loaded.stderr[-2000:]
