"""LaneKeep: a tiny visual lane-keeping task that TD3 learns in seconds on a CPU (tests, smoke runs).

The car sits at the bottom centre of an 84x84 top-down image; the lane (road band with bright edge
lines) is drawn relative to it and bends with the episode's curvature. The road drifts the car
sideways by the curvature every step; steering pushes back.

Dynamics per step: ``offset <- offset - 0.2 * steer + curvature + N(0, 0.02)`` (offset in lane
half-widths, + = car left of centre; steer + = right). ``throttle_brake`` is ignored.
Reward ``1 - |offset|`` while in the lane; leaving it (``|offset| > 1``) terminates the episode.
Success: reaching the time limit inside the lane.

Ego vector, k = 2: ``[offset (lane half-widths), curvature / 0.05 (in [-1, 1])]``.
A random policy leaves the lane within a few dozen steps; a good one collects ~0.9 per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from td3drive.envs.contract import IMAGE_SIZE, apply_contract

if TYPE_CHECKING:
    from td3drive.envs import EnvConfig

VECTOR_DIM = 2
VECTOR_NAME = "lane geometry"
SCENARIOS = {"lanekeep": (0,)}
# A stage's shortest healthy mean episode, as a fraction of the longest (criteria.resolve): LaneKeep ends an
# episode by leaving the lane (random actions: a few dozen steps).
STAGE_MIN_EPISODE_FRACTION = 0.2
MAX_CURVATURE = 0.05
STEER_GAIN = 0.2
NOISE_STD = 0.02
LANE_HALF_WIDTH_PX = 16


class LaneKeepEnv(gym.Env):
    """Single-frame lane-keeping backend: uint8 ``[84, 84]`` frames, action ``[steer, throttle_brake]``."""

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = 1000):
        self.max_steps = max_steps
        self.observation_space = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._cols = np.arange(IMAGE_SIZE)[None, :]
        self._ahead = (IMAGE_SIZE - 1 - np.arange(IMAGE_SIZE))[:, None].astype(np.float64)
        self.offset = 0.0
        self.curvature = 0.0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.offset = float(self.np_random.uniform(-0.3, 0.3))
        self.curvature = float(self.np_random.uniform(-MAX_CURVATURE, MAX_CURVATURE))
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        steer = float(np.clip(action[0], -1.0, 1.0))
        self.offset += -STEER_GAIN * steer + self.curvature + NOISE_STD * float(self.np_random.normal())
        self.t += 1
        terminated = abs(self.offset) > 1.0
        reward = 0.0 if terminated else 1.0 - abs(self.offset)
        info = {"is_success": (not terminated) and self.t >= self.max_steps}
        return self._frame(), reward, terminated, False, info

    def ego_vector(self) -> np.ndarray:
        return np.array([self.offset, self.curvature / MAX_CURVATURE], dtype=np.float32)

    def _frame(self) -> np.ndarray:
        # The lane centre seen from the car: shifted right when the car is left of centre, and bent
        # by the curvature further ahead (top rows), so the image alone shows what to steer.
        centre = (
            IMAGE_SIZE / 2 - self.offset * LANE_HALF_WIDTH_PX + 0.03 * self.curvature / MAX_CURVATURE * self._ahead**1.5
        )
        dist = np.abs(self._cols - centre)
        frame = np.full((IMAGE_SIZE, IMAGE_SIZE), 30, np.uint8)
        frame[dist < LANE_HALF_WIDTH_PX] = 110
        frame[np.abs(dist - LANE_HALF_WIDTH_PX) < 1.5] = 255
        frame[-8:-2, IMAGE_SIZE // 2 - 2 : IMAGE_SIZE // 2 + 2] = 200
        return frame


def make_lanekeep(action_repeat: int, max_episode_frames: int, blank_frame_steps: int) -> gym.Env:
    """LaneKeep under the contract."""
    base = LaneKeepEnv(max_steps=max_episode_frames)
    return apply_contract(
        base,
        vector_dim=VECTOR_DIM,
        ego_vector=base.ego_vector,
        action_repeat=action_repeat,
        max_episode_frames=max_episode_frames,
        blank_frame_steps=blank_frame_steps,
    )


def make(cfg: EnvConfig, training: bool = False) -> gym.Env:
    """The registry's constructor (``cfg``: the env config section)."""
    return make_lanekeep(cfg.action_repeat, cfg.max_episode_frames, cfg.blank_frame_steps)
