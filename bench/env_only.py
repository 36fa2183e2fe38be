"""The physical floor: CarRacing-v3 under the td3drive contract, N uniform random steps, no learning.

    python bench/env_only.py --steps 5000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from td3drive.config import EnvConfig
from td3drive.envs import make_env


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--env", default="carracing")
    p.add_argument("--stock-render", action="store_true", help="CarRacing's own renderer instead of FastCarRacing")
    a = p.parse_args()
    env = make_env(EnvConfig(name=a.env, fast_render=not a.stock_render))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    env.reset(seed=0)
    for _ in range(a.steps):
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        if term or trunc:
            env.reset()
    print(f"env_only wall_s {time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
