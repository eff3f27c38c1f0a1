"""TFX Tuner entry point (`tuner_fn`): a KerasTuner random search, each trial a short fine-tuning of the
Trainer's classifier. KerasTuner's `Tuner` wants a Keras 3 model, which the tf_keras classifier is not, so
trials run on its `BaseTuner` (oracle, bookkeeping, `best_hyperparameters`) with the Trainer's own code.
"""

from __future__ import annotations

import keras_tuner
import tensorflow as tf
from absl import logging
from tfx import v1 as tfx

from config.training import TrainingConfig, TuningConfig
from modules import hardware, trainer
from modules import model as model_lib

OBJECTIVE = trainer.BEST_EPOCH_METRIC


class ClassifierSearch(keras_tuner.engine.base_tuner.BaseTuner):
    """Each trial: the Trainer's classifier with the trial's values, fine-tuned; its validation accuracy scores it."""

    def __init__(self, config: TrainingConfig, fn_args: tfx.components.FnArgs, **kwargs):
        super().__init__(**kwargs)
        self.config, self.fn_args = config, fn_args

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        config = self.config.tuned(trial.hyperparameters.get_config())
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(config.seed)
        classifier = model_lib.build_classifier(
            trainer.classifier_spec(config), hardware.resolve_precision(config.precision)
        )
        steps = self.fn_args.train_steps
        trainer.compile_classifier(classifier, config, steps)
        history = classifier.logit_model.fit(
            trainer.train_dataset(self.fn_args, config, classifier.preprocessor),
            epochs=1,
            steps_per_epoch=steps,
            validation_data=trainer.eval_dataset(self.fn_args, config, classifier.preprocessor),
            callbacks=[trainer.StopWhenAsked()],
            verbose=2,
        )
        score = max(history.history[OBJECTIVE])
        logging.info("Trial %s: %s -> %s %.4f", trial.trial_id, trial.hyperparameters.values, OBJECTIVE, score)
        return {OBJECTIVE: score}  # only the hyperparameters are kept, no model


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """TFX Tuner entry point. `custom_config`: the Trainer's TrainingConfig plus `tuning` (a TuningConfig);
    `train_steps` per trial (required), `eval_steps` validation batches (None: the whole eval split)."""
    custom_config = dict(fn_args.custom_config)
    tuning = TuningConfig.from_custom_config(custom_config.pop("tuning"))
    config = TrainingConfig.from_custom_config(custom_config)
    if not fn_args.train_steps:
        raise ValueError("the Tuner needs TrainArgs.num_steps: the steps of each trial (--tune-steps)")
    space = keras_tuner.HyperParameters()
    for name, values in tuning.values:  # () tries the training's value only
        space.Choice(name, list(values or (getattr(config, name),)))
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(OBJECTIVE, "max"),
        max_trials=tuning.trials,
        seed=config.seed,
        hyperparameters=space,
        tune_new_entries=False,
    )
    search = ClassifierSearch(
        config, fn_args, oracle=oracle, directory=fn_args.working_dir, project_name="imdb_bert_tuning", overwrite=True
    )
    return tfx.components.TunerFnResult(tuner=search, fit_kwargs={})
