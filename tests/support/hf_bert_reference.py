"""A NumPy reference of Hugging Face's BertModel forward pass and BERT's WordPiece tokenizer.

Written from the BERT paper and the reference implementation's semantics (post-layer-norm transformer,
exact erf GELU, additive -10000 attention mask, tanh pooler over [CLS]); used to prove the converter.
"""

import math
import unicodedata

import numpy as np


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _linear(x, weights, name):
    return x @ weights[f"{name}.weight"].T.astype(np.float64) + weights[f"{name}.bias"]


def bert_forward(config: dict, weights: dict, input_ids, attention_mask, token_type_ids):
    """Returns (sequence_output, pooled_output) in float64."""
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in weights.items()}
    eps = config.get("layer_norm_eps", 1e-12)
    heads = config["num_attention_heads"]
    batch, length = input_ids.shape
    positions = np.arange(length)
    x = (
        w["embeddings.word_embeddings.weight"][input_ids]
        + w["embeddings.position_embeddings.weight"][positions]
        + w["embeddings.token_type_embeddings.weight"][token_type_ids]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    head_size = x.shape[-1] // heads
    additive_mask = (1.0 - attention_mask[:, None, None, :]) * -10000.0
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def split_heads(t):
            return t.reshape(batch, length, heads, head_size).transpose(0, 2, 1, 3)

        q, k, v = (split_heads(_linear(x, w, f"{p}attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_size) + additive_mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
        x = _layer_norm(
            x + _linear(context, w, f"{p}attention.output.dense"),
            w[f"{p}attention.output.LayerNorm.weight"],
            w[f"{p}attention.output.LayerNorm.bias"],
            eps,
        )
        hidden = _gelu(_linear(x, w, f"{p}intermediate.dense"))
        x = _layer_norm(
            x + _linear(hidden, w, f"{p}output.dense"),
            w[f"{p}output.LayerNorm.weight"],
            w[f"{p}output.LayerNorm.bias"],
            eps,
        )
    pooled = np.tanh(_linear(x[:, 0], w, "pooler.dense"))
    return x, pooled


def _is_punctuation(char):
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp):
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text: str, lower_case: bool) -> list[str]:
    text = "".join(
        f" {c} " if _is_cjk(ord(c)) else c
        for c in text
        if not (ord(c) == 0 or ord(c) == 0xFFFD or unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r")
    )
    tokens = []
    for word in text.split():
        if lower_case:
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for char in word:
            if _is_punctuation(char):
                if current:
                    tokens.append(current)
                tokens.append(char)
                current = ""
            else:
                current += char
        if current:
            tokens.append(current)
    return tokens


def wordpiece_ids(text: str, vocab: list[str], lower_case: bool = True) -> list[int]:
    """[CLS] + greedy longest-match-first WordPiece ids + [SEP]."""
    index = {token: i for i, token in enumerate(vocab)}
    ids = [index["[CLS]"]]
    for word in basic_tokenize(text, lower_case):
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = ("##" if start else "") + word[start:end]
                if piece in index:
                    break
                end -= 1
            if end == start:
                pieces = [index["[UNK]"]]
                break
            pieces.append(index[piece])
            start = end
        ids.extend(pieces if len(word) <= 200 else [index["[UNK]"]])
    return ids + [index["[SEP]"]]
