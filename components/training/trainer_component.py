"""What a model was trained on and started from, written into the model itself (`assets.extra/`), so the report
can say it for the candidate and the served baseline on any orchestrator: the spans read, with --warm-start the
served version started from, with --tune the values the Tuner chose."""

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

from components.serving import served_baseline
from config.training import TrainingConfig
from modules.model_interface import SPANS_PROPERTY

PROVENANCE_FILE = os.path.join("assets.extra", "training_provenance.json")


def spans_of(examples: types.Artifact) -> list[int]:
    """The spans an Examples artifact holds ([] for a source without spans)."""
    return [int(s) for s in examples.get_string_custom_property(SPANS_PROPERTY).split(",") if s]


def provenance(
    examples: types.Artifact, base_model: list[types.Artifact], warm_start: bool, hyperparameters: list[types.Artifact]
) -> dict[str, Any]:
    """The training record of a model trained on `examples`, from `base_model` with `warm_start`."""
    started_from = None
    if warm_start and served_baseline.baseline_model_uri(base_model):
        model = base_model[0]
        started_from = {
            "served_version": model.get_int_custom_property(served_baseline.SERVED_VERSION_PROPERTY),
            "served_from": model.get_string_custom_property(served_baseline.SERVED_FROM_PROPERTY),
        }
    source = {
        key: examples.get_string_custom_property(key)
        for key in ("source", "source_fingerprint")
        if examples.has_custom_property(key)
    }
    tuned = None  # the values TFX's Tuner chose (its best_hyperparameters artifact)
    if hyperparameters:
        tuned = json.loads(io_utils.read_string_file(io_utils.get_only_uri_in_dir(hyperparameters[0].uri)))["values"]
    return {
        "examples": examples.uri,
        **source,
        "spans": spans_of(examples),
        "warm_started_from": started_from,
        "tuned": tuned,
    }


def read_provenance(model_dir: str | None) -> dict[str, Any] | None:
    """The record in an exported model folder, or None (no model, or trained before records were kept)."""
    path = os.path.join(model_dir or "", PROVENANCE_FILE)
    return json.loads(io_utils.read_string_file(path)) if model_dir and fileio.exists(path) else None


def describe_provenance(record: dict[str, Any] | None) -> str:
    """'spans 2, 3; warm-started from served version 17...' or what is unknown."""
    if record is None:
        return "unknown (no training record in the model)"
    source = record.get("source", "the source")
    source += f" ({record['source_fingerprint']})" if record.get("source_fingerprint") else ""
    spans = f"spans {', '.join(map(str, record['spans']))} of {source}" if record["spans"] else source
    started = record["warm_started_from"]
    origin = (
        f"warm-started from served version {started['served_version']}"
        if started
        else "trained from the pretrained encoder"
    )
    tuned = record.get("tuned")
    chosen = "; tuned: " + ", ".join(f"{k} {v:g}" for k, v in sorted(tuned.items())) if tuned else ""
    return f"{spans}; {origin}{chosen}"


class TrainerExecutor(trainer_executor.GenericExecutor):
    """TFX's GenericExecutor (without an empty base model), then the training record written into the model."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        keys = standard_component_specs
        input_dict = served_baseline.without_empty_baseline(input_dict, keys.BASE_MODEL_KEY)
        super().Do(input_dict, output_dict, exec_properties)
        config = json_utils.loads(exec_properties.get(keys.CUSTOM_CONFIG_KEY, "null"))
        record = provenance(
            artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY]),
            input_dict.get(keys.BASE_MODEL_KEY) or [],
            TrainingConfig.from_custom_config(config).warm_start,
            input_dict.get(keys.HYPERPARAMETERS_KEY) or [],
        )
        model = artifact_utils.get_single_instance(output_dict[keys.MODEL_KEY])
        io_utils.write_string_file(
            os.path.join(path_utils.serving_model_path(model.uri), PROVENANCE_FILE), json.dumps(record, indent=2)
        )
        logging.info("Training record: %s", describe_provenance(record))


class Trainer(tfx.components.Trainer):
    """TFX's Trainer, recording in the model what it was trained on (`TrainerExecutor`)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrainerExecutor)
