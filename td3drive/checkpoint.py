"""Atomic, verified checkpoints that can never run code: ``torch.save`` to a temp file + rename,
loaded with ``torch.load(weights_only=True)``. ``latest.pt`` is a symlink to the newest ``step_<N>.pt``.

Each checkpoint has its SHA-256 beside it (``step_<N>.pt.sha256``, written atomically before
``latest.pt`` moves to it) and every load verifies it, so a damaged file is refused instead of
resuming training on damaged weights. Checkpoints written before checksums existed load unverified.
Only the newest ``keep`` ``step_<N>.pt`` files are kept; ``last_good.pt`` and any file the user
renames or copies (anything not named ``step_<N>.pt``) are never removed.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from td3drive import config_format
from td3drive.core.errors import ConfigError
from td3drive.core.files import atomic_file, atomic_write

if TYPE_CHECKING:
    from td3drive.agent.replay import ReplayBuffer, VectorReplay

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.pt"
LAST_GOOD = "last_good.pt"


def replay_name(step: int) -> str:
    """Replay contents saved with ``step_<step>.pt`` (one file, the newest, is kept)."""
    return f"replay_step_{step}.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not one of ours."""


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (replay files can be gigabytes: never held twice)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of checkpoint ``path`` lives (a symlink's target's, for ``latest.pt``)."""
    real = path.resolve()
    return real.with_name(real.name + ".sha256")


def atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` so that readers only ever see the old or the complete new file, then its
    SHA-256 beside it (:func:`checksum_path`)."""
    with atomic_file(path) as f:
        torch.save(obj, f)
        f.flush()
        digest = _sha256(Path(f.name))  # of the temporary file, before it becomes ``path``
    atomic_write(checksum_path(path), digest + "\n")


def _verify(p: Path) -> None:
    """Check the file against its SHA-256 when it has one (checkpoints older than checksums have none)."""
    try:
        expected = checksum_path(p).read_text().strip()
    except OSError:
        return
    if _sha256(p) != expected:
        raise CheckpointError(f"checkpoint '{p}': damaged (its SHA-256 does not match {checksum_path(p).name})")


def point_latest(ckpt_dir: Path, target: Path) -> None:
    """Atomically repoint ``latest.pt`` at ``target`` (a symlink; a copy where links are not allowed)."""
    tmp = ckpt_dir / (LATEST + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(target.name, tmp)
    except OSError:  # a copy carries a copy of the checksum
        tmp.write_bytes(target.read_bytes())
        if checksum_path(target).exists():
            link_or_copy(checksum_path(target), ckpt_dir / (LATEST + ".sha256"))
    os.replace(tmp, ckpt_dir / LATEST)


def step_of(path: Path) -> int | None:
    """N of a ``step_<N>.pt`` file name, else None."""
    m = re.fullmatch(r"step_(\d+)\.pt", path.name)
    return int(m.group(1)) if m else None


def step_files(ckpt_dir: Path) -> list[Path]:
    """The ``step_<N>.pt`` files of ``ckpt_dir``, newest (highest N) first."""
    found = [(step_of(p), p) for p in ckpt_dir.glob("step_*.pt")]
    return [p for n, p in sorted(((n, p) for n, p in found if n is not None), reverse=True)]


def prune(ckpt_dir: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` ``step_<N>.pt`` files (and their checksums); returns the removed.
    ``latest.pt``'s target is always among the newest; ``last_good.pt`` is a link of its own and stays."""
    removed = step_files(ckpt_dir)[keep:]
    for p in removed:
        p.unlink(missing_ok=True)
        checksum_path(p).unlink(missing_ok=True)
    return removed


def save_step(run_dir: Path, step: int, state: dict, replay_state: dict | None = None) -> Path:
    """Save ``checkpoints/step_<step>.pt`` (and ``replay_step_<step>.pt``), then point ``latest.pt`` at it.

    The replay file carries the step in its name so that a crash between the two writes can never
    pair a checkpoint with replay contents of another step; older replay files are removed once
    ``latest.pt`` has moved on (they are large).
    """
    ckpt_dir = run_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if replay_state is not None:
        save_replay(run_dir, step, replay_state)
    path = ckpt_dir / f"step_{step}.pt"
    atomic_save(state, path)
    point_latest(ckpt_dir, path)
    for old in ckpt_dir.glob("replay_step_*.pt"):
        # Without replay contents, one of this very step is a leftover (of an earlier run in this directory).
        if replay_state is None or old.name != replay_name(step):
            old.unlink(missing_ok=True)
            checksum_path(old).unlink(missing_ok=True)
    return path


def save_replay(run_dir: Path, step: int, replay_state: dict) -> Path:
    """Replay contents for checkpoint ``step_<step>.pt``, as ``replay_step_<step>.pt``.

    :func:`save_step` writes it before the checkpoint; a run a signal ended adds it after its final
    checkpoint, so a process killed while writing (the file can be gigabytes) still leaves that
    checkpoint, whose resume then starts from an empty buffer, as without this file.
    """
    path = run_dir / CHECKPOINT_DIR / replay_name(step)
    atomic_save(replay_state, path)
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
    dest = run_dir / CHECKPOINT_DIR / LAST_GOOD
    link_or_copy(source, dest)
    if checksum_path(source).exists():
        link_or_copy(checksum_path(source), dest.with_name(dest.name + ".sha256"))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (tensors and plain containers only)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}': no such file")
    try:
        _verify(p)
    except OSError as e:
        raise CheckpointError(f"checkpoint '{p}': cannot be read ({e.strerror})") from None
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(
            f"checkpoint '{p}': cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict) or "agent" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint '{p}': not a td3drive checkpoint")
    return upgrade(state, p)


FORMAT = 2  # of what a checkpoint holds (td3drive/run_state.py's capture)


def upgrade(state: dict, path: Path) -> dict:
    """``state`` in checkpoint :data:`FORMAT`, one format at a time (its config carries its own format,
    read by td3drive/config_format.py when the config is built):

    - format 1 (or none): the counters may predate the simulator-frame count, which was then agent steps x
      the config's action repeat.
    """
    fmt = state.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= FORMAT:
        raise CheckpointError(f"checkpoint '{path}': format {fmt!r}; this td3drive reads formats 1 to {FORMAT} (a "
                              "newer td3drive wrote it, or the file is damaged)")
    counters = state.get("counters")
    if fmt == 1 and isinstance(counters, dict) and "frames" not in counters and "step" in counters:
        config = state["config"] if isinstance(state["config"], dict) else {}
        try:
            repeat = config_format.upgrade(config).get("env", {}).get("action_repeat", 4)
        except ConfigError:
            repeat = 4  # the config's own check names what is wrong with it
        state["counters"] = {**counters, "frames": counters["step"] * repeat}
    state["format"] = FORMAT
    return state


def load_newest_intact(run_dir: str | Path,
                       map_location: str | torch.device = "cpu") -> tuple[Path, dict, list[tuple[Path, str]]]:
    """``latest.pt`` if it loads, else the newest ``step_<N>.pt`` that does: (path, state, refused), where
    refused lists (file, why) of the newer ones that did not load (``latest.pt`` as the file it points at).

    Raises CheckpointError naming every refusal when none loads, or when there is no checkpoint.
    """
    latest = latest_path(run_dir)
    refused: list[tuple[Path, str]] = []
    for p in [latest] + [q for q in step_files(latest.parent) if q != latest.resolve()]:
        try:
            return p, load(p, map_location), refused
        except CheckpointError as e:
            refused.append((p.resolve(), str(e)))
    raise CheckpointError("; ".join(why for _, why in refused))


def resume_state(run_dir: Path, map_location: str | torch.device,
                 log: Callable[[str], None]) -> tuple[Path, dict]:
    """The checkpoint a ``--resume`` continues from: :func:`load_newest_intact`, with the damaged newer
    ones set aside (logged) and ``latest.pt`` repointed at the one used."""
    path, state, refused = load_newest_intact(run_dir, map_location)
    for bad, why in refused:
        log(f"[yellow]{why}; set aside as {set_aside(bad).name}[/]")
    if refused:
        log(f"[yellow]resuming from the newest intact checkpoint instead: {path.resolve().name}[/]")
        point_latest(path.parent, path.resolve())
    return path, state


def contents_error(path: Path, e: Exception) -> CheckpointError:
    """A checkpoint with the right keys and the wrong contents (hand-made, foreign): one line, no traceback."""
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    return CheckpointError(f"checkpoint '{path}': its contents do not fit this run ({type(e).__name__}: {first})")


def restore_replay(buffer: ReplayBuffer | VectorReplay, path: Path, state: dict, batch_size: int) -> str:
    """Restore the replay contents saved with checkpoint ``path`` when there are any (else only the
    replay's RNG); returns the note the resume message carries."""
    # The step in the file's name pairs it with this checkpoint: saved with it (training.save_replay) or
    # after it, when a signal ended the run (training.replay_on_stop).
    replay_file = path.parent / replay_name(state["counters"]["step"])
    if replay_file.is_file():
        buffer.load_state_dict(load_replay(replay_file))
        return f"replay restored ({len(buffer):,} transitions)"
    buffer.set_rng_state(state["replay_rng"])
    return ("replay contents were not saved (use --save-replay to keep them); updates resume once "
            f"the buffer holds {batch_size} new transitions")


def set_aside(path: Path) -> Path:
    """Rename a refused checkpoint to ``<name>.damaged`` (never deleted: it is the user's evidence)."""
    dest = path.with_name(path.name + ".damaged")
    os.replace(path, dest)
    return dest


def load_replay(path: Path) -> dict:
    """Load saved replay contents (tensors and plain values only)."""
    try:
        _verify(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"replay file '{path}': cannot be loaded ({type(e).__name__})") from None
    # A ReplayBuffer's contents hold its frames; a VectorReplay's, one such per env stream.
    if not isinstance(state, dict) or not ("frames" in state or "streams" in state):
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
