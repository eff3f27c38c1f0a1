"""The Trainer module on a tiny random BERT: it learns, exports a consistent model, and resumes after a crash."""

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.types import artifact_utils

from components.ingestion import synthetic_corpus
from config.training import HEAD_AND_TAIL, TRUNCATIONS
from modules import hardware, keras_encoder, progress, review_text, trainer
from modules import model as model_lib
from tests.support import crash_points
from tests.support.example_gen_helpers import run_executor
from tests.support.tiny_assets import TINY_BERT

TEXTS = [
    "A wonderful, moving and brilliant film. I loved it.",
    "Awful. Boring, dull and painful to watch.",
    "It was fine.",
]


@pytest.fixture(scope="module")
def tiny_examples(tiny_corpus, tmp_path_factory):
    return run_executor(tiny_corpus, tmp_path_factory.mktemp("examples") / "Examples")


def fn_args_for(examples, tiny_bert, run_dir: Path, train_steps: int, **config) -> dict:
    split_files = lambda split: [os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz")]
    custom_config = dict(
        preprocess_handle=str(tiny_bert.preprocess),
        encoder_handle=str(tiny_bert.encoder),
        seq_length=64,
        batch_size=16,
        learning_rate=1e-3,
        epochs=3,
        backup_root=str(run_dir.parent / "backup"),
    )
    custom_config.update(config)
    return dict(
        train_files=split_files("train"),
        eval_files=split_files("eval"),
        train_steps=train_steps,
        eval_steps=4,
        serving_model_dir=str(run_dir / "serving"),
        model_run_dir=str(run_dir / "model_run"),
        custom_config=custom_config,
    )


def read_history_csv(model_run_dir: Path) -> list[dict[str, float]]:
    import csv

    with open(model_run_dir / trainer.TRAINING_HISTORY_CSV) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def assert_best_epoch_marked(history: list[dict[str, float]]) -> None:
    """Exactly one epoch is marked best: the last of those with the highest validation accuracy."""
    accuracies = [row["val_binary_accuracy"] for row in history]
    best = max(epoch for epoch, accuracy in enumerate(accuracies, start=1) if accuracy == max(accuracies))
    assert [row["best"] for row in history] == [float(epoch == best) for epoch in range(1, len(history) + 1)]


@pytest.mark.slow
def test_a_curriculum_trains_short_then_long_validates_the_last_epochs_and_resumes_after_a_crash(
    tiny_examples, tiny_bert, tmp_path, monkeypatch, caplog
):
    """Epoch 1 at 32 tokens, epochs 2-3 at 64, validated after 2 and 3 only; killed in epoch 2 (the second fit)
    and run again, it goes on from epoch 2 and exports the better of the validated epochs."""
    args = fn_args_for(
        tiny_examples,
        tiny_bert,
        tmp_path / "run",
        train_steps=30,
        short_seq_length=32,
        short_seq_epochs=1,
        validated_epochs=2,
    )
    seq_lengths: list[int] = []  # of each training dataset made, in order
    make_dataset = trainer.make_dataset
    monkeypatch.setattr(
        trainer,
        "make_dataset",
        lambda *a, **k: seq_lengths.append(k["preprocessor"].seq_length) or make_dataset(*a, **k),
    )

    class Killed(Exception):
        pass

    def kill():  # as the crash point's signal, raising instead (in-process, deterministic)
        raise Killed

    stop_when_asked = trainer.StopWhenAsked
    monkeypatch.setattr(trainer, "StopWhenAsked", crash_points.mid_epoch_callback(stop_when_asked, kill))
    with pytest.raises(Killed):
        trainer.run_fn(FnArgs(**args))
    assert seq_lengths == [32, 64], "epoch 1 at the short length, then the exported one"
    monkeypatch.setattr(trainer, "StopWhenAsked", stop_when_asked)
    caplog.clear()  # the killed run's lines
    with caplog.at_level(logging.INFO, logger=progress.LOGGER.name):
        trainer.run_fn(FnArgs(**args))

    resumed_epochs = {
        int(re.search(r"epoch (\d)/3", r.getMessage())[1]) for r in caplog.records if "/3" in r.getMessage()
    }
    assert resumed_epochs == {2, 3}, "the resumed run goes on from epoch 2 (its first fit has nothing left)"
    history = read_history_csv(Path(args["model_run_dir"]))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert np.isnan(history[0]["val_binary_accuracy"]) and not np.isnan(history[2]["val_binary_accuracy"])
    assert_best_epoch_marked(history[1:])
    assert history[0]["best"] == 0
    assert tf.saved_model.load(args["serving_model_dir"]).signatures[model_lib.TEXT_SIGNATURE] is not None


@pytest.mark.slow
@pytest.mark.bfloat16
def test_training_lowers_the_loss_in_mixed_precision(tiny_examples, tiny_bert, tmp_path):
    args = fn_args_for(tiny_examples, tiny_bert, tmp_path / "run", train_steps=150, precision=hardware.MIXED_BFLOAT16)
    trainer.run_fn(FnArgs(**args))

    history = read_history_csv(Path(args["model_run_dir"]))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert_best_epoch_marked(history)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["val_binary_accuracy"] >= 0.9
    run_dir = Path(args["model_run_dir"])
    assert (run_dir / trainer.TRAINING_HISTORY_PLOT).stat().st_size > 0
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    assert not list((tmp_path / "backup").iterdir()), "a finished run leaves no backup behind"

    exported = tf.saved_model.load(args["serving_model_dir"])
    probabilities = exported.signatures[model_lib.TEXT_SIGNATURE](text=tf.constant(TEXTS))["probability"]
    assert probabilities.dtype == tf.float32, "the export serves in float32 whatever the training precision"
    assert probabilities[0, 0] > 0.5 > probabilities[1, 0]


@pytest.mark.slow
@pytest.mark.bfloat16
def test_export_matches_the_keras_model_through_both_signatures(tiny_bert, tmp_path):
    spec = model_lib.ClassifierSpec(str(tiny_bert.preprocess), str(tiny_bert.encoder), seq_length=64, dropout_rate=0.1)
    classifier = model_lib.build_classifier(spec, hardware.MIXED_BFLOAT16)
    head = classifier.logit_model.get_layer("classifier")
    head.set_weights([np.full_like(w, 0.3) for w in head.get_weights()])  # non-trivial probabilities
    model_lib.export_serving_model(classifier, str(tmp_path / "export"))

    # The export trims padding per batch; the in-memory model pads to seq_length. One text is truncated.
    texts = [*TEXTS, " ".join(["good"] * 100)]
    exported = tf.saved_model.load(str(tmp_path / "export"))
    by_text = exported.signatures[model_lib.TEXT_SIGNATURE](text=tf.constant(texts))
    by_example = exported.signatures[model_lib.SERVING_SIGNATURE](
        examples=tf.constant([model_lib.text_example(t) for t in texts])
    )
    one_by_one = [
        exported.signatures[model_lib.TEXT_SIGNATURE](text=tf.constant([t]))["probability"][0, 0] for t in texts
    ]
    in_memory = tf.sigmoid(model_lib.float32_copy(classifier).text_classifier()(tf.constant(texts))).numpy()
    in_memory_bf16 = tf.sigmoid(classifier.text_classifier()(tf.constant(texts))).numpy()

    np.testing.assert_allclose(by_text["probability"].numpy(), in_memory, atol=1e-5)
    np.testing.assert_allclose(by_example["probability"].numpy(), in_memory, atol=1e-5)
    np.testing.assert_allclose(np.array(one_by_one), in_memory.ravel(), atol=1e-5)
    np.testing.assert_allclose(in_memory_bf16, in_memory, atol=2e-2)
    assert len(set(np.round(in_memory.ravel(), 4))) > 1
    expected_labels = [model_lib.CLASS_NAMES[int(p >= 0.5)] for p in in_memory.ravel()]
    assert [label.decode() for label in by_text["label"].numpy().ravel()] == expected_labels


def encoder_inputs() -> dict[str, tf.Tensor]:
    """Two token sequences, one padded, as the encoder takes them."""
    return {
        "input_word_ids": tf.constant([[2, 7, 9, 3, 0, 0], [2, 11, 12, 13, 14, 3]]),
        "input_mask": tf.constant([[1, 1, 1, 1, 0, 0], [1] * 6]),
        "input_type_ids": tf.zeros((2, 6), tf.int32),
    }


@pytest.mark.bfloat16
def test_rebuilt_encoder_reproduces_the_hub_encoder_and_computes_in_bfloat16(tiny_bert):
    inputs = encoder_inputs()
    expected = hub.KerasLayer(str(tiny_bert.encoder))(inputs)
    build = keras_encoder.native_encoder(str(tiny_bert.encoder))
    rebuilt_encoder = build()
    rebuilt = rebuilt_encoder(inputs)
    attention = [layer for layer in rebuilt_encoder.submodules if isinstance(layer, tf.keras.layers.MultiHeadAttention)]
    assert len(attention) == TINY_BERT.num_layers
    assert {type(layer) for layer in attention} == {keras_encoder.QueryFirstAttention}
    for key in ("pooled_output", "sequence_output"):
        np.testing.assert_allclose(rebuilt[key].numpy(), expected[key].numpy(), atol=1e-5)
    with hardware.keras_policy(hardware.MIXED_BFLOAT16):
        encoder = build()
        in_bfloat16 = encoder(inputs)
    # Model Garden returns float32 from each block's LayerNorm; bfloat16 compute shows as rounding.
    assert encoder.compute_dtype == "bfloat16"
    bfloat16_error = np.abs(in_bfloat16["pooled_output"].numpy() - expected["pooled_output"].numpy()).max()
    assert 1e-4 < bfloat16_error < 5e-2


def test_query_first_attention_computes_keras_attention_and_its_gradients():
    stock = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    query = tf.random.stateless_normal([2, 5, 8], seed=[1, 2])
    value = tf.random.stateless_normal([2, 7, 8], seed=[3, 4])
    mask = tf.sequence_mask([[7] * 5, [3] * 5], 7)  # the second example attends to its first 3 positions only
    stock(query, value, attention_mask=mask)
    query_first = tf.keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    query_first(query, value, attention_mask=mask)
    query_first.set_weights(stock.get_weights())
    assert keras_encoder.use_query_first_attention(tf.keras.Sequential([query_first])) == 1

    def outputs_and_gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(query)
            output, scores = layer(query, value, attention_mask=mask, return_attention_scores=True)
        return [output, scores, *tape.gradient(output, [query, *layer.trainable_weights])]

    for ours, theirs in zip(outputs_and_gradients(query_first), outputs_and_gradients(stock)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-5)


def test_pooled_output_only_encoder_computes_the_first_token_alone_with_the_same_pooled_output(tiny_bert):
    inputs = encoder_inputs()
    expected = hub.KerasLayer(str(tiny_bert.encoder))(inputs)
    outputs = keras_encoder.native_encoder(str(tiny_bert.encoder), pooled_output_only=True)()(inputs)
    assert outputs["sequence_output"].shape == (2, 1, TINY_BERT.hidden_size)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), expected["pooled_output"].numpy(), atol=1e-5)
    np.testing.assert_allclose(
        outputs["sequence_output"][:, 0].numpy(), expected["sequence_output"][:, 0].numpy(), atol=1e-5
    )
    classifier = model_lib.build_classifier(
        model_lib.ClassifierSpec(
            str(tiny_bert.preprocess), str(tiny_bert.encoder), seq_length=TINY_BERT.seq_length, dropout_rate=0.1
        )
    )
    encoder = next(layer for layer in classifier.logit_model.layers if "encoder" in layer.name)
    assert encoder.get_config()["output_range"] == 1


def test_attention_dropout_is_the_encoders_own_unless_the_spec_sets_it(tiny_bert):
    def attention_dropouts(attention_dropout_rate) -> set[float]:
        classifier = model_lib.build_classifier(
            model_lib.ClassifierSpec(
                str(tiny_bert.preprocess),
                str(tiny_bert.encoder),
                seq_length=TINY_BERT.seq_length,
                dropout_rate=0.1,
                attention_dropout_rate=attention_dropout_rate,
            )
        )
        encoder = next(layer for layer in classifier.logit_model.layers if "encoder" in layer.name)
        return {layer.get_config()["attention_dropout"] for layer in encoder.transformer_layers}

    recorded = keras_encoder._encoder_class_and_config(str(tiny_bert.encoder))[1]
    own = recorded.get("attention_dropout", recorded.get("attention_dropout_rate"))
    assert own > 0 and attention_dropouts(None) == {own}
    assert attention_dropouts(0.0) == {0.0}
    assert attention_dropouts(0.25) == {0.25}


def test_encoders_without_keras_metadata_fall_back_to_hub_keras_layer(tiny_bert, tmp_path):
    plain = tmp_path / "encoder"
    shutil.copytree(tiny_bert.encoder, plain)
    (plain / keras_encoder.KERAS_METADATA_FILE).unlink()
    with pytest.raises(keras_encoder.NativeEncoderUnavailable, match="keras_metadata.pb"):
        keras_encoder.native_encoder(str(plain))
    assert isinstance(keras_encoder.encoder_layer(str(plain)), hub.KerasLayer)


def test_precision_follows_the_cpu_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert "avx512_bf16" in hardware.cpu_flags(str(cpuinfo))
    assert hardware.cpu_flags(str(tmp_path / "missing")) == set()
    assert hardware.resolve_precision(hardware.FLOAT32) == hardware.FLOAT32
    if not tf.config.list_physical_devices("GPU"):
        native_bf16 = {"avx512_bf16", "amx_bf16"} & hardware.cpu_flags() and hardware.onednn_computes_bfloat16()
        assert hardware.resolve_precision(hardware.AUTO) == (
            hardware.MIXED_BFLOAT16 if native_bf16 else hardware.FLOAT32
        )
        with monkeypatch.context() as env:  # oneDNN capped at AVX2 (as on an AVX2-only CPU), or off: float32
            env.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
            assert not hardware.onednn_computes_bfloat16()
            assert hardware.resolve_precision(hardware.AUTO) == hardware.FLOAT32
            env.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_amx")
            assert hardware.onednn_computes_bfloat16()
            env.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
            assert not hardware.onednn_computes_bfloat16()
            assert hardware.resolve_precision(hardware.AUTO) == hardware.FLOAT32
    with pytest.raises(ValueError, match="precision must be one of"):
        hardware.resolve_precision("float16")


def test_the_best_epoch_is_kept_ties_go_to_the_later_one_and_a_resume_remembers_it(tmp_path):
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    weights_of = lambda epoch: [np.full((2, 1), epoch, np.float32), np.full((1,), epoch, np.float32)]

    def run_epochs(accuracies: dict[int, float]) -> trainer.EpochLog:
        log = trainer.EpochLog(str(tmp_path / "backup"))  # a fresh callback, as in a new process
        log.set_model(model)
        log.on_train_begin()
        for epoch, accuracy in accuracies.items():
            model.set_weights(weights_of(epoch))
            log.on_epoch_end(epoch, {"loss": 1.0 - accuracy, trainer.BEST_EPOCH_METRIC: accuracy})
        return log

    run_epochs({0: 0.6, 1: 0.8})  # then the process dies
    log = run_epochs({2: 0.7, 3: 0.8, 4: 0.75})
    assert log.history()[trainer.BEST_EPOCH_METRIC] == [0.6, 0.8, 0.7, 0.8, 0.75]
    model.set_weights(weights_of(9))
    assert log.restore_best(model) == 4, "epoch 4 (index 3) ties epoch 2 and is later"
    np.testing.assert_array_equal(model.get_weights()[1], [3.0])
    assert sorted(p.name for p in (tmp_path / "backup").glob("best_epoch_*")) == ["best_epoch_4"]

    resumed = run_epochs({})
    assert resumed.best_epoch == 3 and resumed.restore_best(model) == 4


LONG_REVIEW_WORDS = [word for word in synthetic_corpus.LEXICON if word.isalpha()]


def long_review(length: int, offset: int = 0) -> str:
    return " ".join(LONG_REVIEW_WORDS[(offset + i) % len(LONG_REVIEW_WORDS)] for i in range(length))


@pytest.mark.parametrize("truncation", TRUNCATIONS)
def test_truncation_keeps_the_head_the_tail_or_both_of_a_long_review(tiny_bert, truncation):
    seq_length = 24
    preprocessor = model_lib.Preprocessor(str(tiny_bert.preprocess), seq_length, truncation)
    texts = [long_review(60), long_review(10, offset=5)]
    tokens = preprocessor.tokenize(tf.constant(texts)).merge_dims(-2, -1).to_list()
    ids = preprocessor(tf.constant(texts))["input_word_ids"].numpy()
    head, tail = review_text.head_and_tail_lengths(truncation, seq_length)
    assert head + tail == seq_length - 2
    expected_long = tokens[0][:head] + (tokens[0][-tail:] if tail else [])
    assert ids[0, 1 : seq_length - 1].tolist() == expected_long
    assert ids[1, 1 : len(tokens[1]) + 1].tolist() == tokens[1], "a short review is kept whole"
    assert review_text.head_and_tail_lengths(HEAD_AND_TAIL, 512) == (128, 382)


@pytest.mark.slow
def test_training_and_validation_batches_group_reviews_of_similar_length(tiny_examples, tiny_bert):
    preprocessor = model_lib.Preprocessor(str(tiny_bert.preprocess), TINY_BERT.seq_length)
    files = lambda split: [os.path.join(artifact_utils.get_split_uri([tiny_examples], split), "*.gz")]
    edges = trainer.length_bucket_boundaries(TINY_BERT.seq_length)

    def check_batch(inputs, label) -> int:
        lengths, width = inputs["input_mask"].numpy().sum(axis=1), inputs["input_mask"].shape[1]
        assert width == min(edge for edge in edges if edge >= lengths.max()), "padded to its bucket's edge"
        assert lengths.min() > max(edge for edge in [0, *edges] if edge < width), f"one batch mixes {sorted(lengths)}"
        assert label.shape == lengths.shape
        return width

    widths = {
        check_batch(*batch)
        for batch in trainer.make_dataset(files("train"), 8, seed=1, preprocessor=preprocessor).take(20)
    }
    assert len(widths) > 1 and max(widths) <= TINY_BERT.seq_length
    for batch in trainer.make_dataset(files("train"), 8, seed=1, preprocessor=preprocessor).take(20):
        assert batch[1].shape == (8,), "training batches are full"

    eval_records = trainer.summarize_split(files("eval")).num_examples
    evaluation = trainer.make_eval_dataset(files("eval"), 8, preprocessor=preprocessor)
    for _ in range(2):  # the second pass comes from the cache, whole again
        passed = [(check_batch(*batch), len(batch[1])) for batch in evaluation]
        assert sum(size for _, size in passed) == eval_records, "one pass reads every eval record once"
    subset = trainer.make_eval_dataset(files("eval"), 8, preprocessor=preprocessor, num_examples=5)
    assert sum(len(label) for _, label in subset) == 5


@pytest.mark.slow
@pytest.mark.parametrize("truncation", TRUNCATIONS)
def test_the_export_reads_long_reviews_and_markup_exactly_as_training_did(tiny_bert, tmp_path, truncation):
    spec = model_lib.ClassifierSpec(
        str(tiny_bert.preprocess), str(tiny_bert.encoder), seq_length=32, dropout_rate=0.1, truncation=truncation
    )
    classifier = model_lib.build_classifier(spec, hardware.FLOAT32)
    head = classifier.logit_model.get_layer("classifier")
    head.set_weights([np.linspace(-1, 1, w.size, dtype=np.float32).reshape(w.shape) for w in head.get_weights()])
    model_lib.export_serving_model(classifier, str(tmp_path / "export"))
    exported = tf.saved_model.load(str(tmp_path / "export"))

    texts = [long_review(80), long_review(120, offset=7), "A short one.<br /><br />It was fine.<BR>Really."]
    training_model = tf.sigmoid(classifier.text_classifier()(tf.constant(texts), training=False)).numpy()
    by_text = exported.signatures[model_lib.TEXT_SIGNATURE](text=tf.constant(texts))["probability"].numpy()
    by_example = exported.signatures[model_lib.SERVING_SIGNATURE](
        examples=tf.constant([model_lib.text_example(t) for t in texts])
    )["probability"].numpy()
    np.testing.assert_allclose(by_text, training_model, atol=1e-5)
    np.testing.assert_allclose(by_example, training_model, atol=1e-5)

    # Markup is read as the corpus's cleaned text: a tag becomes a line break, in both signatures.
    cleaned = "A short one.\n\nIt was fine.\nReally."
    np.testing.assert_allclose(
        exported.signatures[model_lib.TEXT_SIGNATURE](text=tf.constant([cleaned]))["probability"].numpy(),
        by_text[2:],
        atol=1e-6,
    )
    tag_tokens = classifier.preprocessor.tokenize(tf.constant(["<br />"])).merge_dims(-2, -1).to_list()
    assert tag_tokens[0], "without normalization the tag would be read as words"
    np.testing.assert_array_equal(
        classifier.preprocessor(tf.constant([texts[2]]))["input_word_ids"].numpy(),
        classifier.preprocessor(tf.constant([cleaned]))["input_word_ids"].numpy(),
    )
