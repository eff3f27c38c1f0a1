# The two commands a newcomer needs: `make run` (the pipeline on its offline default) and `make test`.
# Both install everything first (scripts/setup.sh: system libraries if needed, uv, .venv from uv.lock).

PYTHON := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test test-kubeflow clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PYTHON) local_runner.py $(ARGS)

test: setup
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Opt-in: the compiled Kubeflow pipeline in the real image, run by kfp.local's DockerRunner (needs root or a
# Docker engine, and debootstrap; about half an hour on 2 cores). See tests/test_kubeflow_docker.py.
test-kubeflow: setup
	IMDB_BERT_TFX_DOCKER_TESTS=1 $(PYTHON) -m pytest -s tests/test_kubeflow_docker.py $(PYTEST_ARGS)

clean:
	rm -rf tfx_output .cache .pytest_cache
