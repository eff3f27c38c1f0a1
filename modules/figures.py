"""A matplotlib Figure saved as PNG: the one way the project's plots (report, run history, training history,
benchmarks) become images."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def png_bytes(figure: Figure, dpi: float | None = None, tight: bool = False) -> bytes:
    """`figure` as PNG: at `dpi` (None: the figure's own), cropped to what is drawn with `tight`."""
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return png.getvalue()


def write_png(figure: Figure, path: str, dpi: float | None = None, tight: bool = False) -> None:
    """`figure` as PNG at `path`, local or on any filesystem TensorFlow knows (gs://...)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(png_bytes(figure, dpi, tight))
