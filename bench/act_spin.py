"""OpenMP spinning between act() calls: CPU time over wall time of an act()-then-env-step loop.

    python bench/act_spin.py                         # as the CLI runs it (GOMP_SPINCOUNT=10000 unless set)
    GOMP_SPINCOUNT=300000 python bench/act_spin.py   # libgomp's own default
    OMP_WAIT_POLICY=PASSIVE python bench/act_spin.py

500 iterations of the default recipe's ``act()`` (batch 1) followed by 3 ms of busy work in this thread, standing
in for an env step. CPU / wall near 2 means a torch worker spun on the second core through every "env step".
"""

from __future__ import annotations

import os
import time

import numpy as np

import td3drive.cli  # noqa: F401  - sets GOMP_SPINCOUNT as the CLI does, before torch loads
from td3drive.agent.td3 import TD3
from td3drive.config import AgentConfig


def main() -> None:
    agent = TD3(7, AgentConfig(), "cpu")
    image, vector = np.zeros((4, 84, 84), np.uint8), np.zeros(7, np.float32)
    for _ in range(20):
        agent.act(image, vector)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(500):
        agent.act(image, vector)
        t = time.perf_counter()
        while time.perf_counter() - t < 0.003:
            pass
    wall = time.perf_counter() - wall
    print(f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')} OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}: "
          f"CPU / wall {(time.process_time() - cpu) / wall:.2f}, {wall / 500 * 1000:.2f} ms per act + 3 ms step")


if __name__ == "__main__":
    main()
