"""The run's last good state: the newest checkpoint known to hold weights that raised no alert.

A checkpoint is good once an update after it raised no alert (that update's telemetry measured the
weights it holds), or when no update preceded it. At the first alert of the run the newest good one is
kept as ``checkpoints/last_good.pt``; when the guard stops the run, ``latest.pt`` is pointed back at it
so that ``td3drive train --resume`` continues from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from td3drive import checkpoint
from td3drive.guard import Alert, Guard


class LastGood:
    """Tracks which checkpoint is good as updates pass; keeps it at the first alert."""

    def __init__(self, run_dir: Path, log: Callable[[str], None]):
        self.run_dir, self.log = run_dir, log
        self.good: Path | None = None
        self.unverified: Path | None = None  # written after an update no later update has vouched for yet
        self.kept = False  # last_good.pt was kept (at this run's first alert, or before a resume)

    def written(self, path: Path, updates_before: int) -> None:
        """A checkpoint was written (or resumed from) after ``updates_before`` updates."""
        if updates_before == 0:
            self.good, self.unverified = path, None
        else:
            self.unverified = path

    def after_update(self, alerts: list[Alert], step: int) -> None:
        """An update's alerts: none vouches for the newest checkpoint; the run's first keeps the last good."""
        if not alerts:
            if self.unverified is not None:
                self.good, self.unverified = self.unverified, None
            return
        if self.kept:
            return
        self.kept = True
        if self.good is None:
            self.log(f"[yellow]no good checkpoint before the first alert (step {step}): none was written "
                     "before it, or the updates after the last one alerted; a checkpoint_freq below "
                     "learning_starts gives one before the first update[/]")
        else:
            checkpoint.keep_last_good(self.run_dir, self.good)
            self.log(f"last good state: {self.good.name} kept as checkpoints/{checkpoint.LAST_GOOD}")

    def guard_stop(self, guard: Guard) -> str:
        """Log the guard's stop; point latest.pt at the last good checkpoint. Returns the stop message."""
        assert guard.stop is not None
        ckpt_dir = self.run_dir / checkpoint.CHECKPOINT_DIR
        good = ckpt_dir / checkpoint.LAST_GOOD
        message = f"guard stopped the run: {guard.stop.message}"
        self.log(f"[bold red]{message}[/]")
        if not good.exists():
            self.log("no checkpoint was written before the first alert: there is no good state to keep")
            return message
        step_file = ckpt_dir / f"step_{checkpoint.load(good)['counters']['step']}.pt"
        if step_file.exists():
            checkpoint.point_latest(ckpt_dir, step_file)
        self.log(f"last good state: {good} ({step_file.name}); latest.pt points at it, so "
                 f"`td3drive train --resume {self.run_dir}` continues from there")
        return message
