"""The model a KServe ModelServer serves (`ReviewClassifier`): the highest whole version of a serving directory,
swapped as TF Serving's version policy swaps (poll; load the new version beside the old; switch; drop the old), and
the requests of TF Serving's REST API (`modules.tf_serving_rest`) and KServe's V2, batched (`modules.request_batcher`).
The command is `runners.serve`."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import kserve
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the BERT preprocessor uses)
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

import modules  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from config.server import ServerConfig
from modules import request_batcher, serving_versions, tf_serving_rest
from modules.model import WARMUP_TEXTS, text_example
from modules.model_interface import (
    CLASS_NAME_OUTPUT,
    PROBABILITY_OUTPUT,
    SERVING_SIGNATURE,
    TEXT_INPUT,
    TEXT_SIGNATURE,
)

LOGGER = logging.getLogger("imdb_bert_tfx.server")  # what the server decided: versions loaded, swapped, refused
SIGNATURE_TOLERANCE = 1e-5  # both signatures run one graph on the same text: they agree but for float rounding
VERSION_HEADER = "x-model-version"  # which version answered (TF Serving's REST answers do not say)


@dataclasses.dataclass(frozen=True)
class LoadedVersion:
    version: str  # the version folder's name
    path: str
    signatures: dict[str, Any]  # TEXT_SIGNATURE and SERVING_SIGNATURE's concrete functions
    model: Any  # the loaded SavedModel, which owns the signatures' variables


def load_version(path: str) -> LoadedVersion:
    """Loads a SavedModel folder and answers the warm-up reviews with both signatures; BrokenServedModel (the
    folder and both fixes) if anything fails."""
    serving_versions.check_servable(path, (SERVING_SIGNATURE, TEXT_SIGNATURE))
    try:
        model = tf.saved_model.load(path)
        signatures = {name: model.signatures[name] for name in (TEXT_SIGNATURE, SERVING_SIGNATURE)}
        loaded = LoadedVersion(os.path.basename(path.rstrip("/")), path, signatures, model)
        by_text = run_signature(loaded, TEXT_SIGNATURE, [text.encode() for text in WARMUP_TEXTS])
        by_example = run_signature(loaded, SERVING_SIGNATURE, [text_example(text) for text in WARMUP_TEXTS])
    except Exception as error:  # noqa: BLE001  (whatever a folder holds: the version is refused, never the server)
        raise serving_versions.BrokenServedModel(
            f"{path}: cannot serve it: {type(error).__name__}: {' '.join(str(error).split())[:200]}"
        ) from error
    agree = [
        a[CLASS_NAME_OUTPUT] == b[CLASS_NAME_OUTPUT]
        and abs(a[PROBABILITY_OUTPUT][0] - b[PROBABILITY_OUTPUT][0]) <= SIGNATURE_TOLERANCE
        for a, b in zip(by_text, by_example, strict=True)
    ]
    if not all(agree):
        raise serving_versions.BrokenServedModel(
            f"{path}: its two signatures answer the warm-up reviews differently ({by_text} and {by_example})"
        )
    return loaded


def run_signature(version: LoadedVersion, signature: str, values: list[bytes]) -> list[dict[str, list]]:
    """One row of outputs per input: {probability: [p], label: [name]}, as TF Serving writes [batch, 1] outputs."""
    input_name = tf_serving_rest.SIGNATURE_INPUTS[signature]
    outputs = version.signatures[signature](**{input_name: tf.constant(values, dtype=tf.string)})
    probabilities = outputs[PROBABILITY_OUTPUT].numpy().reshape(-1)
    labels = outputs[CLASS_NAME_OUTPUT].numpy().reshape(-1)
    return [
        {PROBABILITY_OUTPUT: [float(p)], CLASS_NAME_OUTPUT: [label.decode()]}
        for p, label in zip(probabilities, labels, strict=True)
    ]


class ReviewClassifier(kserve.Model):
    """Serves `source`: a serving directory (its highest whole version, followed as versions are pushed or rolled
    back) or, with `follow=False`, one SavedModel folder."""

    def __init__(self, source: str, config: ServerConfig, follow: bool = True):
        super().__init__(config.model_name, return_response_headers=True)
        self.source, self.config, self.follow = source, config, follow
        self.current: LoadedVersion | None = None
        self.refused: dict[str, tuple] = {}  # version -> the files' state when refused: tried again if they change
        self._stop = threading.Event()
        self.batcher: request_batcher.Batcher | None = None

    # Loading and following versions

    def load(self) -> bool:
        """Loads the highest version that loads (a broken one is refused with one log line); raises
        BrokenServedModel or FileNotFoundError if none does."""
        if not self.follow:
            self._switch(load_version(self.source))
        else:
            for version in reversed(serving_versions.versions(self.source)):
                if self._try_load(str(version)):
                    break
            if self.current is None:
                raise FileNotFoundError(
                    f"{self.source}: no version here loads (see the lines above); push a model (`make run`) or pass "
                    f"--model DIR"
                )
            threading.Thread(target=self._follow_versions, name="version-watcher", daemon=True).start()
        self.batcher = request_batcher.Batcher(run_signature, self.config.max_batch_size, self._serving)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Stops following versions and ends the batcher after the requests it holds."""
        self._stop.set()
        if self.batcher:
            self.batcher.stop()
        self.ready = False

    def _serving(self) -> LoadedVersion:
        assert self.current is not None, "a version is loaded before the batcher starts"
        return self.current

    def _follow_versions(self) -> None:
        while not self._stop.wait(self.config.poll_seconds):
            try:
                found = serving_versions.versions(self.source)
                if found and str(found[-1]) != self._serving().version:
                    self._try_load(str(found[-1]))
            except (OSError, tf.errors.OpError) as error:  # an object store's hiccup: look again at the next poll
                LOGGER.warning("Cannot read %s: %s", self.source, error)

    def _try_load(self, version: str) -> bool:
        """Loads `version` beside the one served and switches to it; a broken version is refused with one log line
        and tried again only once its files change."""
        path = os.path.join(self.source, version)
        state = _files_state(path)
        if self.refused.get(version) == state:
            return False
        try:
            loaded = load_version(path)
        except serving_versions.BrokenServedModel as error:
            self.refused[version] = state
            serving = f"; version {self.current.version} goes on serving" if self.current else ""
            LOGGER.error("Refused version %s: %s%s", version, error, serving)
            return False
        self._switch(loaded)
        return True

    def _switch(self, loaded: LoadedVersion) -> None:
        before, self.current = self.current, loaded  # one assignment: each batch reads one version
        LOGGER.info(
            "Serving version %s (%s)%s", loaded.version, loaded.path, f", was {before.version}" if before else ""
        )

    # Requests

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if isinstance(payload, InferRequest):
            return payload
        try:
            if isinstance(payload, (bytes, str)):  # a body KServe did not decode (no JSON content type, as curl -d)
                payload = tf_serving_rest.parse_json(payload)
            return tf_serving_rest.parse_request(payload, self.config.max_instances)
        except tf_serving_rest.BadRequest as error:
            raise InvalidInput(str(error)) from None

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        if isinstance(payload, InferRequest):
            return await self._predict_v2(payload, response_headers)
        version, rows = await self._submit(payload.signature, payload.values)
        if response_headers is not None:
            response_headers[VERSION_HEADER] = version.version
        return tf_serving_rest.format_answer(payload.form, rows)

    async def _submit(self, signature: str, values: list[bytes]) -> tuple[LoadedVersion, Sequence[dict]]:
        assert self.batcher is not None, "load() first"
        try:
            return await self.batcher.submit(signature, values)
        except request_batcher.BatchError as error:
            raise InvalidInput(f"the model cannot read this request's instances: {error}") from None

    async def _predict_v2(self, request: InferRequest, response_headers: dict[str, str] | None) -> InferResponse:
        text = request.get_input_by_name(TEXT_INPUT)
        if text is None or len(request.inputs) != 1 or text.datatype != "BYTES":
            raise InvalidInput(
                f'send one BYTES input named "{TEXT_INPUT}": {{"inputs": [{{"name": "{TEXT_INPUT}", "shape": [1], '
                f'"datatype": "BYTES", "data": ["{tf_serving_rest.EXAMPLE_TEXT}"]}}]}}'
            )
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in text.as_numpy().reshape(-1)]
        if not values or len(values) > self.config.max_instances:
            raise InvalidInput(f'"{TEXT_INPUT}" must hold 1 to {self.config.max_instances} reviews')
        version, rows = await self._submit(TEXT_SIGNATURE, values)
        if response_headers is not None:
            response_headers[VERSION_HEADER] = version.version
        shape = [len(rows), 1]
        outputs = [
            InferOutput(PROBABILITY_OUTPUT, shape, "FP32", np.array([r[PROBABILITY_OUTPUT] for r in rows], np.float32)),
            InferOutput(CLASS_NAME_OUTPUT, shape, "BYTES", [r[CLASS_NAME_OUTPUT][0] for r in rows]),
        ]
        return InferResponse(request.id or str(uuid.uuid4()), self.name, outputs, model_version=version.version)

    def get_input_types(self) -> list[dict]:
        return [{"name": TEXT_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": PROBABILITY_OUTPUT, "datatype": "FP32", "shape": [-1, 1]},
            {"name": CLASS_NAME_OUTPUT, "datatype": "BYTES", "shape": [-1, 1]},
        ]

    def status(self) -> dict[str, Any]:
        """TF Serving's model status (GET /v1/models/NAME), with KServe's `name` and `ready`."""
        state = {
            "version": self.current.version if self.current else "",
            "state": "AVAILABLE" if self.ready and self.current else "LOADING",
            "status": {"error_code": "OK", "error_message": ""},
        }
        return {"name": self.name, "ready": bool(self.ready), "model_version_status": [state]}


def _files_state(path: str) -> tuple:
    """What changes when a version's files do (a copy that was still running): sizes of its two key files."""
    state = []
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        try:
            state.append(tf.io.gfile.stat(os.path.join(path, name)).length)
        except tf.errors.OpError:
            state.append(None)
    return tuple(state)


class _BodySizeLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 and one line, read no further than that."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        body, more = b"", True
        while more and len(body) <= self.max_bytes and int(declared) <= self.max_bytes:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > self.max_bytes or int(declared) > self.max_bytes:
            return await _reject(send, 413, f"the body is over {self.max_bytes} bytes; send fewer or shorter reviews")
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _reject(send: Any, status: int, error: str) -> None:
    content = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class _TfServingDataPlane(DataPlane):
    """KServe's data plane, whose refusal of a body that is not JSON also says what to send."""

    def decode(self, body: Any, headers: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().decode(body, headers, *args, **kwargs)
        except InvalidInput as error:
            if isinstance(body, (bytes, str)):
                raise InvalidInput(
                    f"the body is not JSON ({error}); send {tf_serving_rest.USAGE[TEXT_SIGNATURE]}"
                ) from None
            raise


def build_server(model: ReviewClassifier, config: ServerConfig) -> kserve.ModelServer:
    """KServe's ModelServer for `model` on `config.port` (all interfaces, as TF Serving and KServe listen): REST V1
    and V2 (no gRPC), with TF Serving's model status at GET /v1/models/NAME and the body size limit."""
    from kserve import model_server as kserve_model_server

    app = kserve_model_server.app  # KServe's one application: routes added before the server starts come first

    async def status(model_name: str) -> Any:
        if model_name != model.name:
            return JSONResponse({"error": f"Model with name {model_name} does not exist."}, status_code=404)
        return JSONResponse(model.status(), status_code=200 if model.ready else 503)

    app.add_api_route("/v1/models/{model_name}", status, methods=["GET"])
    app.add_middleware(_BodySizeLimit, max_bytes=config.max_body_bytes)
    server = kserve.ModelServer(
        http_port=config.port, enable_grpc=False, workers=1, enable_latency_logging=False, grace_period=30
    )
    server.dataplane = _TfServingDataPlane(model_registry=server.registered_models)
    return server
