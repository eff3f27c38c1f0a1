"""AnomaliesGate: stops the pipeline when ExampleValidator found anomalies, naming each one.

TFX's ExampleValidator records anomalies but lets the pipeline go on; this component fails instead, and
the Trainer runs only after it passes.
"""

import os

from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.types import artifact_utils

SCHEMA_DIFF_FILE = "SchemaDiff.pb"


class DataValidationError(RuntimeError):
    """The examples do not match the schema; the message lists every anomaly."""


def describe_anomalies(anomalies_artifact: "tfx.types.standard_artifacts.ExampleAnomalies") -> list[str]:
    """One line per anomaly: split, feature and TFDV's description."""
    problems = []
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), SCHEMA_DIFF_FILE)
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
            "Data validation failed; training is stopped:\n  " + "\n  ".join(problems)
            + "\nFix the data, or if the change is intended, update the schema (pipeline/schema/schema.pbtxt).")
