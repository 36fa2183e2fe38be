"""A slow-simulator stand-in: a fixed wait per env step (``env.step_latency_ms``).

CARLA in synchronous mode steps at about 20 Hz per server: the client blocks ~50 ms on the server's tick while
using almost no CPU itself. This wrapper reproduces that wait with ``time.sleep`` (the process sleeps, as one
blocked on a socket does), so that collection on many actors can be measured on a machine with few cores.
"""

from __future__ import annotations

import time

import gymnasium as gym


class StepLatency(gym.Wrapper):
    """Sleep so that each ``step`` takes at least ``latency_s`` seconds (the env's own time counts toward it)."""

    def __init__(self, env: gym.Env, latency_s: float):
        super().__init__(env)
        if latency_s < 0:
            raise ValueError(f"step latency must be >= 0 s, got {latency_s}")
        self.latency_s = latency_s

    def step(self, action):
        start = time.perf_counter()
        out = self.env.step(action)
        if (left := self.latency_s - (time.perf_counter() - start)) > 0:
            time.sleep(left)
        return out
