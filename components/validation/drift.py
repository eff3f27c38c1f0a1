"""Drift (`train` against `previous_span`, the span before) and skew (`eval` against `train`), measured by TFX's
DistributionValidator within the bounds of pipeline/schema/drift.pbtxt, reported, and with `DriftGate` a stop
before training. On the first span there is no previous span: that comparison is skipped, and said so.
"""

import dataclasses
import os
from typing import Any

from absl import logging
from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.components.distribution_validator import component as distribution_validator_component
from tfx.components.distribution_validator import executor as distribution_validator_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from config.examples import EVAL_SPLIT, PREVIOUS_SPAN_SPLIT, TRAIN_SPLIT

SPLIT_PAIRS = {
    (TRAIN_SPLIT, PREVIOUS_SPAN_SPLIT): "drift: this span's train split vs the previous span",
    (EVAL_SPLIT, TRAIN_SPLIT): "skew: eval split vs train split",
}  # (test, baseline): report label
MEASURES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: "L-infinity distance",
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: "Jensen-Shannon divergence",
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE: "normalized difference",
}


class DriftError(RuntimeError):
    """A measure beyond its bound (with --stop-on-drift); the message names the feature, measure and bound."""


def load_config(path: str) -> distribution_validator_pb2.DistributionValidatorConfig:
    """The DistributionValidatorConfig in text format at `path` (pipeline/schema/drift.pbtxt)."""
    return io_utils.parse_pbtxt_file(path, distribution_validator_pb2.DistributionValidatorConfig())


class Executor(distribution_validator_executor.Executor):
    """TFX's DistributionValidator over the pairs whose splits exist, recording the pairs it skipped."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> Any:
        statistics = artifact_utils.get_single_instance(input_dict[standard_component_specs.STATISTICS_KEY])
        splits = set(artifact_utils.decode_split_names(statistics.split_names))
        wanted = [tuple(p) for p in json_utils.loads(exec_properties[standard_component_specs.INCLUDE_SPLIT_PAIRS_KEY])]
        present = [p for p in wanted if set(p) <= splits]
        skipped = ["_".join(p) for p in wanted if p not in present]  # DistributionValidator's name for a pair
        for name in skipped:
            logging.info("Not compared: %s (no such split; on the first span there is no previous span)", name)
        anomalies = artifact_utils.get_single_instance(output_dict[standard_component_specs.ANOMALIES_KEY])
        anomalies.set_json_value_custom_property("skipped_pairs", skipped)
        config = exec_properties.get(standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY)
        if isinstance(config, str):  # the Kubeflow V2 entrypoint hands proto properties over as their JSON
            config = proto_utils.json_to_proto(config, distribution_validator_pb2.DistributionValidatorConfig())
        return super().Do(
            input_dict,
            output_dict,
            {
                **exec_properties,
                standard_component_specs.INCLUDE_SPLIT_PAIRS_KEY: json_utils.dumps(present),
                standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: config,
            },
        )


class DistributionValidator(distribution_validator_component.DistributionValidator):
    """TFX's DistributionValidator over this pipeline's split pairs (`SPLIT_PAIRS`), with `Executor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics: types.BaseChannel, config: distribution_validator_pb2.DistributionValidatorConfig):
        super().__init__(
            statistics=statistics, baseline_statistics=statistics, config=config, include_split_pairs=list(SPLIT_PAIRS)
        )


@dataclasses.dataclass
class Measurement:
    feature: str
    measure: str
    value: float
    threshold: float

    @property
    def beyond(self) -> bool:
        return self.value > self.threshold


@dataclasses.dataclass
class PairResult:
    pair: tuple[str, str]
    compared: bool
    measurements: list[Measurement]

    @property
    def label(self) -> str:
        return SPLIT_PAIRS[self.pair]

    @property
    def problems(self) -> list[str]:
        return [
            f"{self.label}: feature '{m.feature}', {m.measure} {m.value:.4f} is above the bound {m.threshold:.4f}"
            for m in self.measurements
            if m.beyond
        ]


def read_drift(anomalies: types.Artifact) -> list[PairResult]:
    """Every configured pair: skipped, or each feature's measures against their bounds."""
    compared = artifact_utils.decode_split_names(anomalies.split_names)  # the pairs' names, skipped ones left out
    results = []
    for pair in SPLIT_PAIRS:
        if (name := "_".join(pair)) not in compared:
            results.append(PairResult(pair, False, []))
            continue
        path = os.path.join(anomalies.uri, f"SplitPair-{name}", distribution_validator_executor.DEFAULT_FILE_NAME)
        proto = anomalies_util.load_anomalies_binary(path)
        measurements = [
            Measurement(".".join(info.path.step), MEASURES.get(m.type, str(m.type)), m.value, m.threshold)
            for info in proto.drift_skew_info
            for m in info.drift_measurements
            if m.threshold > 0
        ]
        results.append(PairResult(pair, True, sorted(measurements, key=lambda m: (m.feature, m.measure))))
    return results


@tfx.dsl.components.component
def DriftGate(anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies]) -> None:
    """Raises DriftError if any compared pair has a measure beyond its bound (run with --stop-on-drift)."""
    results = read_drift(anomalies)
    problems = [p for r in results for p in r.problems]
    if problems:
        raise DriftError(
            "Drift beyond its bounds; training is stopped (--stop-on-drift):\n  "
            + "\n  ".join(problems)
            + "\nLook at the new reviews; if the change is expected, raise the bound in pipeline/schema/drift.pbtxt "
            "or run without --stop-on-drift."
        )
    for result in results:
        logging.info(
            "%s: %s", result.label, "within bounds" if result.compared else "not compared (no previous span: first run)"
        )
