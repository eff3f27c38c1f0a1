"""Classifies reviews with a pushed model (`classify`), in length-sorted batches; the command is `runners.predict`."""

from __future__ import annotations

import dataclasses
import os
import typing

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the BERT preprocessor uses)

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from modules import serving_versions
from modules.model_interface import CLASS_NAME_OUTPUT, PROBABILITY_OUTPUT, TEXT_INPUT, TEXT_SIGNATURE

DEFAULT_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Prediction:
    text: str
    probability: float
    label: str


class PredictError(Exception):
    """A problem with the model or the input, with a message that says what to do."""


def load_text_signature(model_dir: str):
    """The SavedModel's `predict_text` signature, or a PredictError saying why it cannot be used."""
    if os.path.basename(model_dir.rstrip("/")).isdigit() and tf.io.gfile.isdir(model_dir):  # a served version
        try:
            serving_versions.check_servable(model_dir, ())  # its signature is checked below, in detail
        except serving_versions.BrokenServedModel as error:
            raise PredictError(str(error)) from error
    if not tf.saved_model.contains_saved_model(model_dir):
        raise PredictError(
            f"{model_dir}: no SavedModel here (no saved_model.pb). Pass --model with a pushed "
            f"model version folder, or run the pipeline until a model is blessed and pushed."
        )
    signatures = tf.saved_model.load(model_dir).signatures
    signature = signatures.get(TEXT_SIGNATURE)
    if signature is None:
        raise PredictError(
            f"{model_dir}: no '{TEXT_SIGNATURE}' signature (it has {sorted(signatures)}); "
            f"export the model with modules.model.export_serving_model."
        )
    inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
    if (
        set(inputs) != {TEXT_INPUT}
        or inputs[TEXT_INPUT].dtype != tf.string
        or not {PROBABILITY_OUTPUT, CLASS_NAME_OUTPUT} <= set(outputs)
    ):
        raise PredictError(
            f"{model_dir}: '{TEXT_SIGNATURE}' takes {inputs} and returns {sorted(outputs)}; "
            f"expected a string input '{TEXT_INPUT}' and outputs '{PROBABILITY_OUTPUT}' and "
            f"'{CLASS_NAME_OUTPUT}'."
        )
    return signature


def classify(
    model_dir: str, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False
) -> list[Prediction]:
    """`predict_text` on `texts` in length-sorted batches (a progress bar if asked); predictions in input order."""
    return classify_with(load_text_signature(model_dir), texts, batch_size, progress)


def classify_with(
    signature, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False
) -> list[Prediction]:
    """`classify` with a loaded `predict_text` signature."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    bar = tf.keras.utils.Progbar(len(texts), unit_name="review", verbose=int(progress))
    results: list[Prediction | None] = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        outputs = signature(**{TEXT_INPUT: tf.constant([texts[i] for i in batch])})
        probabilities = outputs[PROBABILITY_OUTPUT].numpy().reshape(-1)
        labels = outputs[CLASS_NAME_OUTPUT].numpy().reshape(-1)
        for i, probability, label in zip(batch, probabilities, labels):
            results[i] = Prediction(texts[i], float(probability), label.decode())
        bar.add(len(batch))
    return typing.cast(list[Prediction], results)  # every index filled
