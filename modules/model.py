"""The tutorial's ("Classify text with BERT") classifier: Hub BERT preprocessor + encoder, dropout, one logit;
and its serving export, whose signatures take serialized tf.Examples (`serving_default`, for TFMA and TF Serving)
or raw strings (`predict_text`) and return the positive-class probability and the class name.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (registers the ops the BERT preprocessor uses)

from config.examples import TEXT_FEATURE
from config.training import FLOAT32, HEAD
from modules import hardware, keras_encoder, review_text
from modules.model_interface import (
    CLASS_NAME_OUTPUT,
    CLASS_NAMES,
    ENCODER_INPUTS,
    INPUT_MASK,
    POOLED_OUTPUT,
    PROBABILITY_OUTPUT,
    SERVING_INPUT,
    SERVING_SIGNATURE,
    TEXT_INPUT,
    TEXT_SIGNATURE,
)

# TF Serving replays these requests at load time, so the first real request does not pay for tracing.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_TEXTS = ("This movie was wonderful, I loved every minute.", "A dull, tedious film.")


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """What the classifier is made of."""

    preprocess_handle: str
    encoder_handle: str
    seq_length: int
    dropout_rate: float
    truncation: str = HEAD
    attention_dropout_rate: float | None = None  # None: the encoder's own


@dataclasses.dataclass(frozen=True)
class ClassifierParts:
    """The classifier in two parts, so training can tokenize in the input pipeline: `preprocessor` (raw strings
    to encoder inputs) and `logit_model` (encoder inputs to one logit; every trainable weight)."""

    spec: ClassifierSpec
    precision: str
    preprocessor: Preprocessor
    logit_model: tf.keras.Model

    def text_classifier(self) -> tf.keras.Model:
        """Raw string in, one logit out: the tutorial's model."""
        text = tf.keras.layers.Input(shape=(), dtype=tf.string, name=TEXT_INPUT)
        return tf.keras.Model(text, self.logit_model(self.preprocessor(text)), name="bert_sentiment_classifier")


class Preprocessor(tf.keras.layers.Layer):
    """Raw reviews to encoder inputs with the Hub preprocessor, normalized and cut by `truncation` (`review_text`)."""

    def __init__(self, preprocess_handle: str, seq_length: int, truncation: str = HEAD, **kwargs):
        super().__init__(name="preprocessor", trainable=False, **kwargs)
        review_text.head_and_tail_lengths(truncation, seq_length)  # validates both
        preprocessor = hub.load(preprocess_handle)
        self.seq_length, self.truncation = seq_length, truncation
        self.tokenize = hub.KerasLayer(preprocessor.tokenize, name="tokenize")
        self.pack = hub.KerasLayer(
            preprocessor.bert_pack_inputs, arguments=dict(seq_length=seq_length), name="bert_pack_inputs"
        )

    def call(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        tokens = self.tokenize(review_text.normalize(text)).merge_dims(-2, -1)
        return self.pack([review_text.truncate(tokens, self.truncation, self.seq_length)])


def build_classifier(spec: ClassifierSpec, precision: str = FLOAT32) -> ClassifierParts:
    """Hub preprocessor; trainable encoder, dropout on `pooled_output` and a float32 logit, under `precision`."""
    with hardware.keras_policy(precision):
        preprocessor = Preprocessor(spec.preprocess_handle, spec.seq_length, spec.truncation)
        # Any sequence length up to `seq_length`: serving trims padding (see ServingModule).
        encoder_inputs = {
            name: tf.keras.layers.Input(shape=(None,), dtype=tf.int32, name=name) for name in ENCODER_INPUTS
        }
        encoder = keras_encoder.encoder_layer(
            spec.encoder_handle, pooled_output_only=True, attention_dropout_rate=spec.attention_dropout_rate
        )
        pooled = tf.keras.layers.Dropout(spec.dropout_rate, name="dropout")(encoder(encoder_inputs)[POOLED_OUTPUT])
        logit = tf.keras.layers.Dense(1, activation=None, name="classifier", dtype="float32")(pooled)
        logit_model = tf.keras.Model(encoder_inputs, logit, name="logit_model")
    return ClassifierParts(spec, precision, preprocessor, logit_model)


def float32_copy(classifier: ClassifierParts) -> ClassifierParts:
    """The same classifier and weights computing in float32 (what the export serves: exact, fast on any CPU)."""
    if classifier.precision == FLOAT32:
        return classifier
    copy = build_classifier(classifier.spec, FLOAT32)
    copy.logit_model.set_weights(classifier.logit_model.get_weights())
    return copy


def trim_padding(encoder_inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Cuts the padding columns every sequence of the batch has: the encoder masks them out anyway."""
    longest = tf.reduce_max(tf.reduce_sum(encoder_inputs[INPUT_MASK], axis=1))
    return {name: tensor[:, :longest] for name, tensor in encoder_inputs.items()}


class ServingModule(tf.Module):
    """Wraps a trained classifier, in float32, with the serving signatures."""

    def __init__(self, classifier: ClassifierParts, trim: bool = True):
        super().__init__()
        copy = float32_copy(classifier)
        self.preprocessor, self.logit_model, self.trim = copy.preprocessor, copy.logit_model, trim

    def _outputs(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        encoder_inputs = self.preprocessor(text)
        if self.trim:
            encoder_inputs = trim_padding(encoder_inputs)
        probability = tf.sigmoid(self.logit_model(encoder_inputs, training=False))  # a float32 logit
        class_name = tf.where(probability >= 0.5, CLASS_NAMES[1], CLASS_NAMES[0])
        return {PROBABILITY_OUTPUT: probability, CLASS_NAME_OUTPUT: class_name}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serve_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_example(examples, {TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string)})
        return self._outputs(features[TEXT_FEATURE])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    def predict_text(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._outputs(text)


def text_example(text: str) -> bytes:
    """A serialized tf.Example with the `text` feature, as `serving_default` takes."""
    feature = {TEXT_FEATURE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def export_serving_model(classifier: ClassifierParts, export_dir: str, trim: bool = True) -> None:
    """Saves `classifier`, in float32, with both signatures and a `serving_default` PredictRequest as TF Serving's
    warm-up request. `trim=False` pads every batch to `seq_length` (only for bench/inference_benchmark.py)."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    module = ServingModule(classifier, trim)
    tf.saved_model.save(
        module,
        export_dir,
        signatures={
            SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
            TEXT_SIGNATURE: module.predict_text.get_concrete_function(),
        },
    )
    request = predict_pb2.PredictRequest(
        model_spec={"signature_name": SERVING_SIGNATURE},
        inputs={SERVING_INPUT: tf.make_tensor_proto([text_example(t) for t in WARMUP_TEXTS], dtype=tf.string)},
    )
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    tf.io.gfile.makedirs(os.path.join(export_dir, os.path.dirname(WARMUP_FILE)))
    with tf.io.TFRecordWriter(os.path.join(export_dir, WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())
