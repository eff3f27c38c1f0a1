"""Training progress reaches the log on a schedule, on a terminal or not: step / total, examples per second,
elapsed time and ETA of the epoch and of the training, and each epoch's validation accuracy."""

import logging
import re

import numpy as np
import tf_keras

from modules import progress


def test_progress_lines_name_the_step_the_rate_and_both_etas(caplog):
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[tf_keras.metrics.BinaryAccuracy()])
    features, labels = np.random.rand(64, 4), np.random.randint(0, 2, (64, 1))
    with caplog.at_level(logging.INFO, logger=progress.LOGGER.name):
        model.fit(
            features,
            labels,
            batch_size=8,
            epochs=2,
            steps_per_epoch=4,
            validation_data=(features, labels),
            callbacks=[progress.ProgressLogger(epochs=2, steps_per_epoch=4, batch_size=8, interval=0)],
            verbose=0,
        )
    lines = [record.getMessage() for record in caplog.records if record.name == progress.LOGGER.name]
    line = re.compile(
        r"epoch ([12])/2  step (\d)/8  [\d.]+ ex/s  epoch \d+:\d\d \(ETA \d+:\d\d\)  "
        r"training \d+:\d\d \(ETA \d+:\d\d\)(, validation accuracy 0\.\d{4}|, validation accuracy 1\.0000)?"
    )
    assert all(line.fullmatch(text) for text in lines), lines
    assert [int(line.fullmatch(text)[2]) for text in lines if "validation" not in text] == list(range(1, 9))
    assert sum("validation accuracy" in text for text in lines) == 2


def test_a_curriculum_shows_the_eta_of_each_length_and_what_follows(caplog):
    """Each fit's rate is its own (steps at another length cost differently), validation passes left out of it;
    the training ETA covers the current length's epochs and names the ones that follow."""
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[tf_keras.metrics.BinaryAccuracy()])
    features, labels = np.random.rand(64, 4), np.random.randint(0, 2, (64, 1))
    logger = progress.ProgressLogger(
        epochs=3,
        steps_per_epoch=4,
        batch_size=8,
        interval=0,
        epoch_seq_lengths=[(16, 2), (32, 1)],
        validation_epochs=[3],
    )
    with caplog.at_level(logging.INFO, logger=progress.LOGGER.name):
        for first_epoch, epochs in ((0, 2), (2, 1)):
            model.fit(
                features,
                labels,
                batch_size=8,
                initial_epoch=first_epoch,
                epochs=first_epoch + epochs,
                steps_per_epoch=4,
                validation_data=(features, labels),
                validation_freq=[3],
                callbacks=[logger],
                verbose=0,
            )
    lines = [record.getMessage() for record in caplog.records if record.name == progress.LOGGER.name]
    short = [line for line in lines if line.startswith(("epoch 1/3", "epoch 2/3"))]
    assert short and all(line.endswith(" at seq 16, then 1 epoch at seq 32)") for line in short), short
    long = [line for line in lines if line.startswith("epoch 3/3")]
    assert long and all(re.search(r"training \d+:\d\d \(ETA \d+:\d\d\)", line) for line in long), long
    assert re.search(r"step 12/12 .*, validation accuracy \d\.\d{4}$", long[-1]), long[-1]
    assert sum("validation accuracy" in line for line in lines) == 1 and logger.validation_seconds is not None
