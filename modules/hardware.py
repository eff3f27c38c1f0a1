"""The `tf.distribute` strategy and the Keras precision policy for this hardware: "auto" precision is
`mixed_bfloat16` where bfloat16 is native (GPUs of compute capability 8.0+, CPUs with AVX512-BF16 or AMX)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import tensorflow as tf

from modules.training_config import AUTO, FLOAT32, MIXED_BFLOAT16, PRECISIONS


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def resolve_precision(requested: str) -> str:
    """`requested` if explicit; for "auto", the fastest precision this hardware supports natively."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {requested!r}")
    if requested != AUTO:
        return requested
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        native = all(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0)
                     for gpu in gpus)
    else:
        native = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    return MIXED_BFLOAT16 if native else FLOAT32


def distribution_strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def describe(strategy: tf.distribute.Strategy, precision: str) -> str:
    devices = tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("CPU")
    return (f"{type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s) on "
            f"{', '.join(d.name for d in devices)}; precision {precision}")


@contextlib.contextmanager
def keras_policy(name: str) -> Iterator[None]:
    """Sets the global Keras precision policy for the layers built inside the block."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
