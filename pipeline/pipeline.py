"""Wires the imdb-bert-tfx components into one TFX pipeline, for any orchestrator."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from components.evaluation import evaluation_report, gating_evaluator, tfma_config
from components.ingestion import imdb_example_gen, imdb_spans
from components.serving import atomic_pusher, served_baseline
from components.training import trainer_component
from components.validation import drift
from components.validation.anomalies_gate import AnomaliesGate
from config import ids
from config.examples import TRAIN_SPLIT, has_spans
from config.pipeline import PipelineConfig


def train_split_config(buckets: Mapping[str, int]) -> example_gen_pb2.SplitConfig:
    """TFX's SplitConfig of hash buckets per split name."""
    return example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=count) for name, count in buckets.items()]
    )


@dataclasses.dataclass
class _Ingestion:
    example_gen: Any
    schema_gen: Any
    gates: list  # what training waits for: no anomalies (and, with stop_on_drift, no drift)
    drift: Any
    components: list


def _ingestion(config: PipelineConfig) -> _Ingestion:
    """Ingest (the newest spans of a series), validate against the curated schema (anomalies stop the run),
    and measure drift: this span against the previous one, eval against train (a stop with stop_on_drift)."""
    data = config.data
    example_gen = imdb_example_gen.ImdbExampleGen(
        source=data.source,
        source_sha256=data.sha256,
        download_dir=data.download_dir,
        train_split_config=train_split_config(data.train_split_buckets),
        test_split_name=data.test_split,
        range_config=imdb_spans.rolling_range(data.spans or 1) if has_spans(data.source) else None,
    ).with_id(ids.EXAMPLE_GEN)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(ids.STATISTICS_GEN)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=data.schema_file).with_id(ids.SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(ids.EXAMPLE_VALIDATOR)
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"]).with_id(ids.ANOMALIES_GATE)
    distribution_validator = drift.DistributionValidator(
        statistics=statistics_gen.outputs["statistics"], config=drift.load_config(data.drift_config_file)
    ).with_id(ids.DISTRIBUTION_VALIDATOR)
    gates = [anomalies_gate]
    if data.stop_on_drift:
        gates.append(drift.DriftGate(anomalies=distribution_validator.outputs["anomalies"]).with_id(ids.DRIFT_GATE))
    return _Ingestion(
        example_gen,
        schema_gen,
        gates,
        distribution_validator,
        [example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate, distribution_validator]
        + gates[1:],
    )


def trainer_backup_root(config: PipelineConfig) -> str:
    """Where the Trainer keeps its epoch backups: outside its execution's folders, so a re-run after a crash or an
    interrupt resumes (see modules/trainer.py)."""
    return config.training.backup_root or os.path.join(config.root, ids.TRAINER, "backup")


def _training(config: PipelineConfig, ingestion: _Ingestion, served_model: Any) -> tuple[Any, Any]:
    """TFX's Tuner with `config.tuning` (else None), and the Trainer (warm-started from the served model with
    `training.warm_start`); both wait for the data gates."""
    examples, schema = ingestion.example_gen.outputs["examples"], ingestion.schema_gen.outputs["schema"]
    custom_config = dataclasses.asdict(dataclasses.replace(config.training, backup_root=trainer_backup_root(config)))
    train_split, eval_split = TRAIN_SPLIT, config.evaluation.split
    tuner = None
    if config.tuning:
        tuner = tfx.components.Tuner(
            tuner_fn="modules.tuner.tuner_fn",
            examples=examples,
            schema=schema,
            train_args=tfx.proto.TrainArgs(splits=[train_split], num_steps=config.tuning.steps),
            eval_args=tfx.proto.EvalArgs(splits=[eval_split], num_steps=config.tuning.eval_steps),
            custom_config={**custom_config, "tuning": config.tuning.custom_config()},
        ).with_id(ids.TUNER)
    trainer = trainer_component.Trainer(
        run_fn="modules.trainer.run_fn",
        examples=examples,
        schema=schema,
        base_model=served_model.outputs["model"] if config.training.warm_start else None,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        train_args=tfx.proto.TrainArgs(splits=[train_split], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[eval_split], num_steps=config.eval_steps),
        custom_config=custom_config,
    ).with_id(ids.TRAINER)
    for component in [tuner, trainer] if tuner else [trainer]:
        for gate in ingestion.gates:
            component.add_upstream_node(gate)
    return tuner, trainer


def _evaluation(config: PipelineConfig, ingestion: _Ingestion, served_model: Any, trainer: Any) -> list:
    """The gating Evaluator (against the served model), the Pusher it decides, the test-split Evaluator (for the
    report only: no thresholds, so its blessing carries no verdict) and the report."""
    examples, evaluation = ingestion.example_gen.outputs["examples"], config.evaluation
    evaluator = gating_evaluator.GatingEvaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=served_model.outputs["model"],
        example_splits=[evaluation.split],
        eval_config=tfma_config.create_eval_config(
            evaluation.accuracy_threshold, evaluation.max_accuracy_drop, evaluation.slice_features
        ),
    ).with_id(ids.EVALUATOR)
    # Pushes to <serving_model_dir>/<unix time>/ only when blessed, whole or not at all (staged, then renamed).
    pusher = atomic_pusher.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)
        ),
    ).with_id(ids.PUSHER)
    test_split = config.data.test_split
    test_evaluator = (
        tfx.components.Evaluator(
            examples=examples,
            model=trainer.outputs["model"],
            example_splits=[test_split],
            eval_config=tfma_config.create_eval_config(None, None, evaluation.slice_features),
        ).with_id(ids.TEST_SET_EVALUATOR)
        if test_split
        else None
    )
    report = evaluation_report.EvaluationReport(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        baseline_model=served_model.outputs["model"],
        model=trainer.outputs["model"],
        examples=examples,
        drift=ingestion.drift.outputs["anomalies"],
        test_evaluation=test_evaluator.outputs["evaluation"] if test_evaluator else None,
        eval_split=evaluation.split,
        test_split=test_split,
    ).with_id(ids.REPORT)
    return [evaluator, pusher] + ([test_evaluator] if test_evaluator else []) + [report]


def create_pipeline(config: PipelineConfig, metadata_connection_config: Any = None) -> tfx.dsl.Pipeline:
    """Ingest and validate, train, evaluate against the served model on this run's eval split, push if blessed,
    report. `metadata_connection_config`: ML Metadata (local: SQLite); None on Kubeflow."""
    ingestion = _ingestion(config)
    # The baseline: the model being served (the newest version under serving_model_dir; only blessed models get
    # there), a plain container task on every orchestrator (components/serving/served_baseline.py).
    served_model = served_baseline.LatestServedModel(serving_model_dir=config.serving_model_dir).with_id(
        ids.SERVED_MODEL
    )
    tuner, trainer = _training(config, ingestion, served_model)
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=config.root,
        components=ingestion.components
        + [served_model]
        + ([tuner] if tuner else [])
        + [trainer]
        + _evaluation(config, ingestion, served_model, trainer),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )
