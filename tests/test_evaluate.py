import numpy as np
import pytest

from td3drive.config import EnvConfig, TrainingConfig
from td3drive.envs import make_env
from td3drive.evaluate import episode_seed, eval_workers, evaluate, make_eval_envs

CFG = EnvConfig(name="lanekeep", max_episode_steps=40)


def make():
    return make_env(CFG)


def steer_to_centre(image, vector):
    # Proportional controller on the ego vector's offset (steer + = right = towards negative offset).
    return np.stack([np.clip(3 * vector[:, 0], -1, 1), np.zeros(len(vector))], axis=1).astype(np.float32)


def test_episode_seeds_are_distinct_and_stable():
    seeds = {episode_seed(0, i) for i in range(100)} | {episode_seed(0, i, 1) for i in range(100)}
    assert len(seeds) == 200 and episode_seed(3, 5) == episode_seed(3, 5)


def test_sequential_and_parallel_evaluation_agree():
    one = evaluate(make_eval_envs(make, 1), steer_to_centre, seed=0, episodes=5)
    two = evaluate(make_eval_envs(make, 2), steer_to_centre, seed=0, episodes=5)  # 3 rounds, last one half-used
    np.testing.assert_allclose(one.returns, two.returns, rtol=1e-6)
    np.testing.assert_array_equal(one.lengths, two.lengths)
    assert one.success_rate == 1.0 and (one.lengths == 40).all()  # the controller stays in the lane


def test_failures_and_frames_recorded():
    frames = []
    push_left = lambda img, vec: np.tile(np.array([[-1.0, 0.0]], np.float32), (len(img), 1))
    r = evaluate(make_eval_envs(make, 1), push_left, seed=0, episodes=3, on_frame=frames.append)
    assert r.success_rate == 0.0 and (r.lengths < 40).all()
    assert len(frames) == r.lengths[0] and frames[0].shape == (84, 84)
    assert r.mean_reward == pytest.approx(r.returns.mean())


def test_eval_workers_resolution():
    assert eval_workers(TrainingConfig(eval_workers=4, num_eval_episodes=3)) == 3
    assert 1 <= eval_workers(TrainingConfig(eval_workers=0, num_eval_episodes=10)) <= 10
