"""The history of the runs of one output directory, read from its ML Metadata: when, data, encoder and key
settings, eval accuracy, baseline, verdict, pushed version, duration. Printed as a table and written as an HTML
page with a plot of eval accuracy across runs (blessed and rejected marked).

    .venv/bin/python -m runners.runs [--output-dir tfx_output]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import html
import io
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from components import ids
from modules import training_config
from pipeline import configs

HISTORY_PAGE = "runs.html"
# The runner's own start and end of a run, on its pipeline_run context: an interrupted or killed execution records
# no end, so the executions' times cannot say how long such a run lasted.
RUN_STARTED, RUN_ENDED = "run_started", "run_ended"
COLUMNS = ["when", "data", "encoder", "settings", "eval accuracy", "baseline", "verdict", "pushed", "duration"]


@dataclasses.dataclass
class Run:
    run_id: str
    started: float
    seconds: float
    data: str = ""
    encoder: str = ""
    settings: str = ""
    eval_accuracy: float | None = None
    baseline: str = ""
    verdict: str = ""
    pushed: str = ""

    def row(self) -> list[str]:
        return [
            time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started)),
            self.data,
            self.encoder,
            self.settings,
            "" if self.eval_accuracy is None else f"{self.eval_accuracy:.4f}",
            self.baseline,
            self.verdict,
            self.pushed,
            f"{self.seconds / 60:.1f} min",
        ]


def _metadata(metadata_path: str) -> Any:
    """TFX's handle on the SQLite ML Metadata at `metadata_path` (a context manager)."""
    from tfx.orchestration import metadata

    return metadata.Metadata(metadata.sqlite_metadata_connection_config(metadata_path))


def _outputs(handle: Any, execution_id: int) -> dict[str, Any]:
    """Output key -> artifact of an execution, as TFX's Artifact classes (what the components' readers take)."""
    from tfx.orchestration.portable.mlmd import execution_lib

    return {key: artifacts[0] for key, artifacts in execution_lib.get_output_artifacts(handle, execution_id).items()}


def _describe(handle: Any, context: Any, executions: dict[str, Any]) -> Run:
    """The run of the pipeline_run `context` from its executions (component id -> execution)."""
    from ml_metadata.proto import metadata_store_pb2

    from components.evaluation import evaluation_report
    from components.serving import served_baseline
    from components.training import provenance

    times = context.custom_properties
    if RUN_STARTED in times and RUN_ENDED in times:
        started, ended = times[RUN_STARTED].double_value, times[RUN_ENDED].double_value
    else:  # a run the runner did not see end (killed): from its executions' times
        started = min(e.create_time_since_epoch for e in executions.values()) / 1000
        ended = max(e.last_update_time_since_epoch for e in executions.values()) / 1000
    run = Run(context.name, started, ended - started)
    out = {node: _outputs(handle, e.id) for node, e in executions.items()}
    if ids.EXAMPLE_GEN in executions:
        examples = out[ids.EXAMPLE_GEN].get("examples")
        spans = ",".join(map(str, provenance.spans_of(examples))) if examples else ""
        source = executions[ids.EXAMPLE_GEN].custom_properties["source"].string_value
        run.data = os.path.basename(source.rstrip("/")) + (f" spans {spans}" if spans else "")
    if ids.TRAINER in executions:
        properties = executions[ids.TRAINER].custom_properties  # TFX's execution properties, JSON strings
        training = json.loads(properties["custom_config"].string_value or "{}")
        train_args = json.loads(properties["train_args"].string_value or "{}")
        parts = str(training.get("encoder_handle", "")).rstrip("/").split("/")  # .../NAME/encoder, .../NAME/1
        run.encoder = parts[-2] if len(parts) > 1 and (parts[-1] == "encoder" or parts[-1].isdigit()) else parts[-1]
        eval_args = json.loads(properties["eval_args"].string_value or "{}")
        run.settings = training_config.describe(
            {**training, "train_steps": train_args.get("num_steps"), "eval_steps": eval_args.get("num_steps")},
            configs.LABELLED_FIELDS,
        )
    if ids.SERVED_MODEL in executions:
        model = out[ids.SERVED_MODEL].get("model")
        version = model.get_int_custom_property(served_baseline.SERVED_VERSION_PROPERTY) if model else 0
        run.baseline = str(version) if version else "none"
    if report := out.get(ids.REPORT, {}).get("report"):
        if report.has_custom_property(evaluation_report.EVAL_ACCURACY_PROPERTY):
            run.eval_accuracy = report.get_float_custom_property(evaluation_report.EVAL_ACCURACY_PROPERTY)
        run.verdict = "blessed" if report.get_int_custom_property("blessed") else "rejected"
    if (pushed := out.get(ids.PUSHER, {}).get("pushed_model")) and pushed.get_int_custom_property("pushed"):
        run.pushed = pushed.get_string_custom_property("pushed_version")
    failed = [
        node
        for node, e in executions.items()
        if e.last_known_state in (metadata_store_pb2.Execution.FAILED, metadata_store_pb2.Execution.RUNNING)
    ]
    if failed and not run.verdict:
        run.verdict = f"stopped at {failed[0]}"
    return run


def read_runs(metadata_path: str) -> list[Run]:
    """Every pipeline run recorded in the SQLite ML Metadata at `metadata_path`, oldest first."""
    with _metadata(metadata_path) as handle:
        store = handle.store
        node_of = {
            execution.id: context.name.split(".", 1)[-1]
            for context in store.get_contexts_by_type("node")
            for execution in store.get_executions_by_context(context.id)
        }
        runs = []
        for context in store.get_contexts_by_type("pipeline_run"):
            executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
            if executions:
                runs.append(_describe(handle, context, {node_of.get(e.id, str(e.id)): e for e in executions}))
    return sorted(runs, key=lambda r: r.started)


def record_end(metadata_path: str, started: float) -> None:
    """Records `started` and now as the start and end of the run begun at `started` (its pipeline_run context, if
    it has one yet); never fails (a full disk or a damaged store is the run's own failure)."""
    if not os.path.exists(metadata_path):
        return
    try:
        import ml_metadata as mlmd
        from ml_metadata.proto import metadata_store_pb2

        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = metadata_path
        store = mlmd.MetadataStore(config)
        contexts = [
            c for c in store.get_contexts_by_type("pipeline_run") if c.create_time_since_epoch >= int(started * 1000)
        ]
        if contexts:
            context = max(contexts, key=lambda c: c.create_time_since_epoch)
            context.custom_properties[RUN_STARTED].double_value = started
            context.custom_properties[RUN_ENDED].double_value = time.time()
            store.put_contexts([context])
    except Exception:  # noqa: BLE001
        logging.warning("The run's end could not be recorded in %s", metadata_path, exc_info=True)


def component_summary(metadata_path: str, component: str, config: configs.PipelineConfig) -> str:
    """What the newest execution of `component` decided or made, in a few words, for the console: the
    `console_summary(outputs, "cached; " or "")` beside the component."""
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration.portable.mlmd import store_ext

    from components.evaluation import evaluation_report, gate_verdict
    from components.ingestion import imdb_example_gen
    from components.serving import atomic_pusher, served_baseline
    from components.training import provenance
    from components.validation import anomalies_gate, drift

    summaries: dict[str, Callable[[dict[str, Any], str], str]] = {
        ids.EXAMPLE_GEN: imdb_example_gen.console_summary,
        ids.STATISTICS_GEN: drift.statistics_summary,
        ids.ANOMALIES_GATE: anomalies_gate.console_summary,
        ids.DISTRIBUTION_VALIDATOR: drift.console_summary,
        ids.SERVED_MODEL: served_baseline.console_summary,
        ids.TRAINER: provenance.console_summary,
        ids.EVALUATOR: gate_verdict.console_summary,
        ids.TEST_SET_EVALUATOR: gate_verdict.console_summary,
        ids.PUSHER: atomic_pusher.console_summary,
        ids.REPORT: evaluation_report.console_summary,
    }
    with _metadata(metadata_path) as handle:
        execution = store_ext.get_node_executions(handle.store, pipeline_id=config.name, node_id=component)[-1]
        out = _outputs(handle, execution.id)
    cached = "cached; " if execution.last_known_state == metadata_store_pb2.Execution.CACHED else ""
    return summaries[component](out, cached) if component in summaries else cached.rstrip("; ")


def table(runs: list[Run]) -> str:
    rows = [COLUMNS] + [r.row() for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def write_page(runs: list[Run], output_dir: str) -> str:
    """The HTML page in `output_dir`: the plot and the table; returns its path."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure to close
    from matplotlib.ticker import MaxNLocator

    path, image = os.path.join(output_dir, HISTORY_PAGE), ""
    scored = [(i + 1, r) for i, r in enumerate(runs) if r.eval_accuracy is not None]
    if scored:
        figure = Figure(figsize=(8, 3.5))
        axes = figure.subplots()
        axes.plot([i for i, _ in scored], [float(r.eval_accuracy or 0) for _, r in scored], color="0.6", zorder=1)
        for verdict, marker, color in (("blessed", "o", "tab:green"), ("rejected", "x", "tab:red")):
            points = [(i, r.eval_accuracy) for i, r in scored if r.verdict == verdict]
            if points:
                axes.scatter(*zip(*points), marker=marker, color=color, label=verdict, zorder=2)
        axes.set(xlabel="run", ylabel="eval accuracy", title="Eval accuracy across runs", xlim=(0.5, len(runs) + 0.5))
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # runs are counted: no 1.5
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best")  # clear of the points
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=100, bbox_inches="tight")
        data = base64.b64encode(png.getvalue()).decode()
        image = f"<img alt='eval accuracy across runs' src='data:image/png;base64,{data}'>"
    elif runs:
        image = "<p>No run has reached the Evaluator yet: nothing to plot.</p>"
    header = "".join(f"<th>{c}</th>" for c in COLUMNS)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r.row()) + "</tr>\n" for r in runs)
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            f"<!doctype html><meta charset='utf-8'><title>Runs of {html.escape(output_dir)}</title>"
            f"<h1>Runs of {html.escape(output_dir)}</h1>{image}"
            f"<table border=1 cellpadding=4><tr>{header}</tr>\n{cells}</table>"
        )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=configs.OUTPUT_DIR, help="local_runner.py's --output-dir")
    args = parser.parse_args(argv)
    metadata_path = configs.metadata_path(args.output_dir)
    if not os.path.exists(metadata_path):
        parser.exit(2, f"{metadata_path}: no runs recorded; run local_runner.py --output-dir {args.output_dir}\n")
    runs = read_runs(metadata_path)
    print(table(runs))
    print(f"\n{len(runs)} runs; page: {write_page(runs, args.output_dir)}")


if __name__ == "__main__":
    main()
