"""What machine a bench's figures come from, for its first line: the CPU (model name, family and model number,
which tell CPUs of one brand name apart) and its cores."""

from __future__ import annotations

import os
import platform


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """E.g. "Intel(R) Xeon(R) Processor (family 6, model 207)"; `platform.processor()` where /proc has no CPU."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo_path, encoding="utf-8") as f:
            for line in f:
                name, _, value = line.partition(":")
                if not name.strip():  # the first processor's block ends here
                    break
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or "unknown CPU"
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def cores_and_cpu() -> str:
    """E.g. "2 cores of Intel(R) Xeon(R) Processor (family 6, model 207)"."""
    return f"{os.cpu_count()} cores of {cpu_model()}"
