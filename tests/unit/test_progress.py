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
