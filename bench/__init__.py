"""Benchmarks: scripts that measure and print figures (results in bench/RESULTS.md). Run each from the project
root as a module, e.g. `.venv/bin/python -m bench.trainer_benchmark`."""

import modules  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
