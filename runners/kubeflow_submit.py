"""Submits a compiled pipeline spec to Kubeflow Pipelines (kfp.Client) or to Vertex AI Pipelines.

Both take the file `KubeflowV2DagRunner` writes (a PipelineJob JSON: `pipelineSpec` plus `runtimeConfig`).
The KFP client reads only a bare PipelineSpec in YAML, so compiling (`kfp_package`) writes one next to the JSON.
Any failure to reach the endpoint becomes a `SubmitError` that says what failed and what to check.
"""

from __future__ import annotations

import contextlib
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
    import yaml  # type: ignore[import-untyped]  # PyYAML ships no types

    with open(job_path) as f:
        job = json.load(f)
    package = package_path(job_path)
    with open(package, "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f, sort_keys=False)
    return package


@contextlib.contextmanager
def submitting(job_path: str, where: str, fix: str, refused_fix: str = ""):
    """Turns any failure inside into a one-line `SubmitError` naming `where` and the `fix` (`refused_fix` when the
    endpoint answered 401 or 403: the credentials are missing or refused)."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - any client, credentials or transport failure means "not submitted"
        status = getattr(error, "status", None)
        if refused_fix and status in (401, 403):
            reason = " ".join(str(getattr(error, "body", "") or getattr(error, "reason", "")).split())[:200]
            raise SubmitError(
                f"Compiled {job_path}, but {where} refused it ({status} {getattr(error, 'reason', '')}: {reason}); "
                f"{refused_fix}"
            ) from error
        raise SubmitError(
            f"Compiled {job_path}, but submitting it to {where} failed: {type(error).__name__}: "
            f"{next(iter(str(error).splitlines()), '')}; {fix}"
        ) from error


def kfp_client(settings: Any):
    """kfp.Client for `settings` (a KubeflowConfig), with its credentials: the token file through kfp's own
    ServiceAccountTokenVolumeCredentials (read again at each refresh, as the kubelet rotates it), the cookie as
    the Cookie header."""
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    credentials = ServiceAccountTokenVolumeCredentials(settings.kfp_token_file) if settings.kfp_token_file else None
    cookies = None
    if settings.kfp_cookie_file:
        with open(settings.kfp_cookie_file, encoding="utf-8") as f:
            cookies = f.read().strip()
    return kfp.Client(
        host=settings.kfp_host, namespace=settings.kfp_namespace, credentials=credentials, cookies=cookies
    )


def submit(run, job_path: str, parameters: dict[str, Any]) -> None:
    """Starts a run of the compiled job where `--submit` says (a `kubeflow_spec.KubeflowRun`'s KubeflowConfig),
    with the pipeline parameters --parameter sets (`parameters` holds every one's value)."""
    settings = run.kubeflow
    arguments = {name: parameters[name] for name in settings.parameter_values}
    if settings.submit == "kfp":
        from config.kubeflow import CREDENTIALS_HINT

        with submitting(
            job_path,
            f"Kubeflow Pipelines at {settings.kfp_host}",
            (
                f"check that the endpoint is reachable (e.g. `kubectl port-forward -n kubeflow svc/ml-pipeline-ui "
                f"8080:80` and --kfp-host http://localhost:8080) and that you are authenticated to it, then re-run "
                f"with --submit kfp; or upload {package_path(job_path)} in the Kubeflow Pipelines UI"
            ),
            f"{CREDENTIALS_HINT}, and --kfp-namespace NS (your profile's namespace)",
        ):
            client = kfp_client(settings)
            result = client.create_run_from_pipeline_package(
                package_path(job_path),
                arguments=arguments,
                run_name=settings.run_name,
                experiment_name=settings.experiment,
                namespace=settings.kfp_namespace,
                pipeline_root=run.config.root,
            )
        print(f"Submitted to Kubeflow Pipelines at {settings.kfp_host}: run {result.run_id}")
    else:
        from google.cloud import aiplatform

        project, region = settings.vertex_project, settings.vertex_region
        with submitting(
            job_path,
            f"Vertex AI Pipelines (project {project}, region {region})",
            (
                f"check `gcloud auth application-default login` (or GOOGLE_APPLICATION_CREDENTIALS), that the "
                f"Vertex AI API is enabled in {project}, and that the pipeline root is a gs:// bucket in {region}; "
                f"then re-run with --submit vertex"
            ),
        ):
            aiplatform.init(project=project, location=region)
            job = aiplatform.PipelineJob(
                display_name=settings.run_name or run.config.name,
                template_path=job_path,
                pipeline_root=run.config.root,
                parameter_values=arguments,
                enable_caching=False,
            )
            job.submit(service_account=settings.service_account)
        print(f"Submitted to Vertex AI Pipelines: {job.resource_name}")
