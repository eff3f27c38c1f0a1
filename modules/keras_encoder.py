"""Loads a TF Hub BERT encoder as a Keras layer that trains under the global mixed-precision policy.

`hub.KerasLayer` runs the SavedModel's own float32 graph whatever the Keras policy says, so a Hub
encoder never trains in bfloat16 through it. Encoders exported by Model Garden (every BERT on tfhub.dev
from `export_tfhub`, and the ones `modules.hub_bert` builds) record their Keras class and config in the
SavedModel, so they can be rebuilt natively under the current policy and loaded with the Hub weights.
The rebuilt encoder is accepted only if, in float32, it reproduces the Hub encoder's outputs; anything
else (another architecture, an old export without Keras metadata) falls back to `hub.KerasLayer`.

A classifier that reads only `pooled_output` (the first token of the last layer) can rebuild the encoder
with Model Garden's `output_range=1`: its last layer still attends over every token but computes queries,
attention output and feed-forward for the first token only (about a fifth of a 4-layer encoder's work), with
the same `pooled_output`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
from absl import logging
from official.nlp.modeling import networks

from modules import hardware

try:
    from tf_keras.protobuf import saved_metadata_pb2
except ImportError:  # pragma: no cover (tf_keras is a locked dependency)
    saved_metadata_pb2 = None

KERAS_METADATA_FILE = "keras_metadata.pb"
REBUILDABLE_CLASSES = (networks.BertEncoder, networks.BertEncoderV2)
# The rebuilt encoder must match the Hub encoder this closely (max abs difference of its outputs, float32).
REBUILD_TOLERANCE = 1e-4
_PROBE_SEQ_LENGTH = 16


class NativeEncoderUnavailable(Exception):
    """The Hub encoder cannot be rebuilt as a native Keras layer; `hub.KerasLayer` must be used."""


def _approximate_gelu(x: tf.Tensor) -> tf.Tensor:
    return tf.keras.activations.gelu(x, approximate=True)


def _encoder_class_and_config(saved_model_dir: str) -> tuple[type, dict[str, Any]]:
    """The Model Garden encoder class and config recorded in the SavedModel's Keras metadata."""
    metadata_path = os.path.join(saved_model_dir, KERAS_METADATA_FILE)
    if saved_metadata_pb2 is None or not tf.io.gfile.exists(metadata_path):
        raise NativeEncoderUnavailable(f"{saved_model_dir} has no {KERAS_METADATA_FILE}")
    metadata = saved_metadata_pb2.SavedMetadata()
    with tf.io.gfile.GFile(metadata_path, "rb") as f:
        metadata.ParseFromString(f.read())
    found = []
    for node in metadata.nodes:
        node_metadata = json.loads(node.metadata)
        cls = tf.keras.utils.get_registered_object(node_metadata.get("class_name", ""))
        if isinstance(cls, type) and issubclass(cls, REBUILDABLE_CLASSES):
            found.append((cls, node_metadata["config"]))
    if len(found) != 1:
        raise NativeEncoderUnavailable(
            f"{saved_model_dir} holds {len(found)} Model Garden BERT encoders, not exactly one")
    return found[0]


def _activation_candidates(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Configs to try: as recorded, and with tanh-approximate GELU when it says just "gelu" (both
    variants serialize to that name, and BERT checkpoints use either)."""
    candidates = [config]
    for key in ("inner_activation", "activation"):
        if config.get(key) == "gelu":
            candidates.append({**config, key: _approximate_gelu})
    return candidates


def _copy_weights(source: dict[str, tf.Variable], encoder: tf.keras.Model, saved_model_dir: str) -> None:
    trainable_names = {name for name, v in source.items() if v.trainable}
    if len(encoder.weights) != len(trainable_names):
        raise NativeEncoderUnavailable(
            f"rebuilt encoder has {len(encoder.weights)} weights, {saved_model_dir} has {len(trainable_names)}")
    for weight in encoder.weights:
        variable = source.get(weight.name)
        if variable is None or variable.shape != weight.shape:
            raise NativeEncoderUnavailable(f"no variable {weight.name} {weight.shape} in {saved_model_dir}")
        weight.assign(variable)


def _probe_inputs(vocab_size: int) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    mask = np.ones((2, _PROBE_SEQ_LENGTH), np.int32)
    mask[1, _PROBE_SEQ_LENGTH // 2:] = 0
    return {
        "input_word_ids": tf.constant(rng.integers(0, vocab_size, mask.shape), tf.int32) * mask,
        "input_mask": tf.constant(mask),
        "input_type_ids": tf.zeros_like(mask),
    }


def _max_difference(expected: dict[str, Any], actual: dict[str, Any],
                    keys: tuple[str, ...] = ("pooled_output", "sequence_output")) -> float:
    return max(float(tf.reduce_max(tf.abs(tf.cast(actual[key], tf.float32) - expected[key]))) for key in keys)


def _rebuild(cls: type, config: dict[str, Any], hub_variables: dict[str, tf.Variable], saved_model_dir: str,
             policy: str) -> tf.keras.Model:
    with hardware.keras_policy(policy):
        encoder = cls.from_config(config)
    _copy_weights(hub_variables, encoder, saved_model_dir)
    return encoder


def native_encoder(saved_model_dir: str, *, pooled_output_only: bool = False) -> Callable[[], tf.keras.Model]:
    """Verifies that the Hub encoder at `saved_model_dir` rebuilds natively; returns a factory that
    builds it, with the Hub weights, under the global policy at call time. With `pooled_output_only`,
    the encoder's last layer computes the first token only: `pooled_output` is the Hub encoder's, and
    `sequence_output` holds that one token.

    Raises NativeEncoderUnavailable when it cannot be rebuilt faithfully."""
    cls, config = _encoder_class_and_config(saved_model_dir)
    hub_encoder = hub.load(saved_model_dir)
    hub_variables = {v.name: v for v in hub_encoder.variables}
    probe = _probe_inputs(int(config["vocab_size"]))
    expected = hub_encoder(probe, training=False)
    differences = {}
    for candidate in _activation_candidates(config):
        rebuilt = _rebuild(cls, candidate, hub_variables, saved_model_dir, "float32")
        differences[str(candidate.get("inner_activation", candidate.get("activation")))] = difference = (
            _max_difference(expected, rebuilt(probe, training=False)))
        if difference <= REBUILD_TOLERANCE:
            return _verified_factory(cls, candidate, hub_variables, saved_model_dir, probe, expected,
                                     pooled_output_only)
    raise NativeEncoderUnavailable(
        f"rebuilt {cls.__name__} does not reproduce {saved_model_dir} (max abs difference by activation: "
        f"{differences})")


def _verified_factory(cls: type, config: dict[str, Any], hub_variables: dict[str, tf.Variable],
                      saved_model_dir: str, probe: dict[str, tf.Tensor], expected: dict[str, Any],
                      pooled_output_only: bool) -> Callable[[], tf.keras.Model]:
    if pooled_output_only:
        config = {**config, "output_range": 1}
        difference = _max_difference(
            expected, _rebuild(cls, config, hub_variables, saved_model_dir, "float32")(probe, training=False),
            keys=("pooled_output",))
        if difference > REBUILD_TOLERANCE:
            raise NativeEncoderUnavailable(
                f"{cls.__name__} with output_range=1 changes pooled_output of {saved_model_dir} by {difference}")
    return lambda: _rebuild(cls, config, hub_variables, saved_model_dir,
                            tf.keras.mixed_precision.global_policy().name)


def encoder_layer(handle: str, *, pooled_output_only: bool = False) -> tf.keras.layers.Layer:
    """The trainable encoder at `handle` as a Keras layer that computes in the global policy's dtype.

    Model Garden encoders are rebuilt natively (see the module docstring), computing only what
    `pooled_output` needs when `pooled_output_only`; any other encoder is wrapped in `hub.KerasLayer`, as
    in the tutorial, and then computes all its outputs, in float32 whatever the policy."""
    policy = tf.keras.mixed_precision.global_policy()
    try:
        encoder = native_encoder(hub.resolve(handle), pooled_output_only=pooled_output_only)()
    except NativeEncoderUnavailable as reason:
        log = logging.warning if policy.compute_dtype != "float32" else logging.info
        log("Encoder %s is used through hub.KerasLayer and computes in float32: %s", handle, reason)
        return hub.KerasLayer(handle, trainable=True, name="encoder")
    logging.info("Encoder %s rebuilt natively; it computes in %s%s", handle, policy.compute_dtype,
                 "; its last layer for the first token only" if pooled_output_only else "")
    return encoder
