"""Wires the imdb-bert-tfx components into one TFX pipeline, for any orchestrator."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2 as tfma_config
from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from components import atomic_pusher
from components import drift, imdb_spans
from components.anomalies_gate import AnomaliesGate
from components.evaluation_report import EvaluationReport
from components.imdb_example_gen import ImdbExampleGen
from components.provenance import Trainer
from components.served_baseline import Evaluator, LatestServedModel
from modules import model_interface
from modules.training_config import TrainingConfig, TuningConfig
from pipeline import configs
from pipeline.evaluation_config import EvaluationConfig

TRAINER_RUN_FN = "modules.trainer.run_fn"
TUNER_FN = "modules.tuner.tuner_fn"


def train_split_config(buckets: dict[str, int]) -> example_gen_pb2.SplitConfig:
    return example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=count) for name, count in buckets.items()
    ])


# The TFMA metrics and plots both Evaluators compute (class names), and the one that gates.
ACCURACY_METRIC = "BinaryAccuracy"
REPORTED_METRICS = ("ExampleCount", "BinaryAccuracy", "AUC", "AUCPrecisionRecall", "Precision", "Recall",
                    "MeanLabel", "MeanPrediction", "Calibration")
REPORTED_PLOTS = ("CalibrationPlot", "ConfusionMatrixPlot")


def accuracy_gate(accuracy_threshold: float, max_accuracy_drop: float) -> tfma.MetricThreshold:
    """Bless only if accuracy >= `accuracy_threshold` and >= the baseline's minus `max_accuracy_drop`.

    TFMA drops the change threshold when there is no baseline (the first run): the absolute bound alone
    decides then."""
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_threshold}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_accuracy_drop},
        ),
    )


def create_eval_config(accuracy_threshold: float | None, max_accuracy_drop: float | None,
                       slice_features: tuple[str, ...] = configs.EVAL_SLICE_FEATURES) -> tfma.EvalConfig:
    """TFMA config for the one-logit classifier's `serving_default` (serialized tf.Examples in).

    Metrics and plots overall and per value of each of `slice_features`. With `accuracy_threshold` set,
    the accuracy of the overall slice gates (see `accuracy_gate`); slices are reported, never gated.
    With None, nothing is validated and the Evaluator blesses nothing (the test-split report)."""
    metrics = [tfma.MetricConfig(class_name=name) for name in REPORTED_METRICS + REPORTED_PLOTS]
    if accuracy_threshold is not None:
        if max_accuracy_drop is None:
            raise ValueError("max_accuracy_drop is required with accuracy_threshold")
        accuracy = next(m for m in metrics if m.class_name == ACCURACY_METRIC)
        accuracy.per_slice_thresholds.append(tfma_config.PerSliceMetricThreshold(
            slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_gate(accuracy_threshold, max_accuracy_drop)))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=model_interface.SERVING_SIGNATURE,
            label_key=model_interface.LABEL_FEATURE,
            prediction_key=model_interface.PROBABILITY_OUTPUT,
            preprocessing_function_names=[],
        )],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in slice_features],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    data_source: str,
    data_sha256: str | None,
    download_dir: str,
    train_split_buckets: dict[str, int],
    test_split: str,
    training: TrainingConfig,
    train_num_steps: int | None,
    eval_num_steps: int | None,
    evaluation: EvaluationConfig,
    serving_model_dir: str,
    metadata_connection_config: Any = None,
    beam_pipeline_args: list[str] | None = None,
    schema_file: str,
    drift_config_file: str = configs.DRIFT_CONFIG_FILE,
    stop_on_drift: bool = False,
    spans: int | None = None,
    tuning: TuningConfig | None = None,
    enable_cache: bool = False,
) -> tfx.dsl.Pipeline:
    """Ingest (the newest span of a series), validate (anomalies stop the run), measure drift (a stop with
    stop_on_drift), train (warm-started from the served model with training.warm_start), evaluate against the
    served model on this run's eval split, push if blessed, report (and evaluate the test split, for the
    report only).

    Args:
      pipeline_name: the pipeline's name in ML Metadata and on Kubeflow.
      pipeline_root: where every component writes its artifacts (local path or gs://...).
      data_source: aclImdb folder, tarball or URL (`components.imdb_source`).
      data_sha256: expected SHA-256 of a tarball; None: the known one for the official URL, else unchecked.
      download_dir: where ImdbExampleGen caches downloads and extracted archives.
      train_split_buckets: split name -> hash buckets dividing aclImdb/train (e.g. train 4 : eval 1).
      test_split: the split made from aclImdb/test; "" for a train-only corpus.
      training: the Trainer's hyperparameters (its `custom_config`); checked when built.
      train_num_steps: total optimizer steps (TrainArgs); None: `training.epochs` passes.
      eval_num_steps: validation batches per epoch (EvalArgs); None: the whole eval split.
      evaluation: the gate (thresholds, split) and the slices the Evaluator reports.
      serving_model_dir: blessed models are pushed to `<this>/<version>/`, whole (atomic push).
      schema_file: the curated schema every split is validated against.
      drift_config_file: what DistributionValidator compares, and its bounds (components/drift.py).
      stop_on_drift: stop before training when a drift or skew measure is beyond its bound.
      spans: with a `{SPAN}` data source, read the newest this many spans (None: the newest one).
      tuning: adds TFX's Tuner (modules/tuner.py), whose best values the Trainer then trains with; None: no
        search.
      metadata_connection_config: ML Metadata connection (local: SQLite); None on Kubeflow.
      beam_pipeline_args: options for the Beam-based components (DirectRunner, Dataflow...).
      enable_cache: reuse finished executions whose inputs and properties are unchanged.

    Returns:
      The TFX pipeline, for LocalDagRunner or KubeflowV2DagRunner.
    """
    example_gen = ImdbExampleGen(
        source=data_source,
        source_sha256=data_sha256,
        download_dir=download_dir,
        train_split_config=train_split_config(train_split_buckets),
        test_split_name=test_split,
        range_config=imdb_spans.rolling_range(spans) if spans else None,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])
    # This span against the previous one, and eval against train: reported, and with stop_on_drift a gate.
    distribution_validator = drift.DistributionValidator(
        statistics=statistics_gen.outputs["statistics"], config=drift.load_config(drift_config_file))
    drift_gate = drift.DriftGate(anomalies=distribution_validator.outputs["anomalies"]) if stop_on_drift else None

    # The baseline: the model being served (the newest version under serving_model_dir; only blessed models
    # get there), a plain container task on every orchestrator (see components/served_baseline.py). The
    # Evaluator compares with it, and a warm-started Trainer starts from it.
    served_model = LatestServedModel(serving_model_dir=serving_model_dir)

    # Epoch backups outlive a crashed Trainer execution, so a re-run resumes (see modules/trainer.py).
    custom_config = dataclasses.asdict(dataclasses.replace(
        training, backup_root=training.backup_root or os.path.join(pipeline_root, "Trainer", "backup")))
    tuner = None
    if tuning:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=example_gen.outputs["examples"],
            schema=schema_gen.outputs["schema"],
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=tuning.steps),
            eval_args=tfx.proto.EvalArgs(splits=[evaluation.split], num_steps=tuning.eval_steps),
            custom_config={**custom_config, "tuning": dataclasses.asdict(tuning)},
        )
        tuner.add_upstream_node(anomalies_gate)

    trainer = Trainer(
        run_fn=TRAINER_RUN_FN,
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        base_model=served_model.outputs["model"] if training.warm_start else None,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=train_num_steps),
        eval_args=tfx.proto.EvalArgs(splits=[evaluation.split], num_steps=eval_num_steps),
        custom_config=custom_config,
    )
    trainer.add_upstream_node(anomalies_gate)
    if drift_gate:
        trainer.add_upstream_node(drift_gate)

    # Gates: its blessing decides the push.
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=served_model.outputs["model"],
        example_splits=[evaluation.split],
        eval_config=create_eval_config(evaluation.accuracy_threshold, evaluation.max_accuracy_drop,
                                       evaluation.slice_features),
    )
    # Pushes to <serving_model_dir>/<unix time>/ only when blessed, whole or not at all (staged, then renamed);
    # an existing version is never replaced.
    pusher = atomic_pusher.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)),
    )

    # Held-out accuracy for the user: no thresholds, so this Evaluator's blessing carries no verdict and
    # the Pusher never reads it.
    test_evaluator = None
    if test_split:
        test_evaluator = tfx.components.Evaluator(
            examples=example_gen.outputs["examples"],
            model=trainer.outputs["model"],
            example_splits=[test_split],
            eval_config=create_eval_config(None, None, evaluation.slice_features),
        ).with_id("TestSetEvaluator")

    report = EvaluationReport(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        baseline_model=served_model.outputs["model"],
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        drift=distribution_validator.outputs["anomalies"],
        test_evaluation=test_evaluator.outputs["evaluation"] if test_evaluator else None,
        eval_split=evaluation.split,
        test_split=test_split,
    )

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate,
                    distribution_validator] + ([drift_gate] if drift_gate else []) + [
                    served_model] + ([tuner] if tuner else []) + [trainer, evaluator, pusher] + ([test_evaluator] if test_evaluator else []) + [report],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
