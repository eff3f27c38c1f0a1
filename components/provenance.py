"""What a model was trained on and started from, written into the model itself.

`Trainer` is TFX's Trainer (GenericExecutor, `modules.trainer.run_fn`) whose executor then writes
`assets.extra/training_provenance.json` into the exported SavedModel: the spans of the examples it read,
with `--warm-start` the served version it started from, and with `--tune` the values the Tuner chose. The file travels with the model (the Pusher
copies the whole folder, `LatestServedModel` copies it back as the next run's baseline; TF Serving ignores
it), so the report can say which spans the candidate and the served baseline were trained on, whatever
orchestrator ran them; ML Metadata holds the same lineage where there is one.
"""

import json
import os
from typing import Any

from absl import logging
from tfx import types
from tfx import v1 as tfx
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, path_utils

from components import served_baseline
from components.imdb_example_gen import SPANS_PROPERTY
from modules.training_config import TrainingConfig

PROVENANCE_FILE = os.path.join("assets.extra", "training_provenance.json")


def spans_of(examples: types.Artifact) -> list[int]:
    """The spans an Examples artifact holds ([] for a source without spans)."""
    spans = examples.get_string_custom_property(SPANS_PROPERTY) if examples.has_custom_property(SPANS_PROPERTY) else ""
    return [int(s) for s in spans.split(",") if s]


def tuned_values(hyperparameters: types.Artifact | None) -> dict[str, Any] | None:
    """The values TFX's Tuner chose (its best_hyperparameters artifact), or None without a Tuner."""
    if hyperparameters is None:
        return None
    with fileio.open(io_utils.get_only_uri_in_dir(hyperparameters.uri)) as f:
        return json.loads(f.read())["values"]


def provenance(examples: types.Artifact, base_model: types.Artifact | None, warm_start: bool,
               hyperparameters: types.Artifact | None = None) -> dict[str, Any]:
    started_from = None
    if warm_start and base_model is not None and served_baseline.model_path(base_model):
        started_from = {"served_version": base_model.get_int_custom_property(served_baseline.SERVED_VERSION_PROPERTY),
                        "served_from": base_model.get_string_custom_property(served_baseline.SERVED_FROM_PROPERTY)}
    return {"examples": examples.uri, "spans": spans_of(examples), "warm_started_from": started_from,
            "tuned": tuned_values(hyperparameters)}


def read_provenance(model_dir: str | None) -> dict[str, Any] | None:
    """The record in an exported model folder, or None (no model, or trained before records were kept)."""
    path = os.path.join(model_dir, PROVENANCE_FILE) if model_dir else None
    if not path or not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def describe(record: dict[str, Any] | None) -> str:
    """'spans 2, 3; warm-started from served version 17...' or what is unknown."""
    if record is None:
        return "unknown (no training record in the model)"
    spans = "spans " + ", ".join(map(str, record["spans"])) if record["spans"] else "the whole source (no spans)"
    started = record["warm_started_from"]
    origin = (f"warm-started from served version {started['served_version']}" if started
              else "trained from the pretrained encoder")
    tuned = record.get("tuned")
    chosen = "; tuned: " + ", ".join(f"{k} {v:g}" for k, v in sorted(tuned.items())) if tuned else ""
    return f"{spans}; {origin}{chosen}"


class TrainerExecutor(trainer_executor.GenericExecutor):
    """TFX's GenericExecutor, then the training record written into the exported model."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        super().Do(input_dict, output_dict, exec_properties)
        config = TrainingConfig.from_custom_config(
            json_utils.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY, "null")))
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        base_models = input_dict.get(standard_component_specs.BASE_MODEL_KEY) or []
        tuned = input_dict.get(standard_component_specs.HYPERPARAMETERS_KEY) or []
        record = provenance(examples, base_models[0] if base_models else None, config.warm_start,
                            tuned[0] if tuned else None)
        model = artifact_utils.get_single_instance(output_dict[standard_component_specs.MODEL_KEY])
        path = os.path.join(path_utils.serving_model_path(model.uri), PROVENANCE_FILE)
        fileio.makedirs(os.path.dirname(path))
        with fileio.open(path, "w") as f:
            f.write(json.dumps(record, indent=2))
        logging.info("Training record: %s", describe(record))


class Trainer(tfx.components.Trainer):
    """TFX's Trainer, recording in the model what it was trained on (`TrainerExecutor`)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainerExecutor)
