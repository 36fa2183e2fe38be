"""Atomic checkpoints that can never run code: ``torch.save`` to a temp file + rename, loaded with
``torch.load(weights_only=True)``. ``latest.pt`` is a symlink to the newest ``step_<N>.pt``."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.pt"
LAST_GOOD = "last_good.pt"


def replay_name(step: int) -> str:
    """Replay contents saved with ``step_<step>.pt`` (one file, the newest, is kept)."""
    return f"replay_step_{step}.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not one of ours."""


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` so that readers only ever see the old or the complete new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def point_latest(ckpt_dir: Path, target: Path) -> None:
    """Atomically repoint ``latest.pt`` at ``target`` (a symlink; a copy where links are not allowed)."""
    tmp = ckpt_dir / (LATEST + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(target.name, tmp)
    except OSError:
        tmp.write_bytes(target.read_bytes())
    os.replace(tmp, ckpt_dir / LATEST)


def save_step(run_dir: Path, step: int, state: dict, replay_state: dict | None = None) -> Path:
    """Save ``checkpoints/step_<step>.pt`` (and ``replay_step_<step>.pt``), then point ``latest.pt`` at it.

    The replay file carries the step in its name so that a crash between the two writes can never
    pair a checkpoint with replay contents of another step; older replay files are removed once
    ``latest.pt`` has moved on (they are large).
    """
    ckpt_dir = run_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if replay_state is not None:
        atomic_save(replay_state, ckpt_dir / replay_name(step))
    path = ckpt_dir / f"step_{step}.pt"
    atomic_save(state, path)
    point_latest(ckpt_dir, path)
    for old in ckpt_dir.glob("replay_step_*.pt"):
        if old.name != replay_name(step):
            old.unlink(missing_ok=True)
    return path


def link_or_copy(source: Path, dest: Path) -> None:
    """Atomically make ``dest`` a hard link to ``source`` (a copy where links fail, e.g. across devices)."""
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        tmp.write_bytes(source.read_bytes())
    os.replace(tmp, dest)


def keep_last_good(run_dir: Path, source: Path) -> None:
    """Keep ``source`` as ``checkpoints/last_good.pt``."""
    link_or_copy(source, run_dir / CHECKPOINT_DIR / LAST_GOOD)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (tensors and plain containers only)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}': no such file")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"checkpoint '{p}': cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or "agent" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint '{p}': not a td3drive checkpoint")
    return state


def load_replay(path: Path) -> dict:
    """Load saved replay contents (tensors and plain values only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"replay file '{path}': cannot be loaded ({type(e).__name__})") from None
    if not isinstance(state, dict) or "frames" not in state:
        raise CheckpointError(f"replay file '{path}': not a td3drive replay file")
    return state


def latest_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/checkpoints/latest.pt``, checked to exist."""
    p = Path(run_dir) / CHECKPOINT_DIR / LATEST
    if not p.exists():
        raise CheckpointError(f"run directory '{run_dir}': no checkpoints/{LATEST} to resume from")
    return p


def capture_rng() -> dict:
    """Global RNG states of python, numpy and torch (CUDA too when present)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
