# syntax=docker/dockerfile:1
# The component image: every task of the compiled Kubeflow / Vertex AI pipeline runs in it
# (kubeflow_runner.py --image), and Dataflow workers use it as their SDK container (--dataflow-project).
#
#   docker build -t REGISTRY/imdb-bert-tfx:TAG . && docker push REGISTRY/imdb-bert-tfx:TAG
#
# It holds the repository's locked dependencies (uv.lock, installed with --locked: the build fails if the
# lock is out of date) and the project's code at PROJECT_ROOT, which must equal
# pipeline/configs.py:KUBEFLOW_IMAGE_PROJECT_ROOT (the compiled spec names files there, e.g. the schema).
# ml-metadata and TFDV 1.21 ship only manylinux_2_39 wheels: the base must have glibc >= 2.39 (trixie: 2.41).
# tests/test_dockerfile.py checks these promises without a container engine.

ARG PYTHON_IMAGE=python:3.11-slim-trixie
ARG UV_VERSION=0.13.9
# Must equal apache-beam's version in uv.lock (the workers' SDK harness and the installed SDK must match).
ARG BEAM_VERSION=2.77.0

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv
FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam_sdk

FROM ${PYTHON_IMAGE}
ARG PROJECT_ROOT=/opt/imdb-bert-tfx
# `python` on PATH is the project's virtual environment: the compiled tasks run
# `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, which imports the project's
# executors (components.*) and the Trainer's run_fn (modules.trainer) from PROJECT_ROOT.
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

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /uvx /usr/local/bin/
# The Beam SDK harness boot program, for Dataflow custom containers (ENTRYPOINT below; KFP sets its own command).
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam

WORKDIR ${PROJECT_ROOT}
# Dependencies first, so a code change does not reinstall them: exactly the repository's lock, no dev group.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project --python /usr/local/bin/python3.11
# The project (see .dockerignore for what stays out), then the project itself into the environment.
COPY . .
RUN uv sync --locked --no-dev --python /usr/local/bin/python3.11 \
    && python -c "import tfx, ml_metadata, tensorflow_data_validation, tensorflow_text, modules.trainer, components.imdb_example_gen, components.anomalies_gate"

RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin tfx
USER 1000:1000

ENTRYPOINT ["/opt/apache/beam/boot"]
