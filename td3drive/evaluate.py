"""Deterministic evaluation episodes and the per-episode seeds shared by training and evaluation."""

from __future__ import annotations

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


def success_of(info: dict) -> bool:
    """A backend reports success as ``is_success`` (or CarRacing's ``lap_finished``)."""
    return bool(info.get("is_success", info.get("lap_finished", False)))


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


def evaluate(
    env: gym.Env,
    policy: Policy,
    seed: int,
    episodes: int,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` (deterministic) on fixed evaluation seeds.

    ``on_frame`` receives the newest frame ``uint8[84, 84]`` of every step of the first episode.
    """
    returns, lengths, successes = [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, ep, _EVAL_STREAM))
        total, length, done, info = 0.0, 0, False, {}
        while not done:
            if on_frame is not None and ep == 0:
                on_frame(obs["image"][-1])
            obs, reward, terminated, truncated, info = env.step(policy(obs["image"], obs["vector"]))
            total += float(reward)
            length += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(length)
        successes.append(success_of(info))
    return EvalResult(np.array(returns), np.array(lengths), np.array(successes, bool))
