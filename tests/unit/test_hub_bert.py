"""The locally built Hub-format BERT implements the TF Hub BERT interface."""

import tensorflow as tf
import tensorflow_hub as hub

from tests.support.tiny_assets import TINY_BERT


def test_random_bert_has_the_hub_bert_interface(tiny_bert):
    preprocess = hub.KerasLayer(str(tiny_bert.preprocess))
    encoder = hub.KerasLayer(str(tiny_bert.encoder))
    inputs = preprocess(tf.constant(["a great movie", "an unheardofword film !"]))
    assert set(inputs) == {"input_word_ids", "input_mask", "input_type_ids"}
    assert inputs["input_word_ids"].shape == (2, TINY_BERT.seq_length)
    ids = inputs["input_word_ids"].numpy()
    vocab = (tiny_bert.root.parent / "vocab.txt").read_text().splitlines()
    assert [vocab[i] for i in ids[0][:5]] == ["[CLS]", "a", "great", "movie", "[SEP]"]
    assert vocab[ids[1][2]] == "[UNK]"

    outputs = encoder(inputs)
    assert outputs["pooled_output"].shape == (2, TINY_BERT.hidden_size)
    assert outputs["sequence_output"].shape == (2, TINY_BERT.seq_length, TINY_BERT.hidden_size)
    assert len(outputs["encoder_outputs"]) == TINY_BERT.num_layers
