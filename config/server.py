"""The model server's settings (`runners.serve`'s flags), declared once. No TensorFlow: the flags are checked before
the model loads."""

from __future__ import annotations

import dataclasses

from config.settings import POSITIVE, check_settings, integer, setting


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    model_name: str = setting("imdb", "the model's name in request paths (/v1/models/NAME:predict), as TF Serving's")
    port: int = setting(8501, "HTTP port (8501 is TF Serving's REST port)", integer(1, 65535))
    poll_seconds: float = setting(
        1.0, "how often the serving directory is checked for a new version (TF Serving's default too)", POSITIVE
    )
    max_batch_size: int = setting(
        32, "reviews the model runs at once (length-sorted, as the predict command)", integer(1)
    )
    max_instances: int = setting(256, "instances one request may have (more: 400)", integer(1))
    max_body_bytes: int = setting(8 << 20, "largest request body in bytes (more: 413)", integer(1024))

    def __post_init__(self):
        check_settings(self)
