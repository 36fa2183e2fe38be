"""Where a run's wall-clock time goes: seconds per phase of the training loop, the start-up, the end.

The trainer adds the time of each phase as it runs (``clock.add("env", t0)``: a ``perf_counter`` call and
a dict update, ~0.3 us, so even a 1M-step run pays well under a second), and at the end writes
``timing.json`` into the run directory and one line to the log. Phases:

- ``startup``: from the process's start (the OS's record of it; the first import of this module where
  that record is not available) to the first env step: the interpreter, imports, envs, networks, replay;
- ``act``: the policy's forward passes of collection (and exploration noise);
- ``env``: env steps and storing their transitions (for processes or Ray actors: waiting for them);
- ``update``: batch sampling, TD3 updates and the guard's checks;
- ``log``, ``evaluate`` (submitting snapshots, collecting results), ``checkpoint``;
- ``end``: after the last step: the final checkpoint, closing the workers, the report.

Every number is one invocation's: a resumed run writes the times of its own process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from td3drive.core.files import write_json

PHASES = ("startup", "act", "env", "update", "log", "evaluate", "checkpoint", "end")
TIMING_FILE = "timing.json"

_IMPORTED_AT = time.time()


def process_start_time() -> float:
    """Unix time (s) at which this process started: from ``/proc`` on Linux (10 ms resolution), else the
    moment this module was first imported (which then leaves out the interpreter's start and early imports)."""
    try:
        with open("/proc/self/stat") as f:
            # Field 22 (starttime, clock ticks since boot) comes after the command name in parentheses,
            # which may itself hold spaces: split after its closing parenthesis.
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


class PhaseClock:
    """Wall seconds per phase (:data:`PHASES`) of one training invocation."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.started_at = process_start_time()
        self._started = False
        self._last_step: float | None = None

    def add(self, phase: str, since: float) -> float:
        """Add ``perf_counter() - since`` to ``phase``; returns now (the next phase's ``since``)."""
        now = time.perf_counter()
        self.seconds[phase] += now - since
        return now

    def first_step(self) -> None:
        """Mark the first env step: the start-up ends here (called once; later calls do nothing)."""
        if not self._started:
            self._started = True
            self.seconds["startup"] = max(time.time() - self.started_at, 0.0)

    def last_step(self) -> None:
        """Mark the end of the loop: what follows until :meth:`finish` is the ``end`` phase."""
        self._last_step = time.perf_counter()

    def finish(self, run_dir: Path, steps: int, updates: int) -> dict:
        """Close the ``end`` phase and write ``timing.json`` (atomically); returns what it wrote."""
        if self._last_step is not None:
            self.seconds["end"] = time.perf_counter() - self._last_step
        wall = max(time.time() - self.started_at, 0.0)
        accounted = sum(self.seconds.values())
        out = {"wall_s": round(wall, 3), "phases_s": {k: round(v, 3) for k, v in self.seconds.items()},
               "other_s": round(max(wall - accounted, 0.0), 3), "steps": steps, "updates": updates}
        write_json(Path(run_dir) / TIMING_FILE, out)
        return out


def summary_line(timing: dict) -> str:
    """``time 45.2 s: env 17.2 (38%), update 13.0 (29%), ...; other 0.0 (5,000 steps, 81 updates)``: the phases of
    0.05 s or more, largest first."""
    wall = timing["wall_s"]
    parts = sorted(((v, k) for k, v in timing["phases_s"].items() if v >= 0.05), reverse=True)
    body = ", ".join(f"{k} {v:.1f} ({v / wall:.0%})" if wall > 0 else f"{k} {v:.1f}" for v, k in parts)
    return f"time {wall:.1f} s: {body}; other {timing['other_s']:.1f} ({timing['steps']:,} steps, " \
           f"{timing['updates']:,} updates)"
