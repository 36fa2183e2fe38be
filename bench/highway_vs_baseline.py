"""Baseline (PID + pure pursuit) vs a short TD3 training run on the highway scenarios.

    python bench/highway_vs_baseline.py --steps 10000 --episodes 5

For each scenario: ``td3drive train --env highway --scenario N`` for ``--steps`` env steps with one
evaluation at the end, and ``td3drive baseline`` on the same evaluation seeds; prints a Markdown table
of the eval/* metrics of both (read from the runs' event files, as ``td3drive compare`` does).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from td3drive.analysis.events import read_run
from td3drive.core import tags

METRICS = [(tags.EVAL_MEAN_REWARD, "return"), (tags.EVAL_SUCCESS_RATE, "success"),
           (tags.EVAL_ROUTE_COMPLETION, "route %"), (tags.EVAL_COLLISIONS_PER_KM, "coll/km"),
           (tags.EVAL_LANE_INVASIONS_PER_KM, "inv/km"), (tags.EVAL_MEAN_SPEED, "speed m/s"),
           (tags.EVAL_DRIVING_SCORE, "score")]


def final(run: Path) -> dict[str, float]:
    series = read_run(run).series
    return {t: float(series[t].values[-1]) for t, _ in METRICS if t in series}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--scenarios", default="0,1,2")
    p.add_argument("--out", default="bench/out/highway")
    args = p.parse_args()
    out = Path(args.out)
    rows = []
    for scenario in [int(s) for s in args.scenarios.split(",")]:
        common = [
            "--env",
            "highway",
            "--scenario",
            str(scenario),
            "--set",
            f"training.num_eval_episodes={args.episodes}",
        ]
        agent_dir, base_dir = out / f"agent-s{scenario}", out / f"baseline-s{scenario}"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "td3drive.cli", "train", *common, "--max-timesteps", str(args.steps),
                        "--eval-freq", str(args.steps), "--checkpoint-freq", "0", "--run-dir", str(agent_dir),
                        "--set", "logging.progress=false"], check=False)
        train_s = time.perf_counter() - t
        subprocess.run([sys.executable, "-m", "td3drive.cli", "baseline", *common, "--episodes", str(args.episodes),
                        "--run-dir", str(base_dir)], check=True, stdout=subprocess.DEVNULL)
        for who, run in (("TD3 agent", agent_dir), ("PID + pure pursuit", base_dir)):
            rows.append((scenario, who, final(run), train_s if who == "TD3 agent" else None))
    print(f"\n{args.steps:,} training steps per scenario, {args.episodes} evaluation episodes (same seeds)\n")
    print("| scenario | controller | " + " | ".join(name for _, name in METRICS) + " | train wall s |")
    print("|---" * (len(METRICS) + 3) + "|")
    for scenario, who, m, wall in rows:
        cells = [f"{m[t]:.2f}" if t in m else "—" for t, _ in METRICS]
        print(f"| {scenario} | {who} | " + " | ".join(cells) + f" | {'' if wall is None else f'{wall:.0f}'} |")


if __name__ == "__main__":
    main()
