"""The run history of one output directory, kept in its ML Metadata: each pipeline run read back as a `Run` (when,
data, encoder and key settings, eval accuracy, baseline, verdict, pushed version, duration), the runner's record of
a run's end, and a component's newest outputs."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

from config import ids
from config import pipeline as configs
from config import training as training_config

# The runner's own start and end of a run, on its pipeline_run context: an interrupted or killed execution records
# no end, so the executions' times cannot say how long such a run lasted.
RUN_STARTED, RUN_ENDED = "run_started", "run_ended"


@dataclasses.dataclass
class RunRecord:
    """One pipeline run as the history lists it: its start (seconds since the epoch), length (seconds) and eval
    accuracy (None before the Evaluator); the rest as text ("" where the run did not get that far)."""

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


def _metadata(metadata_path: str) -> Any:
    """TFX's handle on the SQLite ML Metadata at `metadata_path` (a context manager)."""
    from tfx.orchestration import metadata

    return metadata.Metadata(metadata.sqlite_metadata_connection_config(metadata_path))


def _outputs(handle: Any, execution_id: int) -> dict[str, Any]:
    """Output key -> artifact of an execution, as TFX's Artifact classes (what the components' readers take)."""
    from tfx.orchestration.portable.mlmd import execution_lib

    return {key: artifacts[0] for key, artifacts in execution_lib.get_output_artifacts(handle, execution_id).items()}


def _describe(handle: Any, context: Any, executions: dict[str, Any]) -> RunRecord:
    """The run of the pipeline_run `context` from its executions (component id -> execution)."""
    from ml_metadata.proto import metadata_store_pb2

    from components.evaluation import evaluation_report
    from components.serving import served_baseline
    from components.training import trainer_component

    times = context.custom_properties
    if RUN_STARTED in times and RUN_ENDED in times:
        started, ended = times[RUN_STARTED].double_value, times[RUN_ENDED].double_value
    else:  # a run the runner did not see end (killed): from its executions' times
        started = min(e.create_time_since_epoch for e in executions.values()) / 1000
        ended = max(e.last_update_time_since_epoch for e in executions.values()) / 1000
    run = RunRecord(context.name, started, ended - started)
    out = {node: _outputs(handle, e.id) for node, e in executions.items()}
    if ids.EXAMPLE_GEN in executions:
        examples = out[ids.EXAMPLE_GEN].get("examples")
        spans = ",".join(map(str, trainer_component.spans_of(examples))) if examples else ""
        source = executions[ids.EXAMPLE_GEN].custom_properties["source"].string_value
        run.data = os.path.basename(source.rstrip("/")) + (f" spans {spans}" if spans else "")
    if ids.TRAINER in executions:
        properties = executions[ids.TRAINER].custom_properties  # TFX's execution properties, JSON strings
        training = json.loads(properties["custom_config"].string_value or "{}")
        train_args = json.loads(properties["train_args"].string_value or "{}")
        parts = str(training.get("encoder_handle", "")).rstrip("/").split("/")  # .../NAME/encoder, .../NAME/1
        run.encoder = parts[-2] if len(parts) > 1 and (parts[-1] == "encoder" or parts[-1].isdigit()) else parts[-1]
        eval_args = json.loads(properties["eval_args"].string_value or "{}")
        run.settings = training_config.describe_settings(
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


def read_runs(metadata_path: str) -> list[RunRecord]:
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


def newest_outputs(metadata_path: str, pipeline_name: str, component: str) -> tuple[dict[str, Any], bool]:
    """Output key -> artifact of the newest execution of `component`, and whether it was reused from the cache."""
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration.portable.mlmd import store_ext

    with _metadata(metadata_path) as handle:
        execution = store_ext.get_node_executions(handle.store, pipeline_id=pipeline_name, node_id=component)[-1]
        outputs = _outputs(handle, execution.id)
    return outputs, execution.last_known_state == metadata_store_pb2.Execution.CACHED
