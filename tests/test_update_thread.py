import numpy as np
import pytest
import torch

from td3drive.agent.replay import ReplayBuffer
from td3drive.agent.td3 import TD3
from td3drive.config import AgentConfig, ConfigError, build_config
from td3drive.train import Trainer
from td3drive.update_thread import UpdateThread

K = 3


def agent_and_buffer(seed=0, encoder="critic"):
    torch.manual_seed(seed)
    agent = TD3(K, AgentConfig(encoder=encoder, features_dim=32, hidden_dim=32, n_step=1))
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(200, K, seed=0, n_step=1, gamma=0.99)
    obs = {"image": rng.integers(0, 256, (4, 84, 84), dtype=np.uint8), "vector": rng.standard_normal(K, np.float32)}
    for i in range(200):
        nxt = {"image": rng.integers(0, 256, (4, 84, 84), dtype=np.uint8), "vector": rng.standard_normal(K, np.float32)}
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        buffer.add(obs, action, float(rng.standard_normal()), nxt, False, i % 50 == 49)
        obs = nxt
    return agent, buffer, obs


@pytest.mark.parametrize("encoder", ["critic", "separate"])
def test_acting_uses_the_weights_of_the_last_join_and_the_updates_are_the_sequential_ones(encoder):
    agent, buffer, obs = agent_and_buffer(encoder=encoder)
    twin, twin_buffer, _ = agent_and_buffer(encoder=encoder)
    thread = UpdateThread(agent)
    before = agent.act(obs["image"], obs["vector"])
    np.testing.assert_array_equal(thread.policy.act(obs["image"], obs["vector"]), before)

    torch.manual_seed(1)
    thread.launch(lambda: buffer.sample(16, torch.device("cpu")), 4)  # 4: two actor updates (policy delay 2)
    # Whatever the worker has done so far, acting reads the snapshot, which nothing writes.
    np.testing.assert_array_equal(thread.policy.act(obs["image"], obs["vector"]), before)
    telemetry = thread.join()
    after = agent.act(obs["image"], obs["vector"])
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(thread.policy.act(obs["image"], obs["vector"]), after)

    # The same batches and the same torch draws as four updates run one after the other.
    torch.manual_seed(1)
    sequential = [twin.update(twin_buffer.sample(16, torch.device("cpu"))) for _ in range(4)]
    assert telemetry == sequential and agent.total_it == twin.total_it == 4
    for a, b in zip(agent.critic.parameters(), twin.critic.parameters()):
        assert torch.equal(a, b)
    assert thread.join() == []  # nothing in flight


def test_a_failing_update_is_raised_at_the_join():
    agent, buffer, _ = agent_and_buffer()
    thread = UpdateThread(agent)
    thread.launch(lambda: buffer.sample(16, torch.device("cpu"))._replace(action=torch.zeros(16, 5)), 1)
    with pytest.raises(RuntimeError):
        thread.join()
    thread.launch(lambda: buffer.sample(16, torch.device("cpu")), 1)
    with pytest.raises(RuntimeError, match="join the updates in flight first"):
        thread.launch(lambda: buffer.sample(16, torch.device("cpu")), 1)
    assert len(thread.join()) == 1  # (and nothing left running to draw from torch's generator)


def test_an_overlapped_run_is_reproducible_and_does_every_update(tmp_path, tiny_sets):
    sets = [*tiny_sets, "training.max_timesteps=240", "training.checkpoint_freq=100", "training.overlap_updates=true"]
    runs, results = [], []
    for i in range(2):  # one after the other: building a Trainer seeds torch's generator
        runs.append(Trainer(build_config(sets=sets), tmp_path / f"run{i}"))
        results.append(runs[-1].train())
    plain = Trainer(build_config(sets=sets[:-1]), tmp_path / "plain")
    plain.train()
    assert results[0].exit_code == 0 and not runs[0].updates.in_flight
    # One update per launch at each multiple of 4 in [64, 240], all joined before the final checkpoint.
    assert runs[0].agent.total_it == runs[1].agent.total_it == plain.agent.total_it == 45
    for a, b in zip(runs[0].agent.critic.parameters(), runs[1].agent.critic.parameters()):
        assert torch.equal(a, b)
    # Acting one launch behind the learner changes the data, so not the sequential run's weights.
    pairs = zip(runs[0].agent.critic.parameters(), plain.agent.critic.parameters())
    assert not all(torch.equal(a, b) for a, b in pairs)
    assert sorted(p.name for p in (tmp_path / "run0" / "checkpoints").glob("step_*.pt")) == [
        "step_100.pt", "step_200.pt", "step_240.pt"]


def test_overlap_is_refused_with_ray_actors():
    with pytest.raises(ConfigError, match="training.overlap_updates.*training.actors = 0"):
        build_config(sets=["training.overlap_updates=true", "training.actors=2"])
