# The two commands a newcomer needs: `make run` (the pipeline on its offline default) and `make test`.
# Both install everything first (scripts/setup.sh: system libraries if needed, uv, .venv from uv.lock).

PYTHON := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run serve lint test test-conformance test-kubeflow image push clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PYTHON) local_runner.py $(ARGS)

# The pushed model over HTTP on port 8501, as TF Serving's REST API (runners/serve.py; ARGS="--help" for its flags).
serve: setup
	$(PYTHON) -m runners.serve $(ARGS)

# Style and types first (seconds): ruff's lint and format check, mypy (pyproject.toml configures both).
lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

# The suite on two workers (pytest-xdist), each test file on one worker in its order: the pipeline runs of one
# worker overlap the other's single-threaded work (imports, Beam), about 1.5x faster on 2 cores.
test: lint
	$(PYTHON) -m pytest --numprocesses 2 --dist loadfile $(PYTEST_ARGS)

# Opt-in (CI runs it after `make test`): every task of the compiled Kubeflow spec through the entrypoint, with the
# executor inputs the open-source KFP backend builds (2.4, 2.5, 2.17), on a GCS-compatible store on loopback
# (needs root; elsewhere local folders). About a quarter of an hour on 2 cores. See tests/e2e/test_kfp_backend_conformance.py.
test-conformance: setup
	IMDB_BERT_TFX_CONFORMANCE_TESTS=1 $(PYTHON) -m pytest tests/e2e/test_kfp_backend_conformance.py $(PYTEST_ARGS)

# Opt-in: the compiled Kubeflow pipeline in the real image, run by kfp.local's DockerRunner (needs root or a
# Docker engine, and debootstrap; about half an hour on 2 cores). See tests/e2e/test_kubeflow_docker.py.
test-kubeflow: setup
	IMDB_BERT_TFX_DOCKER_TESTS=1 $(PYTHON) -m pytest -s tests/e2e/test_kubeflow_docker.py $(PYTEST_ARGS)

# The component image every Kubeflow / Vertex AI task runs in (Dockerfile), then pushed where the cluster pulls
# from: `make image push IMAGE=REGISTRY/imdb-bert-tfx:TAG`, and compile with `--image` the same. BASE=debian builds
# it without Docker Hub (scripts/build_image.sh: a base made from Debian packages, the Dockerfile's kfp target).
IMAGE ?= imdb-bert-tfx:local
image:
ifeq ($(BASE),debian)
	scripts/build_image.sh $(IMAGE)
else
	docker build -t $(IMAGE) .
endif

push:
	docker push $(IMAGE)

clean:
	rm -rf tfx_output .cache .pytest_cache
