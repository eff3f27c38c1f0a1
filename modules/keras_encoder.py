"""Loads a TF Hub BERT encoder as a Keras layer that trains under the global mixed-precision policy.

`hub.KerasLayer` runs the SavedModel's float32 graph whatever the policy; Model Garden exports (tfhub.dev's BERTs,
`modules.hub_bert`'s) record their Keras class and config, so they are rebuilt natively with the Hub weights when
that reproduces the Hub encoder's outputs. With `output_range=1` the last layer computes the first token only
(all `pooled_output` reads): about a fifth of a 4-layer encoder's work. Its attention computes the scores with
the query first (`QueryFirstAttention`).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
from absl import logging
from official.nlp.modeling import networks
from tf_keras.protobuf import saved_metadata_pb2

from modules import hardware
from modules.model_interface import ENCODER_OUTPUTS, INPUT_MASK, INPUT_TYPE_IDS, INPUT_WORD_IDS, POOLED_OUTPUT

KERAS_METADATA_FILE = "keras_metadata.pb"
REBUILDABLE_CLASSES = (networks.BertEncoder, networks.BertEncoderV2)
# The rebuilt encoder must match the Hub encoder this closely (max abs difference of its outputs, float32).
REBUILD_TOLERANCE = 1e-4
_PROBE_SEQ_LENGTH = 16


class QueryFirstAttention(tf.keras.layers.MultiHeadAttention):
    """Keras' multi-head attention with its scores computed as `einsum(query, key)`, not `einsum(key, query)`.

    The same numbers, but oneDNN's einsum writes the (batch, heads, query, key) scores in its natural layout
    this way round; the other way it computes them transposed and transposes them after: at 32 x 512 tokens
    the scores took 454 ms instead of 178 a layer, and a validation pass is about a fifth faster (`bench/RESULTS.md`,
    "Attention scores the other way round"). Only `_compute_attention`, the override point Keras documents,
    differs."""

    def _compute_attention(self, query, key, value, attention_mask=None, training=None):
        query = tf.multiply(query, 1.0 / math.sqrt(float(self._key_dim)))
        operands, scores_spec = self._dot_product_equation.split("->")
        key_spec, query_spec = operands.split(",")
        scores = tf.einsum(f"{query_spec},{key_spec}->{scores_spec}", query, key)
        scores = self._masked_softmax(scores, attention_mask)
        output = tf.einsum(self._combine_equation, self._dropout_layer(scores, training=training), value)
        return output, scores


def use_query_first_attention(encoder: tf.keras.layers.Layer) -> int:
    """Makes every (built) Keras `MultiHeadAttention` in `encoder` a `QueryFirstAttention`, weights kept; returns
    how many. Model Garden's encoder blocks create theirs from the Keras class itself, with no way to pass one."""
    layers = [layer for layer in encoder.submodules if type(layer) is tf.keras.layers.MultiHeadAttention]
    for layer in layers:
        layer.__class__ = QueryFirstAttention
    return len(layers)


class NativeEncoderUnavailable(Exception):
    """The Hub encoder cannot be rebuilt as a native Keras layer; `hub.KerasLayer` must be used."""


def _encoder_class_and_config(saved_model_dir: str) -> tuple[Any, dict[str, Any]]:
    """The Model Garden encoder class and config recorded in the SavedModel's Keras metadata."""
    metadata_path = os.path.join(saved_model_dir, KERAS_METADATA_FILE)
    if not tf.io.gfile.exists(metadata_path):
        raise NativeEncoderUnavailable(f"{saved_model_dir} has no {KERAS_METADATA_FILE}")
    with tf.io.gfile.GFile(metadata_path, "rb") as f:
        metadata = saved_metadata_pb2.SavedMetadata.FromString(f.read())
    found = []
    for node in metadata.nodes:
        node_metadata = json.loads(node.metadata)
        cls = tf.keras.utils.get_registered_object(node_metadata.get("class_name", ""))
        if isinstance(cls, type) and issubclass(cls, REBUILDABLE_CLASSES):
            found.append((cls, node_metadata["config"]))
    if len(found) != 1:
        raise NativeEncoderUnavailable(
            f"{saved_model_dir} holds {len(found)} Model Garden BERT encoders, not exactly one"
        )
    return found[0]


def native_encoder(
    saved_model_dir: str, *, pooled_output_only: bool = False, attention_dropout_rate: float | None = None
) -> Callable[[], tf.keras.Model]:
    """A factory of the Hub encoder at `saved_model_dir` rebuilt natively (under the global policy at call time),
    verified first; with `pooled_output_only`, `sequence_output` holds the first token only; with
    `attention_dropout_rate`, its attention probabilities are dropped at that rate in training instead of the
    recorded one. Raises NativeEncoderUnavailable when it cannot be rebuilt faithfully."""
    cls, config = _encoder_class_and_config(saved_model_dir)
    hub_encoder = hub.load(saved_model_dir)
    hub_variables = {v.name: v for v in hub_encoder.variables}
    rng, mask = np.random.default_rng(0), np.ones((2, _PROBE_SEQ_LENGTH), np.int32)
    mask[1, _PROBE_SEQ_LENGTH // 2 :] = 0  # the second probe sequence is half padding
    probe = {
        INPUT_WORD_IDS: tf.constant(rng.integers(0, int(config["vocab_size"]), mask.shape), tf.int32) * mask,
        INPUT_MASK: tf.constant(mask),
        INPUT_TYPE_IDS: tf.zeros_like(mask),
    }
    expected = hub_encoder(probe, training=False)

    def rebuild(config: dict[str, Any], policy: str = "float32") -> tf.keras.Model:
        with hardware.keras_policy(policy):
            encoder = cls.from_config(config)
        for weight in encoder.weights:  # a Hub variable the rebuild lacks shows in the verification below
            variable = hub_variables.get(weight.name)
            if variable is None or variable.shape != weight.shape:
                raise NativeEncoderUnavailable(f"no variable {weight.name} {weight.shape} in {saved_model_dir}")
            weight.assign(variable)
        use_query_first_attention(encoder)
        return encoder

    if pooled_output_only:
        config = {**config, "output_range": 1}
    keys = (POOLED_OUTPUT,) if pooled_output_only else ENCODER_OUTPUTS
    # The config as recorded, then with tanh-approximate GELU where it says "gelu" (both serialize so).
    approximate_gelu = functools.partial(tf.keras.activations.gelu, approximate=True)
    candidates = [config] + [
        {**config, key: approximate_gelu} for key in ("inner_activation", "activation") if config.get(key) == "gelu"
    ]
    differences = {}
    for candidate in candidates:
        outputs = rebuild(candidate)(probe, training=False)
        differences[str(candidate.get("inner_activation", candidate.get("activation")))] = difference = max(
            float(tf.reduce_max(tf.abs(tf.cast(outputs[key], tf.float32) - expected[key]))) for key in keys
        )
        if difference <= REBUILD_TOLERANCE:  # dropout acts in training only: the probe cannot see it
            if attention_dropout_rate is not None:
                candidate = {
                    **{k: v for k, v in candidate.items() if k != "attention_dropout_rate"},
                    "attention_dropout": attention_dropout_rate,
                }
            return lambda: rebuild(candidate, tf.keras.mixed_precision.global_policy().name)
    raise NativeEncoderUnavailable(
        f"rebuilt {cls.__name__} does not reproduce {saved_model_dir} (max abs difference by activation: {differences})"
    )


def encoder_layer(
    handle: str, *, pooled_output_only: bool = False, attention_dropout_rate: float | None = None
) -> tf.keras.layers.Layer:
    """The trainable encoder at `handle` in the global policy's dtype if rebuilt natively (its attention dropout
    at `attention_dropout_rate`, None: as recorded), else `hub.KerasLayer` (its own graph, dropout included)."""
    policy = tf.keras.mixed_precision.global_policy()
    try:
        encoder = native_encoder(
            hub.resolve(handle), pooled_output_only=pooled_output_only, attention_dropout_rate=attention_dropout_rate
        )()
    except NativeEncoderUnavailable as reason:
        log = (
            logging.warning if policy.compute_dtype != "float32" or attention_dropout_rate is not None else logging.info
        )
        log(
            "Encoder %s is used through hub.KerasLayer, computes in float32 and keeps its own attention dropout: %s",
            handle,
            reason,
        )
        return hub.KerasLayer(handle, trainable=True, name="encoder")
    logging.info(
        "Encoder %s rebuilt natively; it computes in %s%s",
        handle,
        policy.compute_dtype,
        "; its last layer for the first token only" if pooled_output_only else "",
    )
    return encoder
