# The two commands a newcomer needs: `make run` (the pipeline on its offline default) and `make test`.
# Both install everything first (scripts/setup.sh: system libraries if needed, uv, .venv from uv.lock).

PYTHON := .venv/bin/python
export TF_USE_LEGACY_KERAS := 1
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PYTHON) local_runner.py $(ARGS)

test: setup
	$(PYTHON) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf tfx_output .cache .pytest_cache
