"""Learning on CarRacing-v3: evaluation return against simulator frames and against wall-clock seconds,
for (a) td3drive's default recipe, (b) the reference system's recipe (examples/reference.yaml) and
(c) Stable-Baselines3 TD3 ``CnnPolicy`` with its own defaults (bench/sb3_td3.py), each run given the same
wall-clock budget on this machine.

    python bench/learning.py --configs default,reference,sb3 --budget-s 3600 --seeds 0 --out bench/out/learning
    python bench/learning.py --report-only --out bench/out/learning     # table + PNG from what exists

Evaluation protocol (both libraries): 10 episodes of the standard 1,000 simulator frames, deterministic
policy, stock CarRacing rules (no early end for lack of progress), every ``--eval-frames`` simulator
frames (agent steps = frames / the configuration's action repeat: 4 for td3drive's default and SB3, 1
for the reference recipe),
on fixed tracks (td3drive: its per-episode evaluation seeds; SB3: one eval env seeded with seed + 1).
A run is stopped with SIGINT when its budget is spent (td3drive writes a checkpoint and its report);
its curve is on disk as it goes (td3drive's event file, SB3's curve.csv), so an interrupted run still
leaves its numbers. ``--parallel`` runs the configurations of one seed side by side, one torch thread
each: the same wall-clock on the same machine for all, at a fraction of it each.

Recipe variants (``VARIANTS``) are the default with one choice changed, for choosing that choice by the
return reached per hour: ``--configs batch256 --seeds 1`` runs beside the default's curve of the same seed.

To lend the cores to something else mid-run, stop the whole process group (``kill -STOP -- -PGID``, then
``-CONT``; Ctrl-Z and ``fg`` in a shell do the same): the budget counts running time only, and each pause
is appended to the run's ``pauses.csv``, which the report subtracts from the wall-clock axis.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from td3drive.analysis.events import EventReadError, read_run
from td3drive.core import tags

# The td3drive configurations that are not the default, as config files.
CONFIG_FILES = {"reference": "examples/reference.yaml", "constant": "examples/explore-constant.yaml"}
# The default recipe with one choice changed (``--set`` items): the candidates of the issue's "choose by
# the return reached per hour" (batch, precision, update-to-data ratio, gradient clipping, the no-progress
# limit, the exploration decay), the inputs, and the road-exit levers.
VARIANTS = {
    "batch64": ["training.batch_size=64"],
    "batch256": ["training.batch_size=256"],
    "bf16": ["agent.precision=bf16"],
    "utd-half": ["training.train_freq=2"],
    "noclip": ["agent.max_grad_norm=null"],
    "no-progress-off": ["env.no_progress_frames=0"],
    "decay-10k": ["agent.exploration_decay_steps=10000"],
    "decay-40k": ["agent.exploration_decay_steps=40000"],
    # Camera frames only, as SB3's CnnPolicy (peer (c)) and published pixel agents see CarRacing: how much of
    # the default's lead comes from the ego vector (speed, offsets, waypoints) rather than from the pixels.
    "pixels": ["agent.use_vector=false"],
    # The default before 2026-12-07 (docs/BENCHMARKS.md sections 9, 10, 12): the privileged road geometry in the vector.
    "fullvector": ["env.carracing_vector=full"],
    # Levers on the road exits that keep the late evaluations from counting laps (BENCHMARKS 10): a training-only
    # charge per frame off the road (about what a frame on the road earns at the default's ~70 m/s: 1.3), and a
    # longer horizon under which the lap's completion weighs more.
    "offroad": ["env.carracing_offroad_penalty=1.0"],
    "gamma995": ["agent.gamma=0.995"],
    # Collection on two Ray actors (td3drive/collect_ray.py) instead of in the trainer's process: the same
    # recipe at equal frames, so that the learning cost of acting with broadcast, lagging weights shows.
    "actors2": ["training.actors=2"],
}
CONFIGS = ("default", "constant", "reference", "sb3", *VARIANTS)
# Every label names the observation the policy read (camera + which vector, or camera only).
LABELS = {"default": "td3drive default (camera + proprio vector)",
          "constant": "td3drive, constant exploration std 0.1 (camera + proprio vector)",
          "reference": "reference recipe (examples/reference.yaml; camera + proprio vector)",
          "sb3": "SB3 TD3 CnnPolicy, SB3 defaults (camera only)",
          **{name: f"td3drive default, {' '.join(sets)} (camera + proprio vector)" for name, sets in VARIANTS.items()},
          "pixels": "td3drive default, agent.use_vector=false (camera only)",
          "fullvector": "td3drive default, env.carracing_vector=full (camera + full vector)"}
TICK_S = 5.0  # how often a running budget is checked
PAUSE_SLACK_S = 10.0  # a tick this much longer than TICK_S means the process group was stopped


def action_repeat(config: str) -> int:
    """The configuration's action repeat, from its config (SB3 runs through the default env pipeline)."""
    from td3drive.config import build_config

    return build_config(CONFIG_FILES.get(config), VARIANTS.get(config)).env.action_repeat


def command(config: str, seed: int, run: Path, eval_frames: int, max_frames: int | None = None) -> list[str]:
    """The run's command line; ``max_frames`` (simulator frames) ends it there, for comparisons at equal
    frames, else only the wall-clock budget ends it."""
    eval_freq = eval_frames // action_repeat(config)
    steps = str(max_frames // action_repeat(config)) if max_frames else "10000000"
    if config == "sb3":
        return [sys.executable, "bench/sb3_td3.py", "--defaults", "--max-timesteps", steps, "--eval-freq",
                str(eval_freq), "--out", str(run), "--seed", str(seed)]
    cmd = [sys.executable, "-m", "td3drive.cli", "train", "--run-dir", str(run), "--seed", str(seed),
           "--max-timesteps", steps, "--eval-freq", str(eval_freq), "--checkpoint-freq", str(eval_freq),
           "--set", "logging.progress=false"]
    cmd += [arg for item in VARIANTS.get(config, []) for arg in ("--set", item)]
    return cmd + (["--config", CONFIG_FILES[config]] if config in CONFIG_FILES else [])


class Budget:
    """Running seconds left to a run: each tick charges the time since the last one, except that a tick far
    longer than :data:`TICK_S` means this process (and so its process group) was stopped; that gap is
    returned as a pause ``(stop, cont)`` (epoch seconds) and charged as one tick."""

    def __init__(self, seconds: float, now: float) -> None:
        self.left, self.last = seconds, now

    def tick(self, now: float) -> tuple[float, float] | None:
        gap, pause = now - self.last, None
        if gap > TICK_S + PAUSE_SLACK_S:
            pause, gap = (self.last + TICK_S, now), TICK_S
        self.left -= gap
        self.last = now
        return pause


def run_all(jobs: list[tuple[str, int, Path]], budget_s: float, eval_frames: dict[str, int], threads: int,
            max_frames: int | None = None) -> None:
    """Start ``jobs`` together; SIGINT each when the budget is spent (or let it end at ``max_frames``), then
    wait for it to finish."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = []
    for config, seed, run in jobs:
        run.mkdir(parents=True, exist_ok=True)
        log = open(run.parent / f"{run.name}.log", "w")
        procs.append(
            (
                subprocess.Popen(
                    command(config, seed, run, eval_frames[config], max_frames),
                    stdout=log, stderr=subprocess.STDOUT, env=env,
                ),
                log,
            )
        )
    budget = Budget(budget_s, time.time())
    while budget.left > 0 and any(p.poll() is None for p, _ in procs):
        time.sleep(TICK_S)
        if pause := budget.tick(time.time()):
            for _, _, run in jobs:
                with open(run / "pauses.csv", "a") as f:
                    f.write(f"{pause[0]:.0f},{pause[1]:.0f}\n")
    for p, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p, log in procs:
        try:
            p.wait(timeout=600)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()


def _overlap(a: float, b: float, intervals: Sequence[tuple[float, float]]) -> float:
    """Seconds of [a, b] inside ``intervals`` (disjoint)."""
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals)


def paused_s(run: Path, times: np.ndarray, excluded: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Seconds the run was paused before each of ``times`` (epoch seconds), from ``pauses.csv`` in the run
    directory if there is one: a line ``stop,cont`` (epoch seconds) per SIGSTOP/SIGCONT pause, so that a
    run stopped to give the machine to something else is charged only its running time. Pause seconds
    inside ``excluded`` (epoch intervals the caller's clock already left out: SB3's evaluations) are not
    counted twice."""
    try:
        text = (run / "pauses.csv").read_text()
    except OSError:
        return np.zeros_like(times)
    lines = (line.split("#")[0].strip() for line in text.split("\n"))  # '#' starts a comment
    pauses = [tuple(float(x) for x in line.split(",")) for line in lines if line]
    return np.array([sum(max(0.0, min(t, b) - a) - _overlap(a, min(t, b), excluded)
                         for a, b in pauses if a < t) for t in times])


def td3drive_curve(run: Path) -> dict[str, np.ndarray]:
    """Eval return per evaluation, with the agent steps, simulator frames and wall-clock seconds since the
    run's first logged scalar at the step the policy snapshot was taken (pauses excluded: ``paused_s``);
    ``end_wall_s`` and ``end_frames``: how far the run went (its last logged scalar), evaluated or not."""
    series = read_run(run).series
    ev, frames = series[tags.EVAL_MEAN_REWARD], series[tags.FRAMES]
    start = min(s.wall_times.min() for s in series.values() if len(s.wall_times))
    end = np.array([max(s.wall_times.max() for s in series.values() if len(s.wall_times))])
    at = np.interp(ev.steps, frames.steps, frames.wall_times)
    return {"steps": ev.steps, "frames": np.interp(ev.steps, frames.steps, frames.values),
            "wall_s": at - start - paused_s(run, at), "return": ev.values,
            "end_wall_s": float((end - start - paused_s(run, end))[0]), "end_frames": float(frames.values.max())}


def sb3_curve(run: Path) -> dict[str, np.ndarray]:
    """bench/sb3_td3.py's curve.csv; its wall_s already leaves evaluations out, and pauses outside them
    are subtracted when the file has the evaluations' epochs (files written before it had them have not).
    ``end_wall_s``, when the file has the epochs and the run saved ``final.zip`` at its end: the training
    seconds up to that save, on the same clock (evaluations and pauses left out)."""
    with open(run / "curve.csv") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    c = {k: np.array([r[k] for r in rows]) for k in ("steps", "frames", "wall_s", "return")}
    if rows and "eval_start" in rows[0]:
        evals = [(r["eval_start"], r["eval_end"]) for r in rows]
        if (run / "final.zip").is_file():
            # The first evaluation began wall_s seconds of training (pauses included) after the start.
            t0, end = evals[0][0] - c["wall_s"][0], (run / "final.zip").stat().st_mtime
            raw = end - t0 - sum(b - a for a, b in evals)
            c["end_wall_s"] = float(raw - paused_s(run, np.array([end]), evals)[0])
        c["wall_s"] = c["wall_s"] - paused_s(run, np.array([start for start, _ in evals]), evals)
    return c


def curve(config: str, run: Path) -> dict[str, np.ndarray] | None:
    try:
        return sb3_curve(run) if config == "sb3" else td3drive_curve(run)
    except (OSError, KeyError, ValueError, EventReadError):  # no run (yet), or no evaluation in it
        return None


DRIVING = 700.0  # the target: the evaluation return of an agent that drives CarRacing


def first_reaching(c: dict[str, np.ndarray], level: float) -> str:
    """``frames / minutes`` of the first evaluation at or above ``level``, or ``not reached``: the
    wall-clock to a driving agent by which recipe choices are compared."""
    hits = np.flatnonzero(c["return"] >= level)
    if not len(hits):
        return "not reached"
    i = int(hits[0])
    return f"{int(c['frames'][i]):,} / {c['wall_s'][i] / 60:.0f}"


# The columns of the side-by-side tables: the issue compares the recipes at the same wall-clock and frames.
# The last column is inside a 2.5-hour budget: a run stopped at 150 minutes has logged its last scalar just before.
AT_MINUTES = (10, 20, 30, 45, 60, 90, 120, 145)
AT_FRAMES = (20_000, 40_000, 60_000, 80_000, 100_000, 150_000, 200_000)


def latest_at(c: dict[str, np.ndarray], axis: str, x: float) -> float | None:
    """Return of the latest evaluation at or before ``x`` on ``axis`` (``"wall_s"``, ``"frames"``): what the
    run had shown by then. NaN before its first evaluation; None when the run did not get to ``x`` (its end,
    ``end_<axis>``, where the curve knows it, else its last evaluation), so it says nothing about ``x``."""
    xs = c[axis]
    if not len(xs) or c.get(f"end_{axis}", xs[-1]) < x:
        return None
    i = int(np.searchsorted(xs, x, side="right")) - 1
    return float(c["return"][i]) if i >= 0 else float("nan")


def _cell(v: float | None) -> str:
    return "" if v is None else "-" if np.isnan(v) else f"{v:.1f}"


def side_by_side(curves: dict[str, dict[str, np.ndarray]]) -> str:
    """Markdown tables of each run's latest evaluation return at the same wall-clock minutes and at the same
    simulator frames (empty: the run did not get there; '-': no evaluation yet)."""
    lines = []
    for axis, points, head in (("wall_s", AT_MINUTES, "min"), ("frames", AT_FRAMES, "frames")):
        scale = 60.0 if axis == "wall_s" else 1.0
        lines.append("| run | " + " | ".join(f"{p:,} {head}" for p in points) + " |")
        lines.append("|---|" + "---|" * len(points))
        for name, c in curves.items():
            lines.append(f"| {name} | " + " | ".join(_cell(latest_at(c, axis, p * scale)) for p in points) + " |")
        lines.append("")
    return "\n".join(lines)


def report(out: Path, configs: list[str], seeds: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    curves: dict[str, dict[str, np.ndarray]] = {}
    print("| configuration | seed | evaluations | agent steps | frames | wall-clock (min) | eval return | best "
          f"| first >= {DRIVING:.0f} (frames / min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        for seed in seeds:
            c = curve(config, out / f"{config}-seed{seed}")
            if c is None or not len(c["return"]):
                print(f"| {LABELS[config]} | {seed} | 0 | | | | no evaluation | | |")
                continue
            label = f"{LABELS[config]}, seed {seed}"
            curves[f"{config} {seed}"] = c
            axes[0].plot(c["frames"], c["return"], marker="o", label=label)
            axes[1].plot(c["wall_s"] / 60, c["return"], marker="o", label=label)
            print(
                f"| {LABELS[config]} | {seed} | {len(c['return'])} | {int(c['steps'][-1]):,} "
                f"| {int(c['frames'][-1]):,} "
                f"| {c['wall_s'][-1] / 60:.0f} | {c['return'][-1]:.1f} | {c['return'].max():.1f} "
                f"| {first_reaching(c, DRIVING)} |"
            )
    print("\nThe latest evaluation return by the same wall-clock, and by the same simulator frames:\n")
    print(side_by_side(curves))
    axes[0].set_xlabel("simulator frames")
    axes[1].set_xlabel("wall-clock minutes")
    axes[0].set_ylabel("mean evaluation return (10 episodes, 1,000 frames)")
    for ax in axes:
        ax.axhline(900, color="grey", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.16, 1, 1))  # the legend below the plots, where it hides no curve
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "learning.png", dpi=110)
    print(f"\ncurves: {out / 'learning.png'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="default,reference,sb3", help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--budget-s", type=float, default=3600.0, help="wall-clock seconds per run")
    p.add_argument("--eval-frames", default="10000",
                   help="simulator frames between evaluations: one number, or per configuration "
                        "(reference=20000,sb3=4000): the protocol of each evaluation is the same, only how "
                        "often a run is evaluated differs, so that runs of different speeds get a curve")
    p.add_argument("--max-frames", type=int, default=None,
                   help="simulator frames at which each run ends (a comparison at equal frames); the budget "
                        "still stops a run that is slower")
    p.add_argument("--seeds", default="0")
    p.add_argument("--parallel", action="store_true", help="run the configurations of a seed at the same time")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per run (default: 1 with --parallel, else all cores); 1 lets two "
                        "invocations (say, two seeds) share a 2-core machine as --parallel's pairs do")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--out", default="bench/out/learning")
    args = p.parse_args()
    configs = args.configs.split(",")
    if unknown := set(configs) - set(CONFIGS):
        p.error(f"--configs {','.join(sorted(unknown))}: allowed are {', '.join(CONFIGS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.max_frames is not None and args.max_frames <= 0:
        p.error(f"--max-frames {args.max_frames}: must be a positive number of simulator frames")
    if "=" in args.eval_frames:
        every = {k: int(v) for k, v in (item.split("=") for item in args.eval_frames.split(","))}
    else:
        every = {c: int(args.eval_frames) for c in CONFIGS}
    out = Path(args.out)
    if not args.report_only:
        for seed in seeds:
            jobs = [(c, seed, out / f"{c}-seed{seed}") for c in configs]
            if args.parallel:
                run_all(jobs, args.budget_s, every, threads=args.threads or 1, max_frames=args.max_frames)
            else:
                for job in jobs:
                    run_all([job], args.budget_s, every, threads=args.threads or os.cpu_count() or 1,
                            max_frames=args.max_frames)
    report(out, configs, seeds)


if __name__ == "__main__":
    main()
