"""Input ablation on policies whose answer is known by construction: one steers from the image alone, one from
the ego vector alone, on LaneKeep (the lane is both drawn in the frame and given as the vector's offset)."""

import gymnasium as gym
import numpy as np
import pytest

from td3drive.ablation import Ablation, ablate
from td3drive.config import EnvConfig
from td3drive.core import tags
from td3drive.envs import make_env
from td3drive.envs.lanekeep import LANE_HALF_WIDTH_PX, MAX_CURVATURE, STEER_GAIN

CFG = EnvConfig(name="lanekeep", max_episode_frames=200, action_repeat=1)
ROAD = 110  # LaneKeep's road grey


def _envs(n: int = 2) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([lambda: make_env(CFG)] * n)


def image_policy(image: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Steers from the newest frame: the road band's centre in the rows just above the car."""
    rows = image[:, -1, -20:-10, :]  # [N, 10, 84]
    cols = np.arange(rows.shape[-1])
    road = rows >= ROAD  # road and edge lines
    centre = (road * cols).sum(axis=(1, 2)) / np.maximum(road.sum(axis=(1, 2)), 1)
    offset = (rows.shape[-1] / 2 - centre) / LANE_HALF_WIDTH_PX
    return np.stack([np.clip(offset / STEER_GAIN, -1, 1), np.zeros(len(offset))], axis=1).astype(np.float32)


def vector_policy(image: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Steers from the vector: the exact correction for offset and drift."""
    steer = (vector[:, 0] + vector[:, 1] * MAX_CURVATURE) / STEER_GAIN
    return np.stack([np.clip(steer, -1, 1), np.zeros(len(steer))], axis=1).astype(np.float32)


def _ablate(policy, **kwargs) -> tuple[Ablation, np.ndarray, np.ndarray, np.ndarray]:
    """The ablation of ``policy`` on 6 LaneKeep episodes, and its (given, frozen, neutral) returns."""
    envs = _envs()
    try:
        a = ablate(envs, policy, seed=3, episodes=6, **kwargs)
    finally:
        envs.close()
    return a, a.given.returns, a.ablated["camera_frozen"].returns, a.ablated["vector_neutral"].returns


def test_freezing_the_camera_collapses_an_image_policy_only():
    a, given, frozen, neutral = _ablate(image_policy)
    assert given.mean() > 150  # 200 steps at ~0.9: it drives
    assert frozen.mean() < 0.5 * given.mean()  # blind, it leaves the lane
    np.testing.assert_array_equal(neutral, given)  # it never reads the vector: the same episodes exactly
    assert a.camera_carries and a.drop("camera_frozen").low > 0
    assert a.drop("vector_neutral").within_noise
    assert a.verdict().startswith("the policy uses its camera")


def test_neutralising_the_vector_collapses_a_vector_policy_only():
    a, given, frozen, neutral = _ablate(vector_policy)
    assert given.mean() > 150
    np.testing.assert_array_equal(frozen, given)
    assert neutral.mean() < 0.5 * given.mean()
    assert not a.camera_carries and a.drop("camera_frozen").within_noise
    assert a.verdict().startswith("the policy does not use its camera")
    # The neutral vector is the mean over the normal run's steps, on every step (not zeros).
    assert a.given.vector_mean is not None and a.given.vector_mean.shape == (2,)
    s = a.scalars()
    assert s[tags.ablated(tags.EVAL_MEAN_REWARD, "camera_frozen")] == pytest.approx(given.mean())
    assert s[tags.drop_ci("vector_neutral", "low")] > 0


def test_a_policy_that_ignores_the_vector_is_not_given_the_vector_condition():
    envs = _envs()
    try:
        a = ablate(envs, image_policy, seed=0, episodes=2, uses_vector=False)
    finally:
        envs.close()
    assert set(a.ablated) == {"camera_frozen"}


def test_the_frozen_camera_is_each_episodes_own_first_frames():
    from td3drive.evaluate import evaluate

    normal: list[np.ndarray] = []
    frozen: list[np.ndarray] = []
    envs = _envs(1)
    try:
        r = evaluate(envs, lambda i, v: (normal.append(i.copy()), vector_policy(i, v))[1], 0, 2)
        evaluate(envs, lambda i, v: (frozen.append(i.copy()), vector_policy(i, v))[1], 0, 2, camera_frozen=True)
    finally:
        envs.close()
    first = int(r.lengths[0])
    assert len(frozen) == len(normal) == r.lengths.sum()  # the vector policy drives the same episodes
    assert all(np.array_equal(img, normal[0]) for img in frozen[:first])
    assert all(np.array_equal(img, normal[first]) for img in frozen[first:])
    assert not np.array_equal(normal[0], normal[first])  # two tracks: each episode froze its own start
