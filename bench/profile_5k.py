"""The 5,000-step validation run against the env's floor, phase by phase, in one invocation.

    python bench/profile_5k.py --repeats 3
    python bench/profile_5k.py --repeats 3 --config default   # the default recipe instead of the reference one
    python bench/profile_5k.py --repeats 3 --baseline /tmp/base   # and another checkout's td3drive, side by side
    python bench/profile_5k.py --repeats 3 --variant training.overlap_updates=true   # and this checkout with a change

Interleaved per repeat, each in a fresh process: (1) the floor, 5,000 uniform random steps of the stock
``gymnasium`` CarRacing-v3 (``gym.make("CarRacing-v3")``, its own renderer, 3-D actions, nothing of td3drive);
(2) ``td3drive train --config examples/reference.yaml --max-timesteps 5000 --eval-freq 100000
--checkpoint-freq 5000`` (the reference system's validation run: one update per 50 env steps, separate CNNs,
batch 256, action repeat 1, so 5,000 simulator frames as in the floor). Reported: medians of the whole
command's wall time (interpreter start to exit), the ratio to the floor, and the trainer's own phase times
from the run's ``timing.json`` (``td3drive.timing``): start-up to the first env step, act, env, update, log,
checkpoint, end (final checkpoint, report). ``--baseline DIR`` also runs the td3drive of another checkout
(``git worktree add DIR <commit>``) in the same interleaving, through ``PYTHONPATH``; ``--variant KEY=VALUE``
(repeatable) also runs this checkout's command with those ``--set`` items, interleaved the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import time, gymnasium as gym, numpy as np
env = gym.make("CarRacing-v3")
rng = np.random.default_rng(0)
env.reset(seed=0)
t = time.perf_counter()
for _ in range({steps}):
    _, _, term, trunc, _ = env.step(rng.uniform([-1, 0, 0], [1, 1, 1]).astype(np.float32))
    if term or trunc:
        env.reset()
print(time.perf_counter() - t)
"""


def wall(cmd: list[str], pythonpath: str | None = None) -> float:
    """Wall seconds of ``cmd``, run outside any checkout (so that ``pythonpath`` picks the td3drive it runs)."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--config", default="examples/reference.yaml", help="a config file, or 'default' for none")
    p.add_argument("--baseline", help="another checkout's root: its td3drive train runs too, interleaved")
    p.add_argument("--variant", action="append", default=[], metavar="KEY=VALUE",
                   help="also run the command with these --set items (all of them, one more row)")
    a = p.parse_args()
    config = [] if a.config == "default" else ["--config", str(Path(a.config).resolve())]
    floors, runs, timings, base, variant, variant_timings = [], [], [], [], [], []
    here = str(Path(__file__).resolve().parents[1])
    train = [sys.executable, "-m", "td3drive.cli", "train", *config, "--max-timesteps", str(a.steps),
             "--eval-freq", "100000", "--checkpoint-freq", str(a.steps), "--set", "logging.progress=false"]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            floors.append(wall([sys.executable, "-c", FLOOR.format(steps=a.steps)]))
            if a.baseline:
                base.append(wall([*train, "--run-dir", f"{tmp}/base{rep}"], pythonpath=str(Path(a.baseline).resolve())))
            run = Path(tmp) / f"run{rep}"
            runs.append(wall([*train, "--run-dir", str(run)], pythonpath=here))
            timings.append(json.loads((run / "timing.json").read_text()))
            if a.variant:
                vrun = Path(tmp) / f"variant{rep}"
                sets = [x for item in a.variant for x in ("--set", item)]
                variant.append(wall([*train, *sets, "--run-dir", str(vrun)], pythonpath=here))
                variant_timings.append(json.loads((vrun / "timing.json").read_text()))
            print(f"repeat {rep}: floor {floors[-1]:.1f} s, td3drive train {runs[-1]:.1f} s "
                  f"({runs[-1] / floors[-1]:.2f}x)" + (f", baseline {base[-1]:.1f} s" if base else "")
                  + (f", variant {variant[-1]:.1f} s ({variant[-1] / floors[-1]:.2f}x)" if variant else ""), flush=True)
    floor = statistics.median(floors)
    print(f"\n{a.steps:,} steps, config {a.config}, median of {a.repeats}\n")
    print("| what | median s | share of the run |")
    print("|---|---|---|")
    print(f"| floor: stock CarRacing-v3, {a.steps:,} random steps (whole process) | {floor:.1f} | |")
    if base:
        print(f"| baseline td3drive train ({a.baseline}, whole process) | {statistics.median(base):.1f} | "
              f"{statistics.median(base) / floor:.2f}x the floor |")
    rows = [("td3drive train", runs, timings)]
    if variant:
        rows.append((f"td3drive train --set {' --set '.join(a.variant)}", variant, variant_timings))
    for name, walls, times in rows:
        total = statistics.median(walls)
        print(f"| {name} (whole process) | {total:.1f} | **{total / floor:.2f}x the floor** |")
        for phase in times[0]["phases_s"]:
            v = statistics.median(t["phases_s"].get(phase, 0.0) for t in times)
            print(f"| - {phase} | {v:.2f} | {v / total:.0%} |")
        other = statistics.median(t["other_s"] for t in times)
        print(f"| - not in a phase (interpreter exit, ...) | {other:.2f} | {other / total:.0%} |")
    print(f"\nupdates per run: {timings[0]['updates']}")


if __name__ == "__main__":
    main()
