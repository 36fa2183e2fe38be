"""Learning quality: mean evaluation return vs env steps, td3drive (`critic` and `separate` encoders)
and Stable-Baselines3 TD3 at equal budgets, several seeds; a PNG of the curves and a Markdown table.

    python bench/learning.py --steps 100000 --eval-freq 10000 --seeds 0,1,2 --out bench/out/learning

Every run is a separate process. td3drive runs are normal run directories (their eval/mean_reward
series is read from the event files); SB3 runs use bench/sb3_td3.py (CnnPolicy, same env pipeline,
same schedule) and its EvalCallback's evaluations.npz (each side evaluates on its own fixed tracks:
td3drive's per-episode evaluation seeds, SB3's eval env seeded with seed + 1). The table gives, per configuration and
evaluation step, the mean over seeds and the min-max range; the final row is what the README's
choice of default encoder should rest on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from td3drive import tags
from td3drive.analysis.events import read_run


def td3drive_curve(run: Path) -> tuple[np.ndarray, np.ndarray]:
    s = read_run(run).series[tags.EVAL_MEAN_REWARD]
    return s.steps, s.values


def sb3_curve(out: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(out / "evaluations.npz")
    return data["timesteps"], data["results"].mean(axis=1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--eval-freq", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="bench/out/learning")
    p.add_argument("--skip-sb3", action="store_true")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    out = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for seed in seeds:
        for encoder in ("critic", "separate"):
            run = out / f"td3drive-{encoder}-seed{seed}"
            if not (run / "report.json").exists():
                subprocess.run([sys.executable, "-m", "td3drive.cli", "train", "--run-dir", str(run), "--seed", str(seed),
                                "--max-timesteps", str(args.steps), "--eval-freq", str(args.eval_freq),
                                "--checkpoint-freq", "0", "--device", args.device,
                                "--set", f"agent.encoder={encoder}", "--set", f"training.num_eval_episodes={args.eval_episodes}",
                                "--set", "logging.progress=false"], check=False)
            curves.setdefault(f"td3drive {encoder}", []).append(td3drive_curve(run))
        if not args.skip_sb3:
            sb3 = out / f"sb3-seed{seed}"
            if not (sb3 / "evaluations.npz").exists():
                subprocess.run([sys.executable, "bench/sb3_td3.py", "--max-timesteps", str(args.steps), "--eval-freq",
                                str(args.eval_freq), "--eval-episodes", str(args.eval_episodes), "--out", str(sb3),
                                "--seed", str(seed)], check=True)
            curves.setdefault("SB3 TD3 CnnPolicy", []).append(sb3_curve(sb3))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    print(f"\n| configuration | env steps | mean eval return over {len(seeds)} seeds | min | max |")
    print("|---|---|---|---|---|")
    for name, runs in curves.items():
        n = min(len(s) for s, _ in runs)
        steps = runs[0][0][:n]
        values = np.stack([v[:n] for _, v in runs])
        mean = values.mean(axis=0)
        ax.plot(steps, mean, label=name)
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
        for i in range(n):
            print(f"| {name} | {steps[i]:,} | {mean[i]:.1f} | {values[:, i].min():.1f} | {values[:, i].max():.1f} |")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean evaluation return")
    ax.legend()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "learning.png", dpi=120)
    print(f"\ncurves: {out / 'learning.png'}")


if __name__ == "__main__":
    main()
