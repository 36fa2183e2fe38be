"""Fault injection: kill -9 a training run at random moments, resume it, and check every file.

    python bench/fault_injection.py --trials 20            # results table (docs/BENCHMARKS.md)

Each trial starts ``td3drive train`` on lanekeep (asynchronous evaluation with 2 env processes;
one collection env, as ``--resume`` needs), a checkpoint every ``--checkpoint-freq`` steps) in its own
process group, sends SIGKILL to the whole group after a delay drawn uniformly from
``[0.2, --max-delay-s]`` (seeded), then checks what a user would rely on:

- ``config.yaml``, if present, parses and is the run's config (never truncated);
- every ``step_<N>.pt`` loads through ``checkpoint.load`` (its SHA-256 verified), and ``latest.pt``
  points at one of them;
- ``td3drive train --resume`` then runs the run to ``--max-timesteps`` (exit 0 or 1) and leaves a
  checkpoint at that step, or, killed before any file was written, a fresh start is possible.

Exit code 0 when every trial passes every check.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

TRAIN = ["--env", "lanekeep", "--eval-freq", "200", "--set", "training.eval_workers=2",
         "--set", "training.num_eval_episodes=2", "--set", "training.learning_starts=100",
         "--set", "logging.progress=false"]


@dataclass
class Trial:
    delay_s: float
    stage: str = ""  # what existed when killed: nothing, config only, checkpoints
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    resume_rc: int | None = None
    final_step: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "td3drive.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def trial(run: Path, delay_s: float, max_steps: int, checkpoint_freq: int) -> Trial:
    """One kill -9 at ``delay_s`` seconds, then the checks and the resume (see the module docstring)."""
    from td3drive import checkpoint

    t = Trial(delay_s)
    proc = subprocess.Popen([sys.executable, "-m", "td3drive.cli", "train", "--run-dir", str(run), "--max-timesteps",
                             str(max_steps), "--checkpoint-freq", str(checkpoint_freq), *TRAIN],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_s)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    config = run / "config.yaml"
    if not config.exists():
        t.stage = "nothing"
        if run.exists() and any(run.iterdir()):
            t.problems.append(f"files without config.yaml: {sorted(p.name for p in run.iterdir())}")
        return t
    try:
        data = yaml.safe_load(config.read_text())
        assert isinstance(data, dict) and data["env"]["name"] == "lanekeep"
    except Exception as e:  # noqa: BLE001 - any failure here is the finding
        t.problems.append(f"config.yaml unreadable: {type(e).__name__}")
    steps = checkpoint.step_files(run / checkpoint.CHECKPOINT_DIR)
    t.stage, t.checkpoints = ("checkpoints" if steps else "config only"), len(steps)
    for p in steps:
        try:
            checkpoint.load(p)
        except checkpoint.CheckpointError as e:
            t.problems.append(str(e))
    latest = run / checkpoint.CHECKPOINT_DIR / checkpoint.LATEST
    if steps and not (latest.exists() and latest.resolve() in [p.resolve() for p in steps]):
        t.problems.append("latest.pt does not point at a step checkpoint")
    out = _cli("train", "--resume", str(run), "--max-timesteps", str(max_steps))
    t.resume_rc = out.returncode
    if out.returncode not in (0, 1):
        t.problems.append(f"--resume exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}")
    try:
        t.final_step = checkpoint.load(latest)["counters"]["step"]
    except (checkpoint.CheckpointError, KeyError) as e:
        t.problems.append(f"no final checkpoint after resume: {e}")
    if t.final_step is not None and t.final_step != max_steps:
        t.problems.append(f"resume ended at step {t.final_step}, not {max_steps}")
    return t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--max-timesteps", type=int, default=600)
    p.add_argument("--checkpoint-freq", type=int, default=100)
    p.add_argument("--max-delay-s", type=float, default=12.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/out/fault_injection")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    results = []
    print("| trial | killed after (s) | on disk then | step checkpoints | resume exit | final step | checks |")
    print("|---|---|---|---|---|---|---|")
    for i in range(args.trials):
        delay = round(float(rng.uniform(0.2, args.max_delay_s)), 2)
        run = out / f"trial{i:02d}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        results.append(trial(run, delay, args.max_timesteps, args.checkpoint_freq))
        r = results[-1]
        print(f"| {i} | {r.delay_s:.2f} | {r.stage} | {r.checkpoints} | {r.resume_rc} | {r.final_step} | "
              f"{'pass' if r.ok else 'FAIL: ' + '; '.join(r.problems)} |", flush=True)
    passed = sum(r.ok for r in results)
    stages = {s: sum(r.stage == s for r in results) for s in ("nothing", "config only", "checkpoints")}
    print(f"\n{passed} of {len(results)} trials passed; killed with {stages}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
