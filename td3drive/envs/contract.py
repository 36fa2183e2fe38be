"""Wrappers that put any backend under the observation/action contract of docs/ARCHITECTURE.md.

A backend provides a single-frame uint8 image observation ``[H, W]`` (or RGB ``[H, W, 3]``) and an
``ego_vector()`` method (float32 ``[k]``). These wrappers add action repeat, the time limit, the
84x84 grayscale 4-frame stack, the blank-frame check and finally the ``{"image", "vector"}`` dict.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import (
    FrameStackObservation,
    GrayscaleObservation,
    ResizeObservation,
    TimeLimit,
)

from td3drive.core.spec import FRAME_STACK, IMAGE_SIZE  # the contract's sizes (backends import them from here)


class BackendUnavailable(RuntimeError):
    """A backend's package is not installed or its server does not answer (exit code 2)."""


class BlankFrameError(RuntimeError):
    """Rendering is broken: the agent would train on blank images."""


class ThrottleBrakeAction(gym.ActionWrapper):
    """Contract action ``[steer, throttle_brake]`` in [-1, 1]^2 -> a backend's ``(steer, gas, brake)``.

    Positive ``throttle_brake`` is gas, negative is brake, so the agent can never press both.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return throttle_brake_to_controls(action)


def throttle_brake_to_controls(action: np.ndarray) -> np.ndarray:
    """``[steer, tb]`` -> ``[steer, gas, brake]`` with gas = max(tb, 0), brake = max(-tb, 0), clipped."""
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    return np.array([a[0], max(a[1], 0.0), max(-a[1], 0.0)])


# Per-frame ``info`` entries that describe the frame, not the state after it: an agent step of several frames
# reports their total (or whether any frame had the event), not the last frame's alone. Every other key is
# the last frame's (state: speed, route length, success).
SUMMED_INFO = ("distance_m",)
ANY_INFO = ("collision", "lane_invasion")


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` simulator steps, summing rewards; stop early when an episode ends.

    ``info["frames"]`` is the number of simulator frames the step took (``repeat``, or fewer at the end).
    The route metrics' per-frame entries are totalled over those frames (:data:`SUMMED_INFO`, :data:`ANY_INFO`,
    and each ``reward_terms`` entry), so driving metrics and reward terms do not depend on the repeat.
    """

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        sums: dict[str, float] = {}
        events: dict[str, bool] = {}
        terms: dict[str, float] = {}
        for frames in range(1, self.repeat + 1):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            for k in SUMMED_INFO:
                if k in info:
                    sums[k] = sums.get(k, 0.0) + float(info[k])
            for k in ANY_INFO:
                if k in info:
                    events[k] = events.get(k, False) or bool(info[k])
            for k, v in info.get("reward_terms", {}).items():
                terms[k] = terms.get(k, 0.0) + float(v)
            if terminated or truncated:
                break
        out = {**info, **sums, **events, "frames": frames}
        if "reward_terms" in info:
            out["reward_terms"] = terms
        return obs, total, terminated, truncated, out


class BlankFrameCheck(gym.Wrapper):
    """Raise :class:`BlankFrameError` if every newest frame of an episode's first ``steps`` steps is
    uniform (a single pixel value): a broken renderer, not a driving scene."""

    def __init__(self, env: gym.Env, steps: int, hint: str = ""):
        super().__init__(env)
        self.steps = steps
        self.hint = hint
        self._count = 0
        self._blank = True

    def _check(self, obs: np.ndarray) -> None:
        if not self._blank or self.steps == 0:
            return
        frame = obs[-1]
        if frame.min() != frame.max():
            self._blank = False
            return
        self._count += 1
        if self._count >= self.steps:
            raise BlankFrameError(
                f"rendering looks broken: every frame of the first {self.steps} steps of the episode is "
                f"the single value {int(frame.flat[0])}; refusing to train on blank images"
                + (f" ({self.hint})" if self.hint else "")
            )

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._count, self._blank = 0, True
        self._check(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._check(obs)
        return obs, reward, terminated, truncated, info


class EgoDictObservation(gym.ObservationWrapper):
    """Stacked frames ``uint8[4, 84, 84]`` + the backend's ``ego_vector()`` -> the contract dict."""

    def __init__(self, env: gym.Env, vector_dim: int, ego_vector: Callable[[], np.ndarray]):
        super().__init__(env)
        self._ego_vector = ego_vector
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (FRAME_STACK, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
                "vector": spaces.Box(-np.inf, np.inf, (vector_dim,), np.float32),
            }
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": observation, "vector": self._ego_vector().astype(np.float32, copy=False)}


def apply_contract(
    env: gym.Env,
    *,
    vector_dim: int,
    ego_vector: Callable[[], np.ndarray],
    action_repeat: int,
    max_episode_frames: int,
    blank_frame_steps: int,
    blank_hint: str = "",
) -> gym.Env:
    """Wrap a single-frame backend (actions already in contract form) into the full contract."""
    # The time limit counts simulator frames (below the repeat), so an episode lasts the same
    # simulated time whatever the repeat: CarRacing's is 1,000 frames, as in published results.
    env = TimeLimit(env, max_episode_frames)
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    if len(env.observation_space.shape) == 3:
        env = GrayscaleObservation(env, keep_dim=False)
    if env.observation_space.shape != (IMAGE_SIZE, IMAGE_SIZE):
        env = ResizeObservation(env, (IMAGE_SIZE, IMAGE_SIZE))
    env = FrameStackObservation(env, FRAME_STACK)
    env = BlankFrameCheck(env, blank_frame_steps, blank_hint)
    return EgoDictObservation(env, vector_dim, ego_vector)


def check_contract(obs: dict[str, Any], vector_dim: int) -> None:
    """Assert an observation meets the contract (used by tests and by backends' own checks)."""
    image, vector = obs["image"], obs["vector"]
    assert image.dtype == np.uint8 and image.shape == (FRAME_STACK, IMAGE_SIZE, IMAGE_SIZE), image.shape
    assert vector.dtype == np.float32 and vector.shape == (vector_dim,), vector.shape
