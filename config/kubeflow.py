"""`KubeflowConfig`: what `kubeflow_runner.py` compiles for and submits to (image, resources, Dataflow, where it
runs), each setting declared once with its flag (`settings.setting`), and the deployment's constants. The image
reference's checks are `images`'; a task's requests, `task_resources`'."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from types import MappingProxyType

from config import ids
from config.images import IMAGE_BUILD_HINT, check_image, image_reference
from config.pipeline import PIPELINE_NAME
from config.settings import ConfigError, check_settings, setting
from config.task_resources import DEFAULT_TASK, GpuRequest, TaskResources, gpu_request

# What multi-user Kubeflow's API server takes from a client outside the cluster: a bearer token it reviews with the
# audience pipelines.kubeflow.org, or the session cookie its Istio gateway turns into the kubeflow-userid header
# (kubeflow/pipelines backend/src/apiserver/auth/auth.go and common/const.go, DefaultTokenReviewAudience, at 2.17.0).
CREDENTIALS_HINT = (
    "pass --kfp-token-file FILE (`kubectl create token default-editor -n NS --audience pipelines.kubeflow.org > "
    "FILE`) or --kfp-cookie-file FILE (your browser's oauth2_proxy_kubeflow cookie as NAME=VALUE)"
)
# The encoder a cluster run trains by default: the local default's, the offline MiniLM in TF Hub format,
# converted into the image when it is built (Dockerfile: `python -m runners.offline_assets`) under this folder of
# the image's project root, so the run needs no internet and trains the model the recipes were measured on.
IMAGE_CACHE_DIR = ".cache"
# Where a compiled spec runs (--target) -> the URL schemes its artifact and serving roots may use. TFX's
# executors open artifact URIs themselves with tf.io.gfile, so KFP's default minio:// root will not do; this
# project's TensorFlow opens gs:// (tests check it). "kfp-local": kfp.local's DockerRunner, absolute local
# paths mounted into the containers.
TARGETS: Mapping[str, tuple[str, ...]] = MappingProxyType({"kfp": ("gs://",), "vertex": ("gs://",), "kfp-local": ()})
WEB = ("http://", "https://")  # --data may also be the tarball's URL
FILESYSTEMS_NOTE = (
    "s3:// needs tensorflow-io's plugin, whose newest release (0.37.1) is built for "
    "TensorFlow 2.16 and does not load with 2.21"
)
# Execution properties compiled as pipeline parameters, settable per run without recompiling:
# parameter name -> (component id, execution property, description). TFX compiles a RuntimeParameter only
# as a whole execution property, so proto-valued ones (TrainArgs, TFMA EvalConfig) take the proto's JSON.
RUNTIME_PARAMETERS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "data_source": (ids.EXAMPLE_GEN, "source", "aclImdb folder (gs://...) or tarball URL to read"),
        "train_args": (
            ids.TRAINER,
            "train_args",
            'TFX TrainArgs as JSON, e.g. {"splits": ["train"], "num_steps": 2000}',
        ),
        "eval_args": (ids.TRAINER, "eval_args", 'TFX EvalArgs as JSON, e.g. {"splits": ["eval"], "num_steps": 100}'),
        "eval_config": (
            ids.EVALUATOR,
            "eval_config",
            "TFMA EvalConfig as JSON; its BinaryAccuracy threshold gates the push",
        ),
    }
)
# CPU and memory each task requests on a cluster (--task-resources ID=CPU,MEMORY), by component id; the rest
# get "default". Memory: each task's peak on the real archive with the `best` recipe, each in a process of its
# own (bench/task_memory.py; bench/RESULTS.md, "Each Kubeflow task's peak memory"), times 1.5, rounded up to a
# whole Gi. CPU: a request, not a limit, so a task also uses the node's idle cores; the Trainer's 4 and the two
# evaluators' 2 each (they run at the same time) fit beside NODE_SHAPE's other pods (below), so the Trainer schedules
# on a node that also runs Kubeflow. See runners/kubeflow_resources.py.
TASK_RESOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        DEFAULT_TASK: ("1", "3Gi"),
        ids.TRAINER: ("4", "10Gi"),
        ids.EVALUATOR: ("2", "6Gi"),
        ids.TEST_SET_EVALUATOR: ("2", "6Gi"),
    }
)
# The node every task's requests must fit (--node-shape CPU,MEMORY; compiling warns if one does not): an 8-vCPU,
# 32 GB machine (GKE e2-standard-8, n2-standard-8). A pod can have the node's allocatable (its capacity less
# the kubelet's reservation, by GKE's formula: 7.91 CPU and 28.3Gi here) less what the other pods there request:
# - SYSTEM_PODS, on every node: GKE's DaemonSets, as `kubectl describe node` lists them on GKE 1.29-1.36 (GKE
#   publishes no manifests): kube-proxy 100m (kubernetes cluster/gce/gci/configure-helper.sh,
#   KUBE_PROXY_CPU_REQUEST), fluentbit-gke 105m/230Mi, gke-metrics-agent 21m/145Mi, netd 8m/65Mi, pdcsi-node
#   10m/20Mi, gke-metadata-server 100m/100Mi (Workload Identity), ip-masq-agent 10m/16Mi, node-local-dns 30m/50Mi;
#   and multi-user Kubeflow's istio-cni-node 100m/100Mi (kubeflow/manifests v1.11.0
#   common/istio/istio-install/base/install.yaml): 0.49 CPU and 0.7Gi in all.
# - KUBEFLOW_PODS, should they all sit on the same node (a small cluster): Kubeflow Pipelines 2.17.0's own
#   (manifests/kustomize, multi-user: api server 250m/500Mi, persistence agent 120m/500Mi, MySQL 100m/800Mi,
#   Argo's workflow controller 100m/500Mi, ...: 0.77 CPU and 3.3Gi) and multi-user Kubeflow's Istio, Knative and
#   KServe controllers and sidecars (kubeflow/manifests v1.11.0: 1.67 CPU and 3.5Gi).
NODE_SHAPE = ("8", "32Gi")
SYSTEM_PODS = ("500m", "1Gi")
KUBEFLOW_PODS = ("2500m", "7Gi")
# --trainer-gpus N: the accelerator the Trainer asks for, per target (KFP: the Kubernetes resource name; Vertex
# AI: its accelerator type), and the tag suffix of the image with TensorFlow's CUDA libraries (Dockerfile `gpu`).
GPU_TYPES: Mapping[str, str] = MappingProxyType(
    {"kfp": "nvidia.com/gpu", "kfp-local": "nvidia.com/gpu", "vertex": "NVIDIA_TESLA_T4"}
)
GPU_IMAGE_SUFFIX = "-gpu"
# With --dataflow-project, with the component image (it holds the project's code) as the workers' SDK container.
DATAFLOW_BEAM_ARGS = ("--runner=DataflowRunner", "--experiments=use_runner_v2")
VERTEX_REGION = "us-central1"
RESOURCES = "resources (each task's pod; see runners/kubeflow_resources.py)"
DATAFLOW = "Dataflow (Beam components run on Dataflow, workers use --image)"
SUBMISSION = "submission"


@dataclasses.dataclass(frozen=True, kw_only=True)
class KubeflowConfig:
    """Where the compiled spec runs and with what; `parameter_values`: the runtime parameters --parameter sets,
    `task_resources`: requests that override TASK_RESOURCES'."""

    pipeline_root: str = setting(
        help=f"artifact root the pipeline's pods write: a folder in a bucket ({TARGETS['kfp'][0]}BUCKET/PATH, not "
        "the bucket's root) for --target kfp or vertex, an absolute local path for kfp-local"
    )
    data: str = setting(help="aclImdb folder the cluster can read (gs://...), or the tarball's URL")
    download_dir: str = setting(
        "/tmp/imdb-bert-tfx", "where the ExampleGen container caches and extracts a downloaded tarball"
    )
    serving_model_dir: str = setting(
        help="blessed models are pushed to <this>/<version>/ (a folder, as for --pipeline-root)"
    )
    image: str = setting(
        "imdb-bert-tfx:local",
        "component image, in a registry the cluster pulls from for --target "
        f"kfp or vertex ({IMAGE_BUILD_HINT}; the default is for kfp-local)",
    )
    image_project_root: str = setting(
        "/opt/imdb-bert-tfx", "where the image holds the project (Dockerfile's PROJECT_ROOT)"
    )
    output_file: str = setting("imdb-bert-tfx_pipeline.json", "compiled spec (JSON)")
    parameter_values: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    task_resources: Mapping[str, TaskResources] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    node_shape: TaskResources = dataclasses.field(default_factory=lambda: TaskResources(*NODE_SHAPE))
    trainer_gpus: int = setting(0, "GPUs for the Trainer, which then runs in --gpu-image", group=RESOURCES)
    gpu_type: str | None = setting(
        None,
        "accelerator the Trainer asks for (default: nvidia.com/gpu on KFP, NVIDIA_TESLA_T4 on Vertex AI)",
        group=RESOURCES,
    )
    gpu_image: str | None = setting(
        None,
        "the Trainer's image with --trainer-gpus: the Dockerfile's `gpu` target "
        f"(default: --image with {GPU_IMAGE_SUFFIX} after its tag)",
        group=RESOURCES,
    )
    dataflow_project: str | None = setting(None, "GCP project to run Dataflow jobs in", group=DATAFLOW)
    dataflow_region: str = setting(VERTEX_REGION, "Dataflow region", group=DATAFLOW)
    target: str = setting(
        "kfp",
        "where the spec will run, for the path checks (default: --submit's, else kfp)",
        choices=tuple(TARGETS),
        group=SUBMISSION,
    )
    submit: str | None = setting(
        None,
        "after compiling, start a run there (implies --target of the same name)",
        choices=("kfp", "vertex"),
        group=SUBMISSION,
    )
    kfp_host: str = setting(
        os.environ.get("KFP_HOST", "http://localhost:8080"),
        "KFP API endpoint, e.g. after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`",
        group=SUBMISSION,
    )
    kfp_namespace: str | None = setting(None, "KFP namespace (multi-user deployments)", group=SUBMISSION)
    kfp_token_file: str | None = setting(
        os.environ.get("KF_PIPELINES_SA_TOKEN_PATH"),
        "multi-user Kubeflow: a file holding a bearer token the API server accepts, e.g. `kubectl create token "
        "default-editor -n NS --audience pipelines.kubeflow.org > FILE` (default: $KF_PIPELINES_SA_TOKEN_PATH, as "
        "kfp's SDK reads it)",
        group=SUBMISSION,
    )
    kfp_cookie_file: str | None = setting(
        None,
        "multi-user Kubeflow behind Dex and oauth2-proxy: a file holding your browser's session cookie as "
        "NAME=VALUE (e.g. oauth2_proxy_kubeflow=...)",
        group=SUBMISSION,
    )
    experiment: str = setting(PIPELINE_NAME, "KFP experiment", group=SUBMISSION)
    run_name: str | None = setting(None, "run name shown in the UI", group=SUBMISSION)
    vertex_project: str | None = setting(None, "GCP project for Vertex AI Pipelines", group=SUBMISSION)
    vertex_region: str = setting(VERTEX_REGION, "Vertex AI region", group=SUBMISSION)
    service_account: str | None = setting(None, "service account the Vertex AI run uses", group=SUBMISSION)

    def __post_init__(self):
        """Raises ConfigError (ResourceError) for what the target refuses: a path its pods cannot open (or a
        bucket's root), an image it cannot pull (`check_image`), a submission without its project, GPUs it names
        otherwise."""
        check_settings(self)
        schemes = TARGETS[self.target]
        for flag, value, extra, written in (
            ("--pipeline-root", self.pipeline_root, (), True),
            ("--data", self.data, WEB, False),
            ("--serving-model-dir", self.serving_model_dir, (), True),
        ):
            if schemes and not value.startswith(schemes + extra):
                raise ConfigError(
                    f"{flag} {value}: the pipeline's pods open it with TensorFlow's filesystems, which "
                    f"read {', '.join(schemes + extra)} on a cluster ({FILESYSTEMS_NOTE}); use "
                    f"{schemes[0]}BUCKET/PATH"
                )
            if not schemes and not (os.path.isabs(value) or value.startswith(extra)):
                raise ConfigError(
                    f"{flag} {value}: --target kfp-local mounts absolute local paths into the "
                    f"containers; use {os.path.abspath(value)}"
                )
            if written and schemes:
                check_folder(flag, value)
        check_image("--image", self.image, self.target)
        if self.gpu_image:
            check_image("--gpu-image", self.gpu_image, self.target)
        for flag, path in (("--kfp-token-file", self.kfp_token_file), ("--kfp-cookie-file", self.kfp_cookie_file)):
            if self.submit == "kfp" and path and not os.path.isfile(path):
                raise ConfigError(f"{flag} {path}: no such file; {CREDENTIALS_HINT}")
        if self.submit == "vertex" and not self.vertex_project:
            raise ConfigError("--submit vertex needs --vertex-project")
        self.gpu()

    def gpu(self) -> GpuRequest | None:
        """The Trainer's GPUs (--trainer-gpus of --gpu-type, else the target's); ResourceError if the target
        would refuse them."""
        return gpu_request(self.trainer_gpus, self.gpu_type or GPU_TYPES[self.target], self.target)

    def trainer_image(self) -> str:
        """--gpu-image, else --image's repository with the GPU suffix after its tag (REGISTRY/NAME:TAG ->
        REGISTRY/NAME:TAG-gpu; no tag: latest-gpu). A digest pins the CPU image only: it is not carried over."""
        if self.gpu_image:
            return self.gpu_image
        image = image_reference(self.image)
        return f"{image.name}:{image.tag or 'latest'}{GPU_IMAGE_SUFFIX}"

    def beam_args(self) -> list[str]:
        """The Beam options that run the Beam components on Dataflow (with --dataflow-project), else none."""
        return (
            [
                *DATAFLOW_BEAM_ARGS,
                f"--project={self.dataflow_project}",
                f"--region={self.dataflow_region}",
                f"--temp_location={self.pipeline_root.rstrip('/')}/beam-temp",
                f"--sdk_container_image={self.image}",
            ]
            if self.dataflow_project
            else []
        )


def check_folder(flag: str, url: str) -> None:
    """ConfigError if `url` (a bucket URL the pods write under) is the bucket's root: TensorFlow's GCS filesystem
    asks for the bucket itself on such a path (runners/kfp_entrypoint.py, point 5), which the pods' account, an
    object admin, may not ask for."""
    scheme, _, rest = url.partition("://")
    bucket, _, folder = rest.partition("/")
    if not folder.strip("/"):
        raise ConfigError(
            f"{flag} {url}: a bucket's root, where TensorFlow's filesystem asks for the bucket itself "
            f"(storage.buckets.get), which the pods' roles/storage.objectAdmin does not grant (403); use a folder "
            f"in it, e.g. {scheme}://{bucket or 'BUCKET'}/{PIPELINE_NAME}"
        )
