"""Data flows one way: runners, then `pipeline/`, then `components/` and `modules/`, then `config/`; wiring the
DAG loads none of the model's libraries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOADED = r"""
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names})))
"""
MODEL_LIBRARIES = ("tensorflow_hub", "official", "modules.model", "modules.trainer", "modules.keras_encoder")


def modules_loaded_by(module: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED.format(module=module, names=set(name.split(".")[0] for name in MODEL_LIBRARIES))],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import sys, local_runner, kubeflow_runner\n"
                "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))"
            ),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.stdout.strip() == "[]", loaded.stderr[-2000:]


# Who may import whom, by top-level folder or root file: every arrow points down this list.
LAYERS = ("local_runner", "kubeflow_runner", "runners", "pipeline", "components", "modules", "config")


def imported_modules(path: Path) -> set[str]:
    """The project modules `path` imports anywhere in it (inside functions too), as dotted names."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {
                f"{node.module}.{alias.name}" if module_path(f"{node.module}.{alias.name}") else node.module
                for alias in node.names
            }
    return {name for name in names if name.split(".")[0] in LAYERS}


def module_path(name: str) -> Path | None:
    path = PROJECT_ROOT.joinpath(*name.split("."))
    return next((p for p in (path.with_suffix(".py"), path / "__init__.py") if p.is_file()), None)


def imported_top_levels(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def test_imports_point_one_way_between_top_level_folders():
    upward = []
    for path in [*PROJECT_ROOT.glob("*.py"), *(p for layer in LAYERS for p in (PROJECT_ROOT / layer).rglob("*.py"))]:
        layer = path.relative_to(PROJECT_ROOT).parts[0].removesuffix(".py")
        if layer not in LAYERS:
            continue
        upward += [
            f"{path.relative_to(PROJECT_ROOT)} imports {name}"
            for name in imported_top_levels(path)
            if LAYERS.index(name) < LAYERS.index(layer) or (name != layer and name in LAYERS[:2])
        ]
    assert not upward, upward


def imported_closure(module: str) -> set[str]:
    """Every project module `module` imports, directly or through others, at import time or inside functions."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = module_path(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # their __init__ runs
        todo += [*imported_modules(path), *parents]
    return seen - {module}


def test_evaluation_and_reporting_do_not_import_ingestion_and_the_run_history_not_the_trainer():
    evaluation = sorted(p.stem for p in (PROJECT_ROOT / "components" / "evaluation").glob("[!_]*.py"))
    assert "evaluation_report" in evaluation
    for name in evaluation:
        reached = imported_closure(f"components.evaluation.{name}")
        assert not [m for m in reached if m.startswith("components.ingestion")], (name, sorted(reached))
    reached = imported_closure("runners.runs")
    assert "components.evaluation.evaluation_report" in reached, "the closure follows imports inside functions"
    assert not [m for m in reached if m in MODEL_LIBRARIES], sorted(reached)
    reached = imported_closure("runners.console_summaries")  # the console's lines read the same artifacts
    assert not [m for m in reached if m in MODEL_LIBRARIES], sorted(reached)


def test_no_product_function_is_over_60_lines():
    import ast

    paths = [*PROJECT_ROOT.glob("*.py"), *(p for layer in LAYERS[2:] for p in (PROJECT_ROOT / layer).rglob("*.py"))]
    long = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in paths
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


def test_the_settings_import_nothing_of_the_project_and_load_no_ml_library():
    config_modules = sorted(f"config.{p.stem}" for p in (PROJECT_ROOT / "config").glob("[!_]*.py"))
    assert {"config.settings", "config.training", "config.pipeline", "config.kubeflow"} <= set(config_modules)
    for module in config_modules:  # inside functions too
        assert {name.split(".")[0] for name in imported_closure(module)} <= {"config"}, module
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {', '.join(config_modules)}\n"
            "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam', 'kfp') if m in sys.modules))",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.stdout.strip() == "[]", loaded.stderr[-2000:]
