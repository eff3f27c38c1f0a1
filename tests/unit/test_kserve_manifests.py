"""The KServe InferenceServices in deploy/kserve: every field is one KServe's schema has (the kserve SDK's models,
generated from the CRDs' OpenAPI, and Kubernetes' for the pod's parts), each serves the Pusher's serving directory
as docs/kubeflow.md's steps name it, and the custom predictor starts the server with flags it accepts."""

import re
from pathlib import Path

import kserve.models
import kubernetes.client.models
import pytest
import yaml

from runners import serve
from tests.support.docs import docs_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((PROJECT_ROOT / "deploy" / "kserve").glob("*.yaml"))
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def schema_errors(value, type_name: str, path: str) -> list[str]:
    """Where `value` strays from the OpenAPI type `type_name` (a field the type lacks, a wrong kind of value)."""
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: a list expected"]
        return [e for i, item in enumerate(value) for e in schema_errors(item, type_name[5:-1], f"{path}[{i}]")]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            return [f"{path}: a mapping expected"]
        return [e for key, item in value.items() for e in schema_errors(item, inner, f"{path}.{key}")]
    if type_name in SCALARS:
        return [] if isinstance(value, SCALARS[type_name]) else [f"{path}: {type_name} expected, got {value!r}"]
    model = getattr(kserve.models, type_name, None) or getattr(kubernetes.client.models, type_name)
    if not isinstance(value, dict):
        return [f"{path}: a {type_name} mapping expected"]
    fields = {json_name: model.openapi_types[name] for name, json_name in model.attribute_map.items()}
    errors = [f"{path}.{key}: not a field of {type_name}" for key in value if key not in fields]
    known = [(key, item) for key, item in value.items() if key in fields]
    return errors + [e for key, item in known for e in schema_errors(item, fields[key], f"{path}.{key}")]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_both_manifests_are_there():
    assert [p.name for p in MANIFESTS] == ["imdb-bert-tfx-server.yaml", "imdb-bert-tfx-tfserving.yaml"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_field_is_in_kserves_schema_and_the_serving_directory_is_the_pushers(path):
    manifest = load(path)
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    assert schema_errors(manifest, "V1beta1InferenceService", "") == []
    readme = docs_text("kubeflow")
    serving_dir = re.search(r"--serving-model-dir (gs://\S+)", readme).group(1)
    predictor = manifest["spec"]["predictor"]
    if "model" in predictor:
        assert predictor["model"]["storageUri"] == serving_dir
    else:
        [container] = predictor["containers"]
        assert {"name": "STORAGE_URI", "value": serving_dir} in container["env"]


def test_the_checker_finds_a_field_kserve_does_not_have():
    manifest = load(PROJECT_ROOT / "deploy" / "kserve" / "imdb-bert-tfx-tfserving.yaml")
    manifest["spec"]["predictor"]["model"]["storageURI"] = manifest["spec"]["predictor"]["model"].pop("storageUri")
    manifest["spec"]["predictor"]["model"]["resources"]["requests"] = ["1"]
    assert schema_errors(manifest, "V1beta1InferenceService", "") == [
        ".spec.predictor.model.storageURI: not a field of V1beta1ModelSpec",
        ".spec.predictor.model.resources.requests: a mapping expected",
    ]


def test_the_custom_predictor_runs_the_server_with_flags_it_accepts_on_kserves_port():
    manifest = load(PROJECT_ROOT / "deploy" / "kserve" / "imdb-bert-tfx-server.yaml")
    [container] = manifest["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container"  # the only name KServe reads STORAGE_URI from
    assert container["command"] == ["python", "-m", "runners.serve"]
    args, config = serve.parse_args(container["args"])
    assert args.serving_dir == "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI
    assert config.port == container["ports"][0]["containerPort"] == container["readinessProbe"]["httpGet"]["port"]
    assert config.model_name == manifest["metadata"]["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{config.model_name}"
