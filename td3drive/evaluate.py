"""Deterministic evaluation episodes and the per-episode seeds shared by training and evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]

_EVAL_STREAM = 1


def episode_seed(seed: int, episode: int, stream: int = 0) -> int:
    """Reset seed of training episode ``episode`` (stream 0) or evaluation episode (stream 1).

    Every episode gets its own seed so that a resumed run can rebuild the current episode exactly,
    and evaluation uses the same fixed tracks every time, so evaluations are comparable.
    """
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray  # float64 [episodes], undiscounted
    lengths: np.ndarray  # int64 [episodes], agent steps
    successes: np.ndarray  # bool [episodes]

    @property
    def mean_reward(self) -> float:
        return float(self.returns.mean())

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean())

    @property
    def success_rate(self) -> float:
        return float(self.successes.mean())


def eval_workers(training) -> int:
    """Resolve ``training.eval_workers`` (0 = one per CPU core, capped at the episode count)."""
    if training.eval_workers:
        return min(training.eval_workers, training.num_eval_episodes)
    return max(1, min(os.cpu_count() or 1, training.num_eval_episodes))


def make_eval_envs(make_fn: Callable[[], gym.Env], workers: int) -> gym.vector.VectorEnv:
    """``workers`` evaluation envs: subprocesses when more than one (the simulator is the bottleneck)."""
    if workers <= 1:
        return gym.vector.SyncVectorEnv([make_fn])
    return gym.vector.AsyncVectorEnv([make_fn] * workers, context="spawn")


def evaluate(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    seed: int,
    episodes: int,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` (deterministic, batched over the envs) on fixed seeds.

    Episode ``i`` always uses the seed ``episode_seed(seed, i, 1)``, whatever the number of envs.
    ``on_frame`` receives the newest frame ``uint8[84, 84]`` of every step of episode 0.
    """
    n = envs.num_envs
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, np.int64)
    successes = np.zeros(episodes, bool)
    for first in range(0, episodes, n):
        ids = [first + i for i in range(n)]
        live = np.array([i < episodes for i in ids])
        obs, _ = envs.reset(seed=[episode_seed(seed, min(i, episodes - 1), _EVAL_STREAM) for i in ids])
        while live.any():
            if on_frame is not None and first == 0 and live[0]:
                on_frame(obs["image"][0][-1])
            obs, reward, terminated, truncated, info = envs.step(policy(obs["image"], obs["vector"]))
            for j in np.flatnonzero(live):
                returns[ids[j]] += float(reward[j])
                lengths[ids[j]] += 1
                if terminated[j] or truncated[j]:
                    live[j] = False
                    successes[ids[j]] = _success_at(info, j)
    return EvalResult(returns, lengths, successes)


def _success_at(info: dict, j: int) -> bool:
    """Success flag of sub-env ``j`` from a vector env's batched info dict."""
    for key in ("is_success", "lap_finished"):
        if key in info and info.get("_" + key, np.ones(len(info[key]), bool))[j]:
            return bool(info[key][j])
    return False
