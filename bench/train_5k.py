"""The 5,000-step validation run, side by side in one invocation: td3drive vs Stable-Baselines3 TD3
`CnnPolicy` at the same settings, plus the environment alone (the physical floor).

Each configuration runs in a fresh process, interleaved per repeat, on the same machine; reported:
median wall time, peak RSS of the whole process tree, and the ratios.

    python bench/train_5k.py --repeats 3            # needs: pip install -e ".[bench]"
    python bench/train_5k.py --repeats 1 --no-eval  # training only, both without evaluation
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import measure  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--no-eval", action="store_true", help="disable evaluation in both")
    p.add_argument("--skip-sb3", action="store_true")
    a = p.parse_args()
    eval_freq = "0" if a.no_eval else "3000"
    results: dict[str, list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            runs = {
                "env alone, stock CarRacing render": [
                    sys.executable,
                    str(HERE / "env_only.py"),
                    "--steps",
                    str(a.steps),
                    "--stock-render",
                ],
                "env alone, FastCarRacing": [sys.executable, str(HERE / "env_only.py"), "--steps", str(a.steps)],
                "td3drive train": [
                    sys.executable,
                    "-m",
                    "td3drive.cli",
                    "train",
                    "--max-timesteps",
                    str(a.steps),
                    "--eval-freq",
                    eval_freq,
                    "--checkpoint-freq",
                    str(a.steps),
                    "--scenario",
                    "0",
                    "--run-dir",
                    f"{tmp}/td3drive-{rep}",
                    "--set",
                    "logging.progress=false",
                ],
            }
            if not a.skip_sb3:
                sb3 = [
                    sys.executable,
                    str(HERE / "sb3_td3.py"),
                    "--max-timesteps",
                    str(a.steps),
                    "--eval-freq",
                    eval_freq,
                ]
                runs["SB3 TD3 CnnPolicy, stock CarRacing render"] = sb3 + [
                    "--out",
                    f"{tmp}/sb3s-{rep}",
                    "--stock-render",
                ]
                runs["SB3 TD3 CnnPolicy, FastCarRacing"] = sb3 + ["--out", f"{tmp}/sb3f-{rep}"]
            for name, cmd in runs.items():
                wall, rss, code, tail = measure(cmd)
                if code != 0:
                    raise SystemExit(f"{name} failed ({code}):\n{tail}")
                results.setdefault(name, []).append((wall, rss))
                print(f"repeat {rep}: {name}: {wall:.1f} s, peak RSS {rss / 2**20:.0f} MiB", flush=True)
    med = {k: (statistics.median(w for w, _ in v), max(r for _, r in v)) for k, v in results.items()}
    ours = med["td3drive train"][0]
    print()
    print(f"| configuration | median wall s ({a.repeats} runs) | peak RSS MiB | td3drive speed-up |")
    print("|---|---|---|---|")
    for name, (wall, rss) in med.items():
        print(f"| {name} | {wall:.1f} | {rss / 2**20:.0f} | {wall / ours:.2f}x |")


if __name__ == "__main__":
    main()
