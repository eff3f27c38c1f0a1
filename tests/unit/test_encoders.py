"""Encoder names and handles: the registry, fail-fast checks, and Hub's cache."""

import hashlib
import shutil

import pytest

import local_runner
from modules import encoders


def test_registry_has_the_tutorials_encoders():
    assert len(encoders.ENCODERS) == 33
    small = encoders.by_name("small_bert/bert_en_uncased_L-4_H-512_A-8")
    assert small.encoder == "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/1"
    assert small.preprocess == "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    assert encoders.by_name("albert_en_base").preprocess.endswith("albert_en_preprocess/3")
    assert encoders.by_name("bert_multi_cased_L-12_H-768_A-12").preprocess.endswith("bert_multi_cased_preprocess/3")


def test_unknown_name_lists_what_is_available(capsys):
    with pytest.raises(SystemExit):
        local_runner.parse_args(["--encoder", "bert_huge"])
    error = capsys.readouterr().err
    assert "unknown encoder 'bert_huge'" in error and "small_bert/bert_en_uncased_L-2_H-128_A-2" in error


def test_local_hub_bert_passes_the_check(tiny_bert):
    encoders.check_handles(encoders.EncoderHandles(str(tiny_bert.encoder), str(tiny_bert.preprocess)))


def test_wrong_or_missing_models_fail_fast_with_the_handle_named(tiny_bert, tmp_path):
    swapped = encoders.EncoderHandles(encoder=str(tiny_bert.preprocess), preprocess=str(tiny_bert.preprocess))
    with pytest.raises(encoders.EncoderError, match=r"encoder handle '.*preprocess' does not take the BERT inputs"):
        encoders.check_handles(swapped)
    swapped = encoders.EncoderHandles(encoder=str(tiny_bert.encoder), preprocess=str(tiny_bert.encoder))
    with pytest.raises(encoders.EncoderError, match=r"preprocess handle '.*encoder' is not a BERT preprocessor"):
        encoders.check_handles(swapped)
    missing = encoders.EncoderHandles(encoder=str(tmp_path / "nope"), preprocess=str(tiny_bert.preprocess))
    with pytest.raises(encoders.EncoderError, match=r"encoder handle '.*nope' cannot be loaded"):
        encoders.check_handles(missing)


def test_unreachable_url_fails_fast(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache"))
    handles = encoders.EncoderHandles(encoder="http://127.0.0.1:9/bert/1", preprocess=str(tiny_bert.preprocess))
    with pytest.raises(encoders.EncoderError, match=r"encoder handle 'http://127.0.0.1:9/bert/1' cannot be loaded"):
        encoders.check_handles(handles)


def test_hub_cache_dir_is_honoured_offline(tiny_bert, tmp_path, monkeypatch):
    handles = encoders.by_name("small_bert/bert_en_uncased_L-2_H-128_A-2")
    cache = tmp_path / "hub-cache"
    for handle, model in ((handles.encoder, tiny_bert.encoder), (handles.preprocess, tiny_bert.preprocess)):
        shutil.copytree(model, cache / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    encoders.check_handles(handles)  # no network here: only the cache can satisfy these URLs
