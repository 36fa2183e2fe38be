"""When things happen during training: updates, logs, evaluations and checkpoints by step count, and
the exploration noise by agent step. Small pure functions, so the schedule is testable without a run."""

from __future__ import annotations

import numpy as np

from td3drive.config import AgentConfig, TrainingConfig


def crossed(prev: int, now: int, every: int) -> int:
    """How many multiples of ``every`` lie in ``(prev, now]`` (0 when ``every`` is 0: never).

    With one env ``now = prev + 1`` and this is exactly ``now % every == 0``; with N envs a step
    advances N env steps and no multiple is skipped.
    """
    return now // every - prev // every if every > 0 else 0


def updates_due(prev: int, now: int, training: TrainingConfig) -> int:
    """Gradient updates owed for the env steps ``(prev, now]``: ``gradient_steps`` per ``train_freq``
    env steps, none before ``learning_starts``. Over a run, updates per env step = gradient_steps / train_freq."""
    if now < training.learning_starts:
        return 0
    return training.gradient_steps * crossed(prev, now, training.train_freq)


def exploration_std(step: int, agent: AgentConfig, learning_starts: int = 0) -> float:
    """Std of the Gaussian exploration noise at agent step ``step``: ``exploration_noise``, decaying
    linearly to ``exploration_noise_final`` over ``exploration_decay_steps`` steps counted from
    ``learning_starts`` (DrQ-v2's ``linear(1.0, 0.1, duration)``); constant when the final std is null."""
    if agent.exploration_noise_final is None:
        return agent.exploration_noise
    frac = min(max(step - learning_starts, 0) / agent.exploration_decay_steps, 1.0)
    return agent.exploration_noise + frac * (agent.exploration_noise_final - agent.exploration_noise)


def exploration_actions(rng: np.random.Generator, step: int, agent: AgentConfig, training: TrainingConfig,
                        policy_actions, shape: tuple[int, ...]) -> np.ndarray:
    """Behaviour actions, float32 ``shape`` in [-1, 1]: uniform random before ``learning_starts``, then
    the deterministic policy (``policy_actions()``, called only then) plus clipped Gaussian noise."""
    if step < training.learning_starts:
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    noise = rng.normal(0.0, exploration_std(step, agent, training.learning_starts), size=shape)
    return np.clip(policy_actions() + noise, -1.0, 1.0).astype(np.float32)


class Every:
    """``Every(n)(prev, now)``: does the advance of env steps ``(prev, now]`` cross a multiple of ``n``
    (never when ``n`` is 0)? DrQ-v2's ``utils.Every``, for steps that advance by ``num_envs`` at a time."""

    def __init__(self, every: int):
        self.every = every

    def __call__(self, prev: int, now: int) -> bool:
        return crossed(prev, now, self.every) > 0
