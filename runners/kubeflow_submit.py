"""Submits a compiled pipeline spec to Kubeflow Pipelines (kfp.Client) or to Vertex AI Pipelines.

Both take the file `KubeflowV2DagRunner` writes (a PipelineJob JSON: `pipelineSpec` plus `runtimeConfig`).
The KFP client reads only a bare PipelineSpec in YAML, so compiling (`kfp_package`) writes one next to the JSON.
Any failure to reach the endpoint becomes a `SubmitError` that says what failed and what to check.
"""

from __future__ import annotations

import json
import os
from typing import Any


class SubmitError(RuntimeError):
    """The spec was compiled but could not be submitted; the message names the endpoint and the fix."""


def package_path(job_path: str) -> str:
    """Where `kfp_package` writes the bare PipelineSpec of `job_path`."""
    return os.path.splitext(job_path)[0] + ".kfp.yaml"


def kfp_package(job_path: str) -> str:
    """Writes `<job>.kfp.yaml`, the bare PipelineSpec that `kfp.Client` uploads; returns its path."""
    import yaml

    with open(job_path) as f:
        job = json.load(f)
    package = package_path(job_path)
    with open(package, "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    return package


def submit_to_kfp(job_path: str, *, host: str, pipeline_root: str, parameters: dict[str, Any],
                  experiment: str, run_name: str | None = None, namespace: str | None = None) -> str:
    """Starts a run on the KFP endpoint `host`; returns the run id. Compiling wrote the package beside the job."""
    import kfp

    package = package_path(job_path)
    try:
        client = kfp.Client(host=host, namespace=namespace)
        result = client.create_run_from_pipeline_package(
            package, arguments=parameters, run_name=run_name, experiment_name=experiment,
            namespace=namespace, pipeline_root=pipeline_root)
    except Exception as error:  # noqa: BLE001 - any client or transport failure means "not submitted"
        raise SubmitError(
            f"Compiled {job_path}, but submitting it to Kubeflow Pipelines at {host} failed: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}\n"
            f"Check that the endpoint is reachable (e.g. `kubectl port-forward -n kubeflow svc/ml-pipeline-ui "
            f"8080:80` and --kfp-host http://localhost:8080) and that you are authenticated to it, then re-run "
            f"with --submit kfp; or upload {package} in the Kubeflow Pipelines UI.") from error
    return result.run_id


def submit_to_vertex(job_path: str, *, project: str, region: str, pipeline_root: str,
                     parameters: dict[str, Any], run_name: str | None = None,
                     service_account: str | None = None) -> str:
    """Starts a Vertex AI PipelineJob from the compiled spec; returns its resource name."""
    from google.cloud import aiplatform

    try:
        aiplatform.init(project=project, location=region)
        job = aiplatform.PipelineJob(
            display_name=run_name or "imdb-bert-tfx", template_path=job_path, pipeline_root=pipeline_root,
            parameter_values=parameters, enable_caching=False)
        job.submit(service_account=service_account)
    except Exception as error:  # noqa: BLE001 - credentials, API or transport failure means "not submitted"
        raise SubmitError(
            f"Compiled {job_path}, but submitting it to Vertex AI Pipelines (project {project}, region {region}) "
            f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}\n"
            f"Check `gcloud auth application-default login` (or GOOGLE_APPLICATION_CREDENTIALS), that the "
            f"Vertex AI API is enabled in {project}, and that the pipeline root is a gs:// bucket in {region}; "
            f"then re-run with --submit vertex.") from error
    return job.resource_name
