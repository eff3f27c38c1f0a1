"""The Keras precision policy for this hardware: "auto" precision is `mixed_bfloat16` where bfloat16 is native
(GPUs of compute capability 8.0+, CPUs with AVX512-BF16 or AMX, unless oneDNN is capped below them)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import tensorflow as tf

from config.training import AUTO, FLOAT32, MIXED_BFLOAT16, PRECISIONS


@contextlib.contextmanager
def keras_policy(policy: str) -> Iterator[None]:
    """Keras' global precision policy is `policy` for the layers built in the block, then what it was."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


# The oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which its kernels compute bfloat16. TensorFlow decides from the
# CPU's own flags and hands bfloat16 ops to oneDNN even under a lower cap (AVX2), where they abort the process.
ONEDNN_BFLOAT16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10_1_512", "ALL")


def onednn_computes_bfloat16() -> bool:
    """Whether TensorFlow's oneDNN kernels are on (TF_ENABLE_ONEDNN_OPTS) and allowed bfloat16 instructions."""
    enabled = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")
    return enabled and os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper().startswith(ONEDNN_BFLOAT16_ISAS)


def resolve_precision(requested: str) -> str:
    """`requested` if explicit; for "auto", the fastest precision this hardware supports natively."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {requested!r}")
    if requested != AUTO:
        return requested
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        native = all(
            tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0) for gpu in gpus
        )
    else:
        native = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"}) and onednn_computes_bfloat16()
    return MIXED_BFLOAT16 if native else FLOAT32
