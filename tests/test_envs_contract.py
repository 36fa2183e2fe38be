import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from td3drive.envs.contract import BlankFrameError, apply_contract, check_contract, throttle_brake_to_controls


class Scripted(gym.Env):
    """Single-frame backend whose frames, terminations and ego vector the test controls."""

    def __init__(self, frame_value=None, terminate_at=None):
        self.observation_space = spaces.Box(0, 255, (84, 84), np.uint8)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.frame_value, self.terminate_at, self.t = frame_value, terminate_at, 0

    def _frame(self):
        if self.frame_value is not None:
            return np.full((84, 84), self.frame_value, np.uint8)
        f = np.zeros((84, 84), np.uint8)
        f[self.t % 84, :] = 255
        return f

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        return self._frame(), float(action[0]), self.t == self.terminate_at, False, {}

    def ego_vector(self):
        return np.array([self.t, -self.t], np.float32)


def wrap(base, **kw):
    args = dict(vector_dim=2, ego_vector=base.ego_vector, action_repeat=1, max_episode_frames=10, blank_frame_steps=50)
    args.update(kw)
    return apply_contract(base, **args)


def test_action_mapping():
    np.testing.assert_allclose(throttle_brake_to_controls(np.array([0.3, 0.7])), [0.3, 0.7, 0.0])
    np.testing.assert_allclose(throttle_brake_to_controls(np.array([-1.0, -0.4])), [-1.0, 0.0, 0.4])
    np.testing.assert_allclose(throttle_brake_to_controls(np.array([2.0, -3.0])), [1.0, 0.0, 1.0])


def test_stack_is_oldest_first_with_reset_padding_and_vector_attached():
    env = wrap(Scripted())
    obs, _ = env.reset(seed=0)
    check_contract(obs, 2)
    assert all(np.array_equal(obs["image"][i], obs["image"][0]) for i in range(4))
    for _ in range(5):
        obs, *_ = env.step(np.zeros(2, np.float32))
    rows = [int(np.argmax(obs["image"][i][:, 0])) for i in range(4)]
    assert rows == [2, 3, 4, 5]
    np.testing.assert_array_equal(obs["vector"], [5, -5])


def test_truncation_and_termination_stay_distinct():
    env = wrap(Scripted(), max_episode_frames=10)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(10)]
    assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])
    env = wrap(Scripted(terminate_at=3), max_episode_frames=10)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[2:4] for _ in range(3)]
    assert flags[-1] == (True, False)


def test_action_repeat_sums_rewards_and_stops_at_episode_end():
    env = wrap(Scripted(terminate_at=5), action_repeat=3, max_episode_frames=100)
    env.reset(seed=0)
    _, r, term, trunc, _ = env.step(np.array([0.5, 0], np.float32))
    assert r == pytest.approx(1.5) and not term
    _, r, term, _, _ = env.step(np.array([0.5, 0], np.float32))
    assert r == pytest.approx(1.0) and term  # steps 4 and 5 only


def test_blank_frames_raise_after_the_configured_steps():
    env = wrap(Scripted(frame_value=0), blank_frame_steps=50, max_episode_frames=1000)
    env.reset(seed=0)
    with pytest.raises(BlankFrameError, match="first 50 steps.*single value 0"):
        for _ in range(60):
            env.step(np.zeros(2, np.float32))


def test_uniform_but_not_blank_scenes_and_disabled_check_do_not_raise():
    env = wrap(Scripted(), blank_frame_steps=50, max_episode_frames=1000)
    env.reset(seed=0)
    for _ in range(60):
        env.step(np.zeros(2, np.float32))
    env = wrap(Scripted(frame_value=7), blank_frame_steps=0, max_episode_frames=1000)
    env.reset(seed=0)
    for _ in range(60):
        env.step(np.zeros(2, np.float32))


def test_time_limit_counts_simulator_frames_whatever_the_repeat():
    # 10 frames at repeat 3: agent steps of 3, 3, 3 and 1 frames, truncated on the fourth.
    env = wrap(Scripted(), action_repeat=3, max_episode_frames=10)
    env.reset(seed=0)
    steps = [env.step(np.array([1.0, 0], np.float32)) for _ in range(4)]
    assert [s[4]["frames"] for s in steps] == [3, 3, 3, 1]
    assert [s[3] for s in steps] == [False, False, False, True] and not any(s[2] for s in steps)
    assert [s[1] for s in steps] == [3.0, 3.0, 3.0, 1.0]  # rewards of the frames actually simulated


class Driving(Scripted):
    """Reports the route keys every frame: 2 m per frame, a lane invasion on frame 2 only, the reward terms."""

    def step(self, action):
        frame, reward, terminated, truncated, _ = super().step(action)
        info = {"distance_m": 2.0, "route_length_m": 100.0, "collision": False, "lane_invasion": self.t == 2,
                "speed_mps": float(self.t), "reward_terms": {"progress": 1.0, "speed": 0.5}}
        return frame, reward, terminated, truncated, info


def test_action_repeat_totals_route_info_over_its_frames():
    # Repeat 3: the first agent step is frames 1-3 (the invasion on frame 2 is not the last frame's), the
    # second frames 4-5 (terminated at 5).
    env = wrap(Driving(terminate_at=5), action_repeat=3, max_episode_frames=100)
    env.reset(seed=0)
    *_, info = env.step(np.zeros(2, np.float32))
    assert info["distance_m"] == 6.0 and info["lane_invasion"] is True and info["collision"] is False
    assert info["reward_terms"] == {"progress": 3.0, "speed": 1.5}
    assert info["speed_mps"] == 3.0 and info["route_length_m"] == 100.0  # state: the last frame's
    *_, term, _, info = env.step(np.zeros(2, np.float32))
    assert term and info["distance_m"] == 4.0 and info["lane_invasion"] is False and info["frames"] == 2
    assert info["reward_terms"] == {"progress": 2.0, "speed": 1.0}
