"""TF Serving's REST predict API for this model, as `tensorflow_serving/util/json_tensor.cc` reads and writes it:
a request body becomes a `PredictRequest` (signature, one string input per instance), and per-instance outputs
become the answer in the request's own form, `{"predictions": [...]}` for `instances`, `{"outputs": {...}}` for
`inputs`. A bad body raises `BadRequest` with one line that says what to send. No TensorFlow ops: a base64
instance is checked with the tf.Example protobuf class alone."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from config.examples import TEXT_FEATURE
from modules.model_interface import (
    CLASS_NAME_OUTPUT,
    PROBABILITY_OUTPUT,
    SERVING_INPUT,
    SERVING_SIGNATURE,
    TEXT_INPUT,
    TEXT_SIGNATURE,
)

SIGNATURE_INPUTS = {TEXT_SIGNATURE: TEXT_INPUT, SERVING_SIGNATURE: SERVING_INPUT}  # each takes one string tensor
OUTPUTS = (PROBABILITY_OUTPUT, CLASS_NAME_OUTPUT)
ROW, COLUMNAR = "instances", "inputs"  # TF Serving's two request forms; the answer keeps the request's
EXAMPLE_TEXT = "A delight from start to finish."
USAGE = {
    TEXT_SIGNATURE: f'{{"signature_name": "{TEXT_SIGNATURE}", "instances": ["{EXAMPLE_TEXT}", ...]}}',
    SERVING_SIGNATURE: '{"instances": [{"b64": "<a serialized tf.Example with a text feature, base64>"}, ...]}',
}


class BadRequest(ValueError):
    """A request the model cannot answer; the message is one line that says what to send instead."""


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    signature: str
    values: list[bytes]  # the signature's one string input, an item per instance
    form: str  # ROW or COLUMNAR


def parse_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(
            f"the body is not JSON ({error}); send {USAGE[TEXT_SIGNATURE]} with Content-Type: application/json"
        ) from None


def parse_request(body: Any, max_instances: int) -> PredictRequest:
    """The PredictRequest in a decoded JSON body; BadRequest for anything TF Serving would refuse, an empty
    request, or more than `max_instances` instances."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"the body is a JSON {type(body).__name__}, not an object; send {USAGE[TEXT_SIGNATURE]}")
    signature = body.get("signature_name", SERVING_SIGNATURE)
    if signature not in SIGNATURE_INPUTS:
        raise BadRequest(
            f"signature_name {json.dumps(signature)} is not served; use {json.dumps(TEXT_SIGNATURE)} (raw text) "
            f"or {json.dumps(SERVING_SIGNATURE)} (base64 tf.Examples, the default)"
        )
    forms = [form for form in (ROW, COLUMNAR) if form in body]
    if len(forms) != 1:
        raise BadRequest(
            f"the body has {'both' if forms else 'neither'} 'instances' {'and' if forms else 'nor'} 'inputs'; "
            f"send one of them, e.g. {USAGE[signature]}"
        )
    form = forms[0]
    items = _unwrap(body[form], SIGNATURE_INPUTS[signature], form, signature)
    if not items:
        raise BadRequest(f"'{form}' is empty; send at least one, e.g. {USAGE[signature]}")
    if len(items) > max_instances:
        raise BadRequest(f"'{form}' has {len(items)} items, more than the {max_instances} a request may have; split it")
    decode = _text if signature == TEXT_SIGNATURE else _example
    return PredictRequest(signature, [decode(item, i, form) for i, item in enumerate(items)], form)


def _unwrap(items: Any, input_name: str, form: str, signature: str) -> list:
    """The input's items: `items` itself, or (TF Serving's named forms) each row's or the column's `input_name`."""
    if form == COLUMNAR and isinstance(items, Mapping):
        items = _named(items, input_name, form, signature)
    if not isinstance(items, list):
        raise BadRequest(f"'{form}' must be a list; send {USAGE[signature]}")
    if form == ROW:
        items = [_named(item, input_name, form, signature) if _is_named(item) else item for item in items]
    return items


def _is_named(item: Any) -> bool:
    return isinstance(item, Mapping) and set(item) != {"b64"}


def _named(item: Mapping, input_name: str, form: str, signature: str) -> Any:
    if set(item) != {input_name}:
        raise BadRequest(
            f"'{form}' names the inputs {sorted(item)}; {signature} has one input, {json.dumps(input_name)}: "
            f"send {USAGE[signature]}"
        )
    return item[input_name]


def _text(item: Any, index: int, form: str) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, Mapping):
        return _b64(item, index, form)
    raise BadRequest(
        f"{form}[{index}] is {json.dumps(item)[:40]}, not a string; send {TEXT_SIGNATURE} reviews as strings: "
        f"{USAGE[TEXT_SIGNATURE]}"
    )


def _example(item: Any, index: int, form: str) -> bytes:
    if not isinstance(item, Mapping):
        raise BadRequest(
            f'{form}[{index}] is not base64: {SERVING_SIGNATURE} takes serialized tf.Examples as {{"b64": ...}} '
            f"(for raw text, use signature_name {json.dumps(TEXT_SIGNATURE)})"
        )
    serialized = _b64(item, index, form)
    from tensorflow.core.example import example_pb2  # protobuf only: the Example's own check, not TensorFlow's ops

    try:
        feature = example_pb2.Example.FromString(serialized).features.feature.get(TEXT_FEATURE)
    except Exception:  # protobuf's DecodeError, whose module differs between implementations
        feature = None
    if feature is None or len(feature.bytes_list.value) != 1:
        raise BadRequest(
            f"{form}[{index}] is not a serialized tf.Example with one '{TEXT_FEATURE}' bytes value; "
            f"build it as modules.model.text_example does, or send raw text with signature_name "
            f"{json.dumps(TEXT_SIGNATURE)}"
        )
    return serialized


def _b64(item: Mapping, index: int, form: str) -> bytes:
    if set(item) != {"b64"} or not isinstance(item["b64"], str):
        raise BadRequest(f'{form}[{index}] is not {{"b64": ...}}; send {USAGE[SERVING_SIGNATURE]}')
    try:
        return base64.b64decode(item["b64"], validate=True)
    except binascii.Error as error:
        raise BadRequest(f"{form}[{index}]: 'b64' is not base64 ({error}); send {USAGE[SERVING_SIGNATURE]}") from None


def format_answer(form: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """TF Serving's answer to a request in `form`, from one {output: value} row per instance (each value a list:
    the outputs are [batch, 1] tensors)."""
    if form == ROW:
        return {"predictions": [dict(row) for row in rows]}
    return {"outputs": {name: [row[name] for row in rows] for name in OUTPUTS}}
