"""Every knob of the imdb-bert-tfx pipeline with its default, and `PipelineConfig`: the one typed, frozen value
the runners build from their flags and `pipeline.create_pipeline` takes whole (data, training, evaluation and
serving, each its own dataclass with its checks, as Model Garden nests its experiment configs).

Paths can also be moved with environment variables (`IMDB_BERT_TFX_OUTPUT`, `IMDB_BERT_TFX_CACHE`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

from components import ids
from modules import model_interface
from modules.training_config import (ConfigError, TrainingConfig, TuningConfig, check, check_int, check_steps,
                                     check_unit_interval)

PIPELINE_NAME = "imdb-bert-tfx"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Where pipeline artifacts, ML Metadata and pushed models go.
OUTPUT_DIR = os.environ.get("IMDB_BERT_TFX_OUTPUT", str(PROJECT_ROOT / "tfx_output"))
# Where offline defaults (synthetic corpus, locally built encoders) are built once and reused.
CACHE_DIR = os.environ.get("IMDB_BERT_TFX_CACHE", str(PROJECT_ROOT / ".cache"))
# The curated schema every split is validated against (ImportSchemaGen + ExampleValidator), and what
# DistributionValidator compares (this span vs the previous one, eval vs train) with its bounds.
SCHEMA_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "schema.pbtxt")
DRIFT_CONFIG_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "drift.pbtxt")
# aclImdb/train is divided into these splits by hash buckets of the review id (train 4 : eval 1).
TRAIN_SPLIT_BUCKETS: Mapping[str, int] = {model_interface.TRAIN_SPLIT: 4, model_interface.EVAL_SPLIT: 1}


def download_dir(cache_dir: str = CACHE_DIR) -> str:
    """Downloaded and extracted corpus archives are cached here."""
    return os.path.join(cache_dir, "imdb")


def quick_look_dir(output_dir: str = OUTPUT_DIR) -> str:
    """The quick look (the synthetic corpus) keeps its artifacts, metadata and served models apart, here."""
    return os.path.join(output_dir, "quick-look")


def serving_model_dir(output_dir: str = OUTPUT_DIR) -> str:
    """Pushed models land in `<this>/<version>/` (TF Serving's layout)."""
    return os.path.join(output_dir, "serving_model", PIPELINE_NAME)


def pipeline_root(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "pipelines", PIPELINE_NAME)


def metadata_path(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "metadata", PIPELINE_NAME, "metadata.db")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What ImdbExampleGen reads, how it splits it, and what the data is validated against.

    `source`: an aclImdb folder ({train,test}/{pos,neg}/<id>_<rating>.txt, local or gs://...), a .tar.gz of one,
    an http(s)/file URL of the tarball, or a series of such folders with TFX's `{SPAN}` (e.g.
    gs://BUCKET/reviews/span-{SPAN}), of which a run reads the newest `spans`. `sha256`: the tarball's expected
    checksum (None: the known one for the official URL, else unchecked). aclImdb/train is divided into
    `train_split_buckets` by hash buckets of the review id; aclImdb/test is `test_split` ("" for a train-only
    corpus). With `stop_on_drift`, a drift measure beyond its bound stops the run before training.
    """

    source: str
    sha256: str | None = None
    download_dir: str = download_dir()
    train_split_buckets: Mapping[str, int] = dataclasses.field(default_factory=lambda: dict(TRAIN_SPLIT_BUCKETS))
    test_split: str = model_interface.TEST_SPLIT
    spans: int | None = None
    schema_file: str = SCHEMA_FILE
    drift_config_file: str = DRIFT_CONFIG_FILE
    stop_on_drift: bool = False

    def __post_init__(self):
        from components.ingestion import imdb_spans

        if self.spans is not None:
            check_int("spans", self.spans, 1)
            if not imdb_spans.has_spans(self.source):
                raise ConfigError(f"--spans {self.spans}: --data must name a series of spans with "
                                  f"{imdb_spans.SPAN_SPEC}, e.g. reviews/span-{imdb_spans.SPAN_SPEC}")
        if not os.path.exists(self.drift_config_file):
            raise ConfigError(f"--drift-config {self.drift_config_file!r}: no such file")


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The gate: bless only at or above `accuracy_threshold` on `split` (a model that learned nothing scores
    about 0.5), and at most `max_accuracy_drop` below the served model (TFMA ignores this on the first run).
    Metrics are also reported per value of each of `slice_features`. The test split is evaluated by a second
    Evaluator, for the report only."""

    accuracy_threshold: float = 0.7
    max_accuracy_drop: float = 0.02
    split: str = model_interface.EVAL_SPLIT
    slice_features: tuple[str, ...] = (model_interface.LENGTH_BUCKET_FEATURE, model_interface.RATING_FEATURE)

    def __post_init__(self):
        check_unit_interval("accuracy_threshold", self.accuracy_threshold, closed=True)
        check_unit_interval("max_accuracy_drop", self.max_accuracy_drop, closed=True)
        check("split", self.split, bool(self.split), "must name a split")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline: where it writes (`root`, local path or gs://...), its data, the Trainer's settings
    (`training`, its custom_config: encoder handles and hyperparameters; `train_steps` total optimizer steps,
    None: `training.epochs` passes; `eval_steps` validation batches per epoch, None: the whole split), TFX's
    Tuner first with `tuning`, the gate, and `serving_model_dir`, where blessed models are pushed whole to
    `<this>/<version>/`. `beam_args` go to the Beam-based components; `enable_cache` reuses finished executions
    whose inputs and properties are unchanged."""

    root: str
    data: DataConfig
    training: TrainingConfig
    serving_model_dir: str
    evaluation: EvaluationConfig = EvaluationConfig()
    train_steps: int | None = None
    eval_steps: int | None = None
    tuning: TuningConfig | None = None
    beam_args: tuple[str, ...] = ()
    enable_cache: bool = False
    name: str = PIPELINE_NAME

    def __post_init__(self):
        from google.protobuf import text_format
        from tensorflow_metadata.proto.v0 import schema_pb2

        check_steps("train_steps", self.train_steps)
        check_steps("eval_steps", self.eval_steps)
        schema_file, slice_features = self.data.schema_file, self.evaluation.slice_features
        if not os.path.exists(schema_file):  # the Kubeflow image's path may not be here
            return
        try:  # every slice feature must be a feature of the schema the data is validated against
            with open(schema_file, encoding="utf-8") as f:
                features = {feature.name for feature in text_format.Parse(f.read(), schema_pb2.Schema()).feature}
        except (OSError, text_format.ParseError) as error:
            raise ConfigError(f"--schema-file {schema_file!r}: cannot be read as a schema ({error})") from error
        unknown = [f for f in slice_features if f not in features]
        if unknown:
            raise ConfigError(f"--slice-features {','.join(slice_features)!r}: {', '.join(unknown)} "
                              f"not in the schema {schema_file}; allowed: {', '.join(sorted(features))}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The training settings a run takes unless a flag sets one (--recipe NAME)."""

    seq_length: int
    truncation: str
    learning_rate: float
    epochs: int
    train_steps: int | None  # None: `epochs` passes over the train split
    attention_dropout_rate: float | None = None  # None: the encoder's own
    # Validation batches after each epoch, from the eval split's first (label-mixed) records; None or 0: all of it.
    # The Evaluator scores the exported epoch on the whole split either way.
    eval_steps: int | None = None

    def describe(self) -> str:
        length = f"{self.train_steps} steps in {self.epochs} epochs" if self.train_steps else f"{self.epochs} epochs"
        attention = ("" if self.attention_dropout_rate is None
                     else f", attention dropout {self.attention_dropout_rate:g}")
        validation = f", validated on {self.eval_steps} batches" if self.eval_steps else ""
        return f"seq {self.seq_length}, {self.truncation}, lr {self.learning_rate:g}, {length}{attention}{validation}"


# Measured on the real train archive with the offline MiniLM (bench/RESULTS.md, "Time to accuracy"). "best": 512
# tokens of each review's head and tail (the whole review, nearly always), lr 5e-5, no attention dropout (half a
# step's time at 512 tokens went to drawing its random masks), 800 steps of 32 (1.3 passes over the 20,018-review
# train split) with the schedule ending there, validated after each quarter on 40 batches (1,280 reviews: a full
# pass cost as much as 50 steps), the best quarter exported. "two-pass": the former best, two passes with the
# encoder's attention dropout: 0.9231 after 1,250 steps, at about twice the time. "fast": 256 tokens, one pass:
# 0.9087 in a quarter of two-pass's time. "tutorial": "Classify text with BERT" exactly (TrainingConfig's
# defaults). "quick-look": the synthetic offline corpus, whose short, formulaic reviews are learned within the
# first epoch.
RECIPES: dict[str, Recipe] = {
    "best": Recipe(seq_length=512, truncation="head+tail", learning_rate=5e-5, epochs=4, train_steps=800,
                   attention_dropout_rate=0.0, eval_steps=40),
    "two-pass": Recipe(seq_length=512, truncation="head+tail", learning_rate=5e-5, epochs=5, train_steps=1250),
    "fast": Recipe(seq_length=256, truncation="head+tail", learning_rate=5e-5, epochs=5, train_steps=625),
    "tutorial": Recipe(TrainingConfig.seq_length, TrainingConfig.truncation, TrainingConfig.learning_rate,
                       TrainingConfig.epochs, train_steps=None),
    "quick-look": Recipe(TrainingConfig.seq_length, TrainingConfig.truncation, TrainingConfig.learning_rate,
                         epochs=2, train_steps=30),
}
REAL_DATA_RECIPE = "best"  # with --data (any real corpus)
SYNTHETIC_DATA_RECIPE = "quick-look"  # without it

# --- Kubeflow Pipelines v2 ------------------------------------------------------------------------
# The component image (see Dockerfile): the tag `make image` and scripts/build_image.sh build by default, which
# kfp.local runs; a cluster pulls from a registry, so for --target kfp or vertex --image must name one
# (kubeflow_runner.py refuses a name without a registry or namespace). Where the image holds the project, and
# where the compiled spec is written.
KUBEFLOW_IMAGE = "imdb-bert-tfx:local"
KUBEFLOW_IMAGE_BUILD_HINT = "make image push IMAGE=REGISTRY/imdb-bert-tfx:TAG"
KUBEFLOW_IMAGE_PROJECT_ROOT = "/opt/imdb-bert-tfx"
KUBEFLOW_PIPELINE_SPEC = "imdb-bert-tfx_pipeline.json"
# The encoder a cluster run trains by default: the local default's, the offline MiniLM in TF Hub format,
# converted into the image when it is built (Dockerfile: `python -m runners.offline_assets`) under this folder of
# the image's project root, so the run needs no internet and trains the model the recipes were measured on.
KUBEFLOW_IMAGE_CACHE_DIR = ".cache"
# Where a compiled spec runs (--target) -> the URL schemes its artifact and serving roots may use. TFX's
# executors open artifact URIs themselves with tf.io.gfile, so KFP's default minio:// root will not do; this
# project's TensorFlow opens gs:// (tests check it). "kfp-local": kfp.local's DockerRunner, absolute local
# paths mounted into the containers.
KUBEFLOW_TARGETS: dict[str, tuple[str, ...]] = {"kfp": ("gs://",), "vertex": ("gs://",), "kfp-local": ()}
KUBEFLOW_FILESYSTEMS_NOTE = ("s3:// needs tensorflow-io's plugin, whose newest release (0.37.1) is built for "
                             "TensorFlow 2.16 and does not load with 2.21")
# Execution properties compiled as pipeline parameters, settable per run without recompiling:
# parameter name -> (component id, execution property, description). TFX compiles a RuntimeParameter only
# as a whole execution property, so proto-valued ones (TrainArgs, TFMA EvalConfig) take the proto's JSON.
KUBEFLOW_RUNTIME_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "data_source": (ids.EXAMPLE_GEN, "source", "aclImdb folder (gs://...) or tarball URL to read"),
    "train_args": (ids.TRAINER, "train_args",
                   'TFX TrainArgs as JSON, e.g. {"splits": ["train"], "num_steps": 2000}'),
    "eval_args": (ids.TRAINER, "eval_args", 'TFX EvalArgs as JSON, e.g. {"splits": ["eval"], "num_steps": 100}'),
    "eval_config": (ids.EVALUATOR, "eval_config",
                    "TFMA EvalConfig as JSON; its BinaryAccuracy threshold gates the push"),
}
# CPU and memory each task requests on a cluster (--task-resources ID=CPU,MEMORY), by component id; the rest
# get "default". The Trainer fine-tunes BERT: the most of both, yet it fits KUBEFLOW_NODE_SHAPE with room for
# the node's system pods. See runners/kubeflow_resources.py.
KUBEFLOW_TASK_RESOURCES: dict[str, tuple[str, str]] = {
    "default": ("1", "4Gi"),
    ids.STATISTICS_GEN: ("2", "8Gi"),
    ids.TRAINER: ("7", "26Gi"),
    ids.EVALUATOR: ("4", "16Gi"),
    ids.TEST_SET_EVALUATOR: ("4", "16Gi"),
}
# The node every task's requests must fit (--node-shape CPU,MEMORY; compiling warns if one does not): an 8-vCPU,
# 32 GB machine (GKE e2-standard-8, n2-standard-8). A pod can have the node's allocatable (its capacity less
# the kubelet's reservation, by GKE's formula: 7.91 CPU and 28.3Gi here) less what the node's system pods
# (kube-proxy, logging and metrics agents, CSI driver: KUBEFLOW_SYSTEM_PODS) request.
KUBEFLOW_NODE_SHAPE = ("8", "32Gi")
KUBEFLOW_SYSTEM_PODS = ("400m", "1Gi")
# --trainer-gpus N: the accelerator the Trainer asks for, per target (KFP: the Kubernetes resource name; Vertex
# AI: its accelerator type), and the image target with TensorFlow's CUDA libraries it then runs in (Dockerfile
# `gpu`; --gpu-image, default: --image with this suffix on its tag).
KUBEFLOW_GPU_TYPES: dict[str, str] = {"kfp": "nvidia.com/gpu", "kfp-local": "nvidia.com/gpu",
                                      "vertex": "NVIDIA_TESLA_T4"}
KUBEFLOW_GPU_IMAGE_SUFFIX = "-gpu"
# Dataflow (--dataflow-project/--dataflow-region): Beam components run there, with the component image as
# the workers' SDK container (it holds the project's code), staging under <pipeline root>/beam-temp.
DATAFLOW_BEAM_ARGS: list[str] = ["--runner=DataflowRunner", "--experiments=use_runner_v2"]
# Submission (--submit kfp|vertex). The KFP endpoint, e.g. after
# `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`; Vertex AI region.
KFP_HOST = os.environ.get("KFP_HOST", "http://localhost:8080")
VERTEX_REGION = "us-central1"
