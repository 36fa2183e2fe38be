import numpy as np
import pytest

from td3drive.config import EnvConfig, TrainingConfig
from td3drive.core.seeding import episode_seed
from td3drive.envs import make_env
from td3drive.evaluate import eval_workers, evaluate, make_eval_envs

CFG = EnvConfig(name="lanekeep", max_episode_frames=40, action_repeat=1)


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


def test_episode_length_in_agent_steps_and_in_simulator_frames():
    repeat4 = lambda: make_env(EnvConfig(name="lanekeep", max_episode_frames=40, action_repeat=4))
    r = evaluate(make_eval_envs(repeat4, 2), steer_to_centre, seed=0, episodes=3)
    assert (r.lengths == 10).all() and (r.frames == 40).all()  # the time limit counts frames
    one = evaluate(make_eval_envs(make, 1), steer_to_centre, seed=0, episodes=2)
    np.testing.assert_array_equal(one.frames, one.lengths)  # no repeat: one frame per agent step


def test_failures_and_frames_recorded():
    frames = []
    push_left = lambda img, vec: np.tile(np.array([[-1.0, 0.0]], np.float32), (len(img), 1))
    r = evaluate(make_eval_envs(make, 1), push_left, seed=0, episodes=3, on_frame=frames.append)
    assert r.success_rate == 0.0 and (r.lengths < 40).all()
    assert len(frames) == r.lengths[0] and frames[0].shape == (84, 84)
    assert r.mean_reward == pytest.approx(r.returns.mean())


def test_eval_workers_resolution():
    assert eval_workers(TrainingConfig(eval_workers=4, num_eval_episodes=3)) == 3
    assert eval_workers(TrainingConfig(eval_workers=4, num_eval_episodes=10), "carla") == 1  # one server
    assert 1 <= eval_workers(TrainingConfig(eval_workers=0, num_eval_episodes=10)) <= 10


def test_async_evaluator_matches_sync_on_the_same_snapshot():
    import torch

    from td3drive.agent.td3 import TD3
    from td3drive.config import from_dict
    from td3drive.eval_process import AsyncEvaluator
    from td3drive.evaluator import SyncEvaluator

    cfg = from_dict({"env": {"name": "lanekeep", "max_episode_frames": 30},
                     "agent": {"features_dim": 32, "hidden_dim": 16},
                     "training": {"num_eval_episodes": 3, "seed": 4}})
    torch.manual_seed(0)
    agent = TD3(2, cfg.agent)
    sync = SyncEvaluator(lambda: make_env(cfg.env), 1, cfg)
    sync.submit(10, agent, ablate=True)
    (step_s, expected), = sync.drain()
    sync.close()
    ev = AsyncEvaluator(cfg.to_dict(), 2, workers=1)
    try:
        ev.submit(10, agent, ablate=True)
        with torch.no_grad():  # training moves on; the submitted snapshot must not change
            for p in agent.actor.parameters():
                p.add_(1.0)
        (step_a, got), = ev.drain()
    finally:
        ev.close()
    assert step_a == step_s == 10
    np.testing.assert_allclose(got.returns, expected.returns, rtol=1e-6)
    np.testing.assert_array_equal(got.lengths, expected.lengths)
    # The input ablations ran in both, on the same seeds, with the same results.
    assert set(got.ablated) == set(expected.ablated) == {"camera_frozen", "vector_neutral"}
    for name in got.ablated:
        np.testing.assert_allclose(got.ablated[name].returns, expected.ablated[name].returns, rtol=1e-6)
