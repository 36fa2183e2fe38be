import numpy as np
import pytest

from td3drive.envs.lanekeep import MAX_CURVATURE, STEER_GAIN, LaneKeepEnv


def test_dynamics_reward_and_termination():
    env = LaneKeepEnv(max_steps=5)
    env.reset(seed=0)
    env.offset, env.curvature = 0.5, 0.0
    env.np_random = np.random.default_rng(0)
    noise = np.random.default_rng(0).normal()
    _, r, term, trunc, info = env.step(np.array([1.0, 0.0]))
    assert env.offset == pytest.approx(0.5 - STEER_GAIN + 0.02 * noise)
    assert r == pytest.approx(1 - abs(env.offset)) and not term and not trunc and not info["is_success"]
    env.offset = 0.95
    _, r, term, *_ = env.step(np.array([-1.0, 0.0]))  # steering left pushes the car further left
    assert term and r == 0.0


def test_success_is_reaching_the_step_limit_in_the_lane():
    env = LaneKeepEnv(max_steps=3)
    env.reset(seed=1)
    env.curvature = 0.0
    infos = [env.step(np.array([3 * env.offset, 0.0]))[4] for _ in range(3)]
    assert [i["is_success"] for i in infos] == [False, False, True]


def test_frame_shows_the_lane_where_the_offset_says():
    env = LaneKeepEnv()
    env.reset(seed=0)
    env.curvature = 0.0
    centres = []
    for offset in (-0.5, 0.0, 0.5):
        env.offset = offset
        row = env._frame()[40]
        road = np.flatnonzero(row == 110)
        centres.append(road.mean())
    # car left of centre (offset > 0) -> lane appears to the right, 16 px per half-width
    assert centres[0] - centres[1] == pytest.approx(8, abs=1) and centres[1] - centres[2] == pytest.approx(8, abs=1)
    assert env.ego_vector()[1] == pytest.approx(env.curvature / MAX_CURVATURE)
