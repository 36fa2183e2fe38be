"""Small file helpers shared by the trainer side and the analysis side (no torch here).

Configs, checkpoints, summaries and reports are rewritten while a user may be reading them (or a run
may be killed mid-write, or the machine lose power), so every one of them is written through
:func:`atomic_file`: a temporary file, flushed to disk, renamed over the old one.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` when the block ends without an exception: readers see the
    old or the complete new file, never a part. Its contents are on disk (fsync) before the rename, so a
    crash cannot leave a renamed but empty file. ``f.name`` is the temporary path until then."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented JSON, atomically."""
    atomic_write(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
