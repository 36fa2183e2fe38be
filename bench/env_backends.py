"""Environment steps per second of each backend under the contract (image stack + ego vector).

    python bench/env_backends.py --steps 1000 --repeats 3 [--carla]

Each backend runs ``--steps`` agent steps with uniform random actions (resetting as episodes end)
in this process; the median of ``--repeats`` runs is reported. ``--carla`` adds the CARLA backend
(needs a server at env.carla_host:env.carla_port).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from td3drive.config import build_config
from td3drive.envs import make_env

BACKENDS = [
    ("carracing (stock render)", ["env.name=carracing", "env.fast_render=false"]),
    ("carracing (FastCarRacing)", ["env.name=carracing"]),
    ("lanekeep", ["env.name=lanekeep"]),
    ("highway scenario 0 (10 vehicles)", ["env.name=highway", "env.scenario=0"]),
    ("highway scenario 1 (25 vehicles)", ["env.name=highway", "env.scenario=1"]),
    ("highway scenario 2 (50 vehicles)", ["env.name=highway", "env.scenario=2"]),
    ("racetrack", ["env.name=racetrack"]),
]


def steps_per_second(sets: list[str], steps: int, seed: int) -> float:
    env = make_env(build_config(sets=sets))
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--carla", action="store_true")
    args = p.parse_args()
    backends = BACKENDS + (
        [("carla scenario 0 (20 vehicles)", ["env.name=carla", "env.scenario=0"])] if args.carla else []
    )
    print(f"| backend | env steps/s (median of {args.repeats}) | ms/step |")
    print("|---|---|---|")
    for name, sets in backends:
        rates = [steps_per_second(sets, args.steps, seed) for seed in range(args.repeats)]
        med = statistics.median(rates)
        print(f"| {name} | {med:.0f} | {1000 / med:.2f} |", flush=True)


if __name__ == "__main__":
    main()
