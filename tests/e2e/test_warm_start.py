"""--warm-start: the Trainer starts from the served SavedModel's weights, or says why it cannot."""

import dataclasses

import numpy as np
import pytest

from components.ingestion import synthetic_corpus
from config.training import TrainingConfig
from modules import hub_bert, trainer
from modules import model as model_lib
from tests.support.tiny_assets import TINY_BERT

pytestmark = pytest.mark.slow


def classifier_spec(bert) -> model_lib.ClassifierSpec:
    return model_lib.ClassifierSpec(str(bert.preprocess), str(bert.encoder), 64, 0.1, "head")


@pytest.fixture(scope="module")
def served(tiny_bert, tmp_path_factory):
    """A 'served' export whose weights differ from a fresh classifier's."""
    trained = model_lib.build_classifier(classifier_spec(tiny_bert))
    rng = np.random.default_rng(0)
    trained.logit_model.set_weights(
        [w + rng.normal(size=w.shape).astype(w.dtype) for w in trained.logit_model.get_weights()]
    )
    export = tmp_path_factory.mktemp("served") / "1"
    model_lib.export_serving_model(trained, str(export))
    return trained, export


@pytest.mark.bfloat16
def test_a_fresh_classifier_takes_the_served_models_weights(served, tiny_bert):
    trained, export = served
    fresh = model_lib.build_classifier(classifier_spec(tiny_bert), "mixed_bfloat16")
    trainer.restore_served_weights(fresh, str(export))
    assert all(np.allclose(a, b) for a, b in zip(trained.logit_model.get_weights(), fresh.logit_model.get_weights()))


def test_a_served_model_of_another_encoder_is_refused_with_what_to_do(served, tmp_path):
    _, export = served
    vocab = hub_bert.write_vocab(synthetic_corpus.LEXICON, tmp_path / "vocab.txt")
    wider = hub_bert.build_random_bert(vocab, tmp_path / "bert", dataclasses.replace(TINY_BERT, hidden_size=48))
    other = model_lib.build_classifier(classifier_spec(wider))
    with pytest.raises(trainer.WarmStartError, match=r"does not fit this classifier .* Train without --warm-start"):
        trainer.restore_served_weights(other, str(export))


def test_without_a_served_model_or_the_flag_training_starts_from_the_encoder(served, tmp_path):
    _, export = served
    config = TrainingConfig(
        preprocess_handle="p", encoder_handle="e", warm_start=True, warm_start_learning_rate=1e-6, warm_start_epochs=2
    )
    assert trainer.warm_start_model(config, str(export)) == str(export)
    empty_baseline = tmp_path / "Format-Serving"  # LatestServedModel's artifact when nothing is served
    assert trainer.warm_start_model(config, str(empty_baseline)) is None
    assert trainer.warm_start_model(config, None) is None
    assert trainer.warm_start_model(TrainingConfig(preprocess_handle="p", encoder_handle="e"), str(export)) is None
    assert (config.warm_started().learning_rate, config.warm_started().epochs) == (1e-6, 2)
