"""The Keras precision policy for this hardware: "auto" precision is `mixed_bfloat16` where bfloat16 is native
(GPUs of compute capability 8.0+, CPUs with AVX512-BF16 or AMX)."""

from __future__ import annotations

import tensorflow as tf
# tf_keras's own context manager (not re-exported publicly): the global policy for the layers built in the block.
from tf_keras.src.mixed_precision.policy import policy_scope as keras_policy  # noqa: F401

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
