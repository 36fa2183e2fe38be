"""The evaluation loop: deterministic episodes of a policy on the fixed evaluation seeds
(:data:`td3drive.core.seeding.EVAL_EPISODES`), the same whatever the number of env processes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Protocol

import gymnasium as gym
import numpy as np

from td3drive import metrics
from td3drive.core.seeding import EVAL_EPISODES, episode_seed
from td3drive.core.signals import shielded

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (uint8 [4, 84, 84], float32 [k]) -> float32 [2]


class PolicySource(Protocol):
    """What an evaluator evaluates (the trainer's TD3): a policy to act in this process and a snapshot of its
    weights for another one."""

    def act(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray: ...

    def policy_state(self) -> dict: ...


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray  # float64 [episodes], undiscounted
    lengths: np.ndarray  # int64 [episodes], agent steps
    successes: np.ndarray  # bool [episodes]
    driving: dict[str, float] | None = None  # eval/* driving metrics of route backends (td3drive.metrics)
    frames: np.ndarray | None = None  # int64 [episodes], simulator frames (agent steps x action repeat)
    vector_mean: np.ndarray | None = None  # float64 [k], the ego vector's mean over every step the policy saw
    ablated: dict[str, "EvalResult"] | None = None  # td3drive.ablation's conditions, when this one ran them

    @property
    def mean_reward(self) -> float:
        return float(self.returns.mean())

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean())

    @property
    def success_rate(self) -> float:
        return float(self.successes.mean())


def eval_workers(training, env: str = "") -> int:
    """Resolve ``training.eval_workers``: 0 = one env process per CPU core, capped at the episode count;
    always 1 for a backend ``env`` whose envs live in one process (CARLA: one server, one env).

    Also with asynchronous evaluation: once training ends the evaluator has every core to itself,
    and measured on 2 cores, 2 env processes beat 1 (bench/train_5k.py: 74-79 s vs 85-88 s).
    """
    from td3drive.envs import single_process

    if env and single_process(env):
        return 1
    if training.eval_workers:
        return min(training.eval_workers, training.num_eval_episodes)
    return max(1, min(os.cpu_count() or 1, training.num_eval_episodes))


def make_eval_envs(make_fn: Callable[[], gym.Env], workers: int) -> gym.vector.VectorEnv:
    """``workers`` evaluation envs: subprocesses when more than one (the simulator is the bottleneck)."""
    if workers <= 1:
        return gym.vector.SyncVectorEnv([make_fn])
    with shielded():  # the env processes leave SIGINT/SIGTERM to the process that owns them
        return gym.vector.AsyncVectorEnv([make_fn] * workers, context="spawn")


def evaluate(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    seed: int,
    episodes: int,
    on_frame: Callable[[np.ndarray], None] | None = None,
    camera_frozen: bool = False,
    vector_fill: np.ndarray | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` (deterministic, batched over the envs) on fixed seeds.

    Episode ``i`` always uses the seed ``episode_seed(seed, i, EVAL_EPISODES)``, whatever the number of envs.
    ``on_frame`` receives the newest frame ``uint8[84, 84]`` of every step of episode 0. The input
    ablations of :mod:`td3drive.ablation`: ``camera_frozen`` shows the policy the reset's frames at every
    step; ``vector_fill`` ``[k]`` replaces every ego vector the policy reads.
    """
    n = envs.num_envs
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, np.int64)
    frames = np.zeros(episodes, np.int64)
    successes = np.zeros(episodes, bool)
    driving = [metrics.EpisodeDriving() for _ in range(episodes)]
    route = False
    vector_sum, vector_steps = 0.0, 0
    fill = None if vector_fill is None else np.broadcast_to(vector_fill, (n, len(vector_fill))).astype(np.float32)
    for first in range(0, episodes, n):
        ids = [first + i for i in range(n)]
        live = np.array([i < episodes for i in ids])
        obs, _ = envs.reset(seed=[episode_seed(seed, min(i, episodes - 1), EVAL_EPISODES) for i in ids])
        first_images = obs["image"].copy()
        while live.any():
            if on_frame is not None and first == 0 and live[0]:
                on_frame(obs["image"][0][-1])
            vector_sum = vector_sum + obs["vector"][live].astype(np.float64).sum(axis=0)
            vector_steps += int(live.sum())
            image = first_images if camera_frozen else obs["image"]
            obs, reward, terminated, truncated, info = envs.step(policy(image, obs["vector"] if fill is None else fill))
            route = route or metrics.has_driving_info(info)
            for j in np.flatnonzero(live):
                returns[ids[j]] += float(reward[j])
                lengths[ids[j]] += 1
                frames[ids[j]] += int(info["frames"][j]) if "frames" in info else 1
                if route:
                    driving[ids[j]].add(*(info[k][j] for k in metrics.INFO_KEYS))
                if terminated[j] or truncated[j]:
                    live[j] = False
                    successes[ids[j]] = _success_at(info, j)
    return EvalResult(returns, lengths, successes, metrics.summarize(driving) if route else None, frames,
                      np.asarray(vector_sum / max(vector_steps, 1), np.float64))


def _success_at(info: dict, j: int) -> bool:
    """Success flag of sub-env ``j`` from a vector env's batched info dict."""
    if "is_success" in info and info.get("_is_success", np.ones(len(info["is_success"]), bool))[j]:
        return bool(info["is_success"][j])
    return False
