"""AnomaliesGate: stops the pipeline, naming each anomaly, on a split that TFX's ExampleValidator did not bless
(ExampleValidator records its verdict but lets the pipeline go on); the Trainer runs only after it passes.
"""

import os

from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.components.example_validator import executor as example_validator_executor
from tfx.types import artifact_utils


class DataValidationError(RuntimeError):
    """The examples do not match the schema; the message lists every anomaly."""


def describe_anomalies(anomalies_artifact: "tfx.types.standard_artifacts.ExampleAnomalies") -> list[str]:
    """One line per anomaly of each split ExampleValidator did not bless: split, feature and TFDV's description."""
    blessed = (
        anomalies_artifact.get_json_value_custom_property(example_validator_executor.ARTIFACT_PROPERTY_BLESSED_KEY)
        or {}
    )
    problems = []
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        if blessed.get(split) == example_validator_executor.BLESSED_VALUE:
            continue
        path = os.path.join(
            artifact_utils.get_split_uri([anomalies_artifact], split), example_validator_executor.DEFAULT_FILE_NAME
        )
        anomalies = anomalies_util.load_anomalies_binary(path)
        for feature, info in sorted(anomalies.anomaly_info.items()):
            problems.append(f"split '{split}', feature '{feature}': {info.short_description} ({info.description})")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            problems.append(f"split '{split}', dataset: {info.short_description} ({info.description})")
    return problems


@tfx.dsl.components.component
def AnomaliesGate(anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
    """Raises DataValidationError if any split has an anomaly."""
    problems = describe_anomalies(anomalies)
    if problems:
        raise DataValidationError(
            "Data validation failed; training is stopped:\n  "
            + "\n  ".join(problems)
            + "\nFix the data, or if the change is intended, update the schema (pipeline/schema/schema.pbtxt)."
        )
