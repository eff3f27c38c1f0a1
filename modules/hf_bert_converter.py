"""Converts a Hugging Face BERT checkpoint (safetensors, read without torch) into a TF Hub-format BERT through
Model Garden's `BertEncoder` and `export_tfhub_lib`:

    python -m modules.hf_bert_converter HF_MODEL_DIR OUTPUT_DIR [--seq-length 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tf_keras
from official.legacy.bert import configs as bert_configs

from modules import hub_bert

REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt")
SUPPORTED_ACTIVATIONS = {"gelu": tf_keras.activations.gelu}  # exact (erf) GELU, as Hugging Face's "gelu"


class CheckpointError(ValueError):
    """The folder is not a convertible Hugging Face BERT checkpoint; the message says why."""


def read_checkpoint(model_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The checkpoint's config and its weights, names without a `bert.` prefix."""
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{model_dir}: missing {missing}; a Hugging Face BERT checkpoint folder needs {list(REQUIRED_FILES)}."
        )
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert":
        raise CheckpointError(f"{model_dir}/config.json: model_type is {config.get('model_type')!r}, not 'bert'.")
    if config.get("hidden_act") not in SUPPORTED_ACTIVATIONS:
        raise CheckpointError(
            f"{model_dir}/config.json: hidden_act {config.get('hidden_act')!r} is not "
            f"supported (supported: {sorted(SUPPORTED_ACTIVATIONS)})."
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(f"{model_dir}/config.json: only absolute position embeddings are supported.")
    weights = {name.removeprefix("bert."): value for name, value in load_file(model_dir / "model.safetensors").items()}
    return config, weights


def bert_config_from_hf(config: dict) -> bert_configs.BertConfig:
    """Hugging Face's config.json keeps the original BERT's key names; `hidden_act` becomes a function."""
    return bert_configs.BertConfig.from_dict(
        {"type_vocab_size": 2, **config, "hidden_act": SUPPORTED_ACTIVATIONS[config["hidden_act"]]}
    )


def encoder_weights(config: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hugging Face tensors keyed by the Model Garden `BertEncoder` variable names they become."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_size = hidden // heads

    def take(name: str) -> np.ndarray:
        if name not in weights:
            raise CheckpointError(f"model.safetensors has no tensor '{name}' (or 'bert.{name}').")
        return weights[name]

    mapped = {
        "word_embeddings/embeddings": take("embeddings.word_embeddings.weight"),
        "position_embedding/embeddings": take("embeddings.position_embeddings.weight"),
        "type_embeddings/embeddings": take("embeddings.token_type_embeddings.weight"),
        "embeddings/layer_norm/gamma": take("embeddings.LayerNorm.weight"),
        "embeddings/layer_norm/beta": take("embeddings.LayerNorm.bias"),
        "pooler_transform/kernel": take("pooler.dense.weight").T,
        "pooler_transform/bias": take("pooler.dense.bias"),
    }
    for i in range(config["num_hidden_layers"]):
        hf, mg = f"encoder.layer.{i}.", f"transformer/layer_{i}/"
        for part in ("query", "key", "value"):
            mapped[f"{mg}self_attention/{part}/kernel"] = take(f"{hf}attention.self.{part}.weight").T.reshape(
                hidden, heads, head_size
            )
            mapped[f"{mg}self_attention/{part}/bias"] = take(f"{hf}attention.self.{part}.bias").reshape(
                heads, head_size
            )
        mapped[f"{mg}self_attention/attention_output/kernel"] = take(f"{hf}attention.output.dense.weight").T.reshape(
            heads, head_size, hidden
        )
        mapped[f"{mg}self_attention/attention_output/bias"] = take(f"{hf}attention.output.dense.bias")
        mapped[f"{mg}self_attention_layer_norm/gamma"] = take(f"{hf}attention.output.LayerNorm.weight")
        mapped[f"{mg}self_attention_layer_norm/beta"] = take(f"{hf}attention.output.LayerNorm.bias")
        mapped[f"{mg}intermediate/kernel"] = take(f"{hf}intermediate.dense.weight").T
        mapped[f"{mg}intermediate/bias"] = take(f"{hf}intermediate.dense.bias")
        mapped[f"{mg}output/kernel"] = take(f"{hf}output.dense.weight").T
        mapped[f"{mg}output/bias"] = take(f"{hf}output.dense.bias")
        mapped[f"{mg}output_layer_norm/gamma"] = take(f"{hf}output.LayerNorm.weight")
        mapped[f"{mg}output_layer_norm/beta"] = take(f"{hf}output.LayerNorm.bias")
    return mapped


def convert(model_dir: Path, output_root: Path, *, seq_length: int = 128) -> hub_bert.HubBertPaths:
    """Converts the checkpoint in `model_dir` into a Hub-format pair under `output_root`."""
    model_dir = Path(model_dir)
    config, weights = read_checkpoint(model_dir)
    mapped = encoder_weights(config, weights)

    def load_weights(encoder: tf_keras.Model) -> None:
        variables = {v.name.removesuffix(":0"): v for v in encoder.weights}
        if set(variables) != set(mapped):
            raise CheckpointError(
                f"{model_dir}: weights do not fit a BertEncoder; unmatched {sorted(set(variables) ^ set(mapped))[:5]}"
            )
        for name, variable in variables.items():
            if tuple(variable.shape) != mapped[name].shape:
                raise CheckpointError(
                    f"{model_dir}: '{name}' has shape {mapped[name].shape}, the encoder expects {tuple(variable.shape)}"
                )
            variable.assign(mapped[name])

    tokenizer_config = model_dir / "tokenizer_config.json"
    do_lower_case = (
        bool(json.loads(tokenizer_config.read_text(encoding="utf-8")).get("do_lower_case", True))
        if tokenizer_config.is_file()
        else "uncased" in config.get("_name_or_path", "uncased")
    )
    return hub_bert.export_hub_bert(
        bert_config_from_hf(config),
        model_dir / "vocab.txt",
        Path(output_root),
        do_lower_case=do_lower_case,
        seq_length=seq_length,
        fill_weights=load_weights,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="folder with config.json, model.safetensors, vocab.txt")
    parser.add_argument("output_dir", type=Path, help="gets encoder/ and preprocess/ SavedModels")
    parser.add_argument("--seq-length", type=int, default=128, help="the preprocessor's default sequence length")
    args = parser.parse_args(argv)
    paths = convert(args.model_dir, args.output_dir, seq_length=args.seq_length)
    print(f"encoder handle:    {paths.encoder}\npreprocess handle: {paths.preprocess}")


if __name__ == "__main__":
    main()
