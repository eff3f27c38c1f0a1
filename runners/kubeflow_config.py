"""`KubeflowConfig`: what `kubeflow_runner.py` compiles for and submits to (image, resources, Dataflow, where it
runs), each setting declared once with its flag (`training_config.setting`), and the deployment's constants."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from types import MappingProxyType

from components import ids
from modules.training_config import ConfigError, check_settings, setting
from pipeline import configs
from runners import kubeflow_resources
from runners.kubeflow_resources import TaskResources

# What multi-user Kubeflow's API server takes from a client outside the cluster: a bearer token it reviews with the
# audience pipelines.kubeflow.org, or the session cookie its Istio gateway turns into the kubeflow-userid header
# (kubeflow/pipelines backend/src/apiserver/auth/auth.go and common/const.go, DefaultTokenReviewAudience, at 2.17.0).
CREDENTIALS_HINT = (
    "pass --kfp-token-file FILE (`kubectl create token default-editor -n NS --audience pipelines.kubeflow.org > "
    "FILE`) or --kfp-cookie-file FILE (your browser's oauth2_proxy_kubeflow cookie as NAME=VALUE)"
)
# How to build and push the component image (see Dockerfile) to a registry, which a cluster pulls it from. The
# upper-case words of the image names in it, the README and kubeflow_runner.py's usage are PLACEHOLDERS, refused
# in an image; the refusals show IMAGE_EXAMPLE instead, a reference the checks accept (tests say so).
IMAGE_FORM = "REGISTRY/imdb-bert-tfx:TAG"
IMAGE_BUILD_HINT = f"make image push IMAGE={IMAGE_FORM}"
IMAGE_EXAMPLE = "us-docker.pkg.dev/my-project/my-repo/imdb-bert-tfx:1.0"
PLACEHOLDERS = ("REGISTRY", "REGION", "PROJECT", "REPOSITORY", "TAG")
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
# get "default". The Trainer fine-tunes BERT: the most of both, yet it fits NODE_SHAPE with room for the node's
# system pods. See runners/kubeflow_resources.py.
TASK_RESOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        kubeflow_resources.DEFAULT_TASK: ("1", "4Gi"),
        ids.STATISTICS_GEN: ("2", "8Gi"),
        ids.TRAINER: ("7", "26Gi"),
        ids.EVALUATOR: ("4", "16Gi"),
        ids.TEST_SET_EVALUATOR: ("4", "16Gi"),
    }
)
# The node every task's requests must fit (--node-shape CPU,MEMORY; compiling warns if one does not): an 8-vCPU,
# 32 GB machine (GKE e2-standard-8, n2-standard-8). A pod can have the node's allocatable (its capacity less
# the kubelet's reservation, by GKE's formula: 7.91 CPU and 28.3Gi here) less what the node's system pods
# (kube-proxy, logging and metrics agents, CSI driver: SYSTEM_PODS) request.
NODE_SHAPE = ("8", "32Gi")
SYSTEM_PODS = ("400m", "1Gi")
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
    experiment: str = setting(configs.PIPELINE_NAME, "KFP experiment", group=SUBMISSION)
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

    def gpu(self) -> kubeflow_resources.GpuRequest | None:
        """The Trainer's GPUs (--trainer-gpus of --gpu-type, else the target's); ResourceError if the target
        would refuse them."""
        return kubeflow_resources.gpu_request(self.trainer_gpus, self.gpu_type or GPU_TYPES[self.target], self.target)

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
            f"in it, e.g. {scheme}://{bucket or 'BUCKET'}/{configs.PIPELINE_NAME}"
        )


# An image reference as Docker and containerd parse one: distribution/reference v0.6.0's grammar, in its
# regexp.go's text (https://github.com/distribution/reference/blob/v0.6.0/regexp.go), matched in ASCII as Go
# does; normalize.go's splitDockerDomain says whether the first component is a registry; the digest, as
# go-digest's algorithm.go validates it (lower-case hex of the algorithm's length).
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_NAME_COMPONENT + r"(?:\." + _DOMAIN_NAME_COMPONENT + ")*"
_HOST = "(?:" + _DOMAIN_NAME + "|" + _IPV6_ADDRESS + ")"
_PATH_COMPONENT = _ALPHANUMERIC + "(?:" + _SEPARATOR + _ALPHANUMERIC + ")*"
DOMAIN_AND_PORT = re.compile(_HOST + _OPTIONAL_PORT, re.ASCII)
REMOTE_NAME = re.compile(_PATH_COMPONENT + "(?:/" + _PATH_COMPONENT + ")*", re.ASCII)
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
REMOTE_NAME_MAX = 255  # reference.go: RepositoryNameTotalLengthMax
DIGEST_HEX_LENGTHS: Mapping[str, int] = MappingProxyType({"sha256": 64, "sha384": 96, "sha512": 128})
LOWER_HEX = re.compile("[a-f0-9]+")


@dataclasses.dataclass(frozen=True)
class ImageReference:
    """[registry/]path[:tag][@digest]; `registry` "" for Docker Hub, `tag` and `digest` "" when absent."""

    registry: str
    path: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.path}" if self.registry else self.path


def image_reference(image: str) -> ImageReference:
    """`image` parsed as distribution/reference's ParseNormalizedNamed parses it; ValueError saying which part
    breaks the grammar."""
    rest, at, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:  # a colon before a slash is a registry's port
        name, colon, tag = rest, "", ""
    first, slash, remainder = name.partition("/")
    is_registry = bool(slash) and (first == "localhost" or any(c in first for c in ".:") or first != first.lower())
    registry, path = (first, remainder) if is_registry else ("", name)
    algorithm, _, encoded = digest.partition(":")
    if is_registry and not DOMAIN_AND_PORT.fullmatch(registry):
        raise ValueError(f"the registry {registry!r} is not a host name, IPv4 or [IPv6] address, and optional :port")
    if path != path.lower():
        raise ValueError(f"the repository path {path!r} must be lower case")
    if not REMOTE_NAME.fullmatch(path):
        raise ValueError(
            f"the repository path {path!r} must be parts of lower-case letters and digits joined by '/', each "
            "joined within by '.', '_', '__' or dashes"
        )
    if len(path) > REMOTE_NAME_MAX:
        raise ValueError(f"the repository path has {len(path)} characters, over {REMOTE_NAME_MAX}")
    if colon and not TAG.fullmatch(tag):
        raise ValueError(
            f"the tag {tag!r} must be 1 to 128 letters, digits, '_', '.' or '-', and not start with '.' or '-'"
        )
    if at and not (len(encoded) == DIGEST_HEX_LENGTHS.get(algorithm) and LOWER_HEX.fullmatch(encoded)):
        raise ValueError(
            f"the digest {digest!r} must be sha256: and 64 lower-case hex digits (sha384: 96, sha512: 128)"
        )
    return ImageReference(registry, path, tag, digest)


def placeholders(image: str) -> list[str]:
    """The PLACEHOLDERS among `image`'s words, in order."""
    return list(dict.fromkeys(word for word in re.findall(r"[A-Za-z0-9]+", image) if word in PLACEHOLDERS))


def check_image(flag: str, image: str, target: str) -> ImageReference:
    """`image` parsed; ConfigError if it still has a placeholder, breaks the reference grammar, or (for a cluster
    target) names neither registry nor namespace: such a name, as the local tag `make image` builds, resolves to
    Docker Hub's official images, which a cluster pulls instead."""
    words = placeholders(image)
    if words:
        raise ConfigError(
            f"{flag} {image}: {', '.join(f'`{word}`' for word in words)} "
            f"{'is a placeholder' if len(words) == 1 else 'are placeholders'} from the README; put your "
            f"registry's path and a tag, e.g. {IMAGE_EXAMPLE}"
        )
    try:
        reference = image_reference(image)
    except ValueError as error:
        raise ConfigError(f"{flag} {image}: not an image reference: {error}; e.g. {IMAGE_EXAMPLE}") from None
    if target != "kfp-local" and not reference.registry and "/" not in reference.path:
        raise ConfigError(
            f"{flag} {image}: a cluster pulls each task's image from a registry, and this names none; build and "
            f"push one ({IMAGE_BUILD_HINT.replace(IMAGE_FORM, IMAGE_EXAMPLE)}) and pass it as {flag}"
        )
    return reference
