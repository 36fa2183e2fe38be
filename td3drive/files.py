"""Small file helpers shared by the trainer side and the analysis side (no torch here).

Summaries and reports are rewritten while a user may be reading them (or a run may be killed
mid-write), so they are written to a temporary file and renamed over the old one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: readers see the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    os.replace(tmp, path)


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
