"""`EvaluationConfig`: how the Evaluator judges a candidate (its gate and its slices), checked before any
work. Light on purpose (no TensorFlow): the runners check it as they parse their flags."""

from __future__ import annotations

import dataclasses

from modules.training_config import ConfigError, check, check_unit_interval


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The gate: bless only at or above `accuracy_threshold` on `split`, and at most `max_accuracy_drop` below
    the last blessed model. Metrics are also reported per value of each of `slice_features`."""

    accuracy_threshold: float
    max_accuracy_drop: float
    split: str
    slice_features: tuple[str, ...]

    def __post_init__(self):
        check_unit_interval("accuracy_threshold", self.accuracy_threshold, closed=True)
        check_unit_interval("max_accuracy_drop", self.max_accuracy_drop, closed=True)
        check("split", self.split, bool(self.split), "must name a split")

    def check_slice_features(self, schema_file: str) -> None:
        """Every slice feature must be a feature of the schema the data is validated against."""
        features = schema_features(schema_file)
        unknown = [f for f in self.slice_features if f not in features]
        if unknown:
            raise ConfigError(f"--slice-features {','.join(self.slice_features)!r}: {', '.join(unknown)} "
                              f"not in the schema {schema_file}; allowed: {', '.join(sorted(features))}")


def schema_features(schema_file: str) -> set[str]:
    """The feature names of a TFMD schema in text format."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        with open(schema_file, encoding="utf-8") as f:
            schema = text_format.Parse(f.read(), schema_pb2.Schema())
    except (OSError, text_format.ParseError) as error:
        raise ConfigError(f"--schema-file {schema_file!r}: cannot be read as a schema ({error})") from error
    return {feature.name for feature in schema.feature}
