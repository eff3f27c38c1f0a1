"""Loads a pushed model and classifies raw review text with it."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the BERT preprocessor uses)

from modules import model as model_lib


@dataclasses.dataclass(frozen=True)
class Prediction:
    text: str
    probability: float
    label: str


def latest_pushed_model(serving_model_dir: str) -> str:
    """The newest `<serving_model_dir>/<version>/` SavedModel; versions are increasing integers."""
    versions = [name for name in tf.io.gfile.listdir(serving_model_dir) if name.rstrip("/").isdigit()] \
        if tf.io.gfile.isdir(serving_model_dir) else []
    if not versions:
        raise FileNotFoundError(
            f"{serving_model_dir}: no pushed model version; run the pipeline until a model is blessed.")
    return os.path.join(serving_model_dir, max(versions, key=lambda v: int(v.rstrip("/"))).rstrip("/"))


def latest_pushed_model_or_none(serving_model_dir: str) -> str | None:
    try:
        return latest_pushed_model(serving_model_dir)
    except FileNotFoundError:
        return None


def classify(model_dir: str, texts: list[str]) -> list[Prediction]:
    """Runs the SavedModel's `predict_text` signature on `texts`."""
    loaded = tf.saved_model.load(model_dir)
    if model_lib.TEXT_SIGNATURE not in loaded.signatures:
        raise ValueError(f"{model_dir}: no '{model_lib.TEXT_SIGNATURE}' signature; "
                         f"export it with modules.model.export_serving_model.")
    outputs = loaded.signatures[model_lib.TEXT_SIGNATURE](**{model_lib.TEXT_INPUT: tf.constant(texts)})
    probabilities = outputs[model_lib.PROBABILITY_OUTPUT].numpy().reshape(-1)
    labels = outputs[model_lib.CLASS_OUTPUT].numpy().reshape(-1)
    return [Prediction(t, float(p), l.decode()) for t, p, l in zip(texts, probabilities, labels)]
