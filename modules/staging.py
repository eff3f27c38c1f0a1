"""Files and folders that appear whole: written under a temporary name beside their target, then renamed into
place, so an interrupted write leaves the old target or none, never half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged(target: Path) -> Iterator[Path]:
    """A path beside `target` (not created: write the file or folder there) that replaces `target` when the block
    ends without an error; on an error it is removed. Its parent folder is scratch space, removed afterwards."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # On the target's filesystem, so the rename is one step; hidden, so a listing of the parent skips it.
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent) as scratch:
        staging = Path(scratch) / target.name
        yield staging
        if target.is_dir():  # a rename does not replace a folder that holds anything
            shutil.rmtree(target)
        os.replace(staging, target)
