import numpy as np
import pytest
import torch

from td3drive.agent.replay import ReplayBuffer, ReplayMemoryError, bytes_per_slot

K = 3


class NaiveStacker:
    """Reference: gymnasium-style frame stacking (reset padding) with full obs/next_obs copies."""

    def __init__(self, rng):
        self.rng = rng

    def reset(self):
        f = self.rng.integers(0, 256, (84, 84), dtype=np.uint8)
        self.frames = [f] * 4
        return self.obs()

    def step(self):
        self.frames = self.frames[1:] + [self.rng.integers(0, 256, (84, 84), dtype=np.uint8)]
        return self.obs()

    def obs(self):
        return {"image": np.stack(self.frames), "vector": self.rng.normal(size=K).astype(np.float32)}


def fill(buffer, n_steps, seed, max_len=12):
    """Random episodes with terminations and truncations; returns the naive list of transitions."""
    rng = np.random.default_rng(seed)
    env = NaiveStacker(rng)
    naive = []
    obs, t = env.reset(), 0
    for _ in range(n_steps):
        nxt = env.step()
        t += 1
        term = bool(rng.random() < 0.08)
        trunc = (not term) and t >= max_len
        a = rng.uniform(-1, 1, 2).astype(np.float32)
        r = float(rng.normal())
        buffer.add(obs, a, r, nxt, term, trunc)
        naive.append((obs, a, r, nxt, term, trunc))
        if term or trunc:
            obs, t = env.reset(), 0
        else:
            obs = nxt
    return naive


def check_against_naive(buffer, naive, n_check):
    """Every sampled transition must equal one of the most recent n_check naive transitions exactly."""
    by_action = {tuple(tr[1]): tr for tr in naive[-n_check:]}
    b = buffer.sample(256)
    for j in range(256):
        key = tuple(b.action[j].numpy())
        assert key in by_action, "sampled a transition that is not among the retained ones"
        obs, a, r, nxt, term, trunc = by_action[key]
        np.testing.assert_array_equal(b.image[j].numpy(), obs["image"])
        np.testing.assert_array_equal(b.next_image[j].numpy(), nxt["image"])
        np.testing.assert_array_equal(b.vector[j].numpy(), obs["vector"])
        np.testing.assert_array_equal(b.next_vector[j].numpy(), nxt["vector"])
        assert b.reward[j].item() == pytest.approx(r)
        # one-step targets: gamma, or 0 after a termination (a truncation is never a termination)
        assert b.discount[j].item() == pytest.approx(0.0 if term else buffer.gamma)


def test_matches_naive_buffer_before_wraparound():
    buf = ReplayBuffer(500, K, seed=1)
    naive = fill(buf, 400, seed=2)
    assert len(buf) == 400
    check_against_naive(buf, naive, 400)


def test_matches_naive_buffer_after_many_wraparounds():
    buf = ReplayBuffer(200, K, seed=1)
    naive = fill(buf, 2000, seed=3)
    assert 190 <= len(buf) <= buf.n_slots
    check_against_naive(buf, naive, buf.n_slots)


def test_segment_that_starts_mid_episode_keeps_its_history():
    """After a resume without saved replay, the first stored obs has 4 distinct frames."""
    rng = np.random.default_rng(0)
    env = NaiveStacker(rng)
    env.reset()
    obs = [env.step() for _ in range(6)][-1]
    buf = ReplayBuffer(50, K)
    nxt = env.step()
    buf.add(obs, np.array([0.1, 0.2], np.float32), 1.0, nxt, False, False)
    b = buf.sample(4)
    np.testing.assert_array_equal(b.image[0].numpy(), obs["image"])
    np.testing.assert_array_equal(b.next_image[0].numpy(), nxt["image"])


def test_storage_is_uint8_and_under_8kb_per_transition():
    buf = ReplayBuffer(10_000, 14)
    assert buf.frames.dtype == np.uint8
    assert buf.nbytes / buf.capacity < 8 * 1024
    assert bytes_per_slot((84, 84), 14, 2) < 7200


def test_refuses_a_buffer_that_does_not_fit():
    with pytest.raises(
        ReplayMemoryError, match=r"1,000,000 transitions needs 6\.97 GiB but only 1\.00 GiB.*at most about 129,061"
    ):
        ReplayBuffer(1_000_000, 14, memory_limit_bytes=2**30)


def test_state_dict_round_trip_continues_identically():
    a = ReplayBuffer(300, K, seed=5)
    fill(a, 250, seed=6)
    b = ReplayBuffer(300, K, seed=99)
    b.load_state_dict(a.state_dict())
    x, y = a.sample(32), b.sample(32)
    for u, v in zip(x, y):
        assert (u == v).all()


def test_load_into_a_smaller_buffer_keeps_the_most_recent_transitions():
    big = ReplayBuffer(400, K, seed=5)
    naive = fill(big, 900, seed=7)
    small = ReplayBuffer(100, K, seed=5)
    small.load_state_dict(big.state_dict())
    assert 90 <= len(small) <= small.n_slots
    check_against_naive(small, naive, small.n_slots)
    fill(small, 50, seed=8)  # keeps working after the load
    assert len(small) >= 90


def test_vector_replay_keeps_each_env_stream_exact_and_samples_in_proportion():
    import torch

    from td3drive.agent.replay import VectorReplay

    rng = np.random.default_rng(0)
    vr = VectorReplay(2, 1000, 3, seed=0, memory_limit_bytes=2**32)

    def episode(env, length, mark):
        obs = {"image": np.full((4, 84, 84), mark, np.uint8), "vector": np.zeros(3, np.float32)}
        for t in range(length):
            frame = np.full((1, 84, 84), (mark + t + 1) % 256, np.uint8)
            nxt = {"image": np.concatenate([obs["image"][1:], frame]), "vector": np.full(3, t + 1, np.float32)}
            vr.add(env, obs, rng.uniform(-1, 1, 2).astype(np.float32), float(env), nxt, False, t == length - 1)
            obs = nxt
            yield

    # The two envs' steps interleave (as a vector env delivers them); their stacks must not mix.
    a, b = episode(0, 150, 0), episode(1, 50, 200)
    for _ in range(50):
        next(a), next(b)
    for _ in a:
        pass
    assert len(vr) == 200
    b = vr.sample(4000)
    from_env1 = (b.reward == 1.0).float().mean().item()
    assert abs(from_env1 - 0.25) < 0.03  # 50 of 200 transitions
    # Within a transition the next stack is the current one shifted by one frame, in either stream.
    assert torch.equal(b.image[:, 1:], b.next_image[:, :-1])
    # And every stack holds its own env's consecutive frames (env 0: 0..150, env 1: 200..250).
    px = torch.cat([b.image[:, :, 0, 0], b.next_image[:, -1:, 0, 0]], dim=1).long()
    assert set(px.diff(dim=1).unique().tolist()) <= {0, 1}
    env1 = b.reward == 1.0
    assert (px[env1] >= 200).all() and (px[~env1] <= 150).all()


def episodes_by_hand(buffer, episodes):
    """Write episodes given as (rewards, how it ends: 'term' | 'trunc' | 'open'); the frame of
    observation t of episode e has the pixel value 10 * e + t and its vector is [e, t, 0]. The
    action of step t of episode e is (e, t), so sampled transitions can be recognised."""
    for e, (rewards, end) in enumerate(episodes):
        obs = lambda t: {"image": np.full((4, 84, 84), 10 * e + t, np.uint8), "vector": np.array([e, t, 0], np.float32)}
        for t, r in enumerate(rewards):
            last = t == len(rewards) - 1
            buffer.add(
                obs(t), np.array([e, t], np.float32), r, obs(t + 1), last and end == "term", last and end == "trunc"
            )


def n_step_table(buffer):
    """{(episode, t): (reward, discount, bootstrap obs t)} over a large sample."""
    b = buffer.sample(2000)
    return {(int(a[0]), int(a[1])): (round(r, 6), round(d, 6), int(v[1]))
            for a, r, d, v in zip(b.action.tolist(), b.reward.tolist(), b.discount.tolist(), b.next_vector.tolist())}


def test_n_step_returns_by_hand():
    buf = ReplayBuffer(100, K, seed=0, n_step=3, gamma=0.5)
    episodes_by_hand(buf, [([1, 2, 3, 4, 5], "term"), ([10, 20, 30, 40], "trunc"), ([100, 200], "open")])
    table = n_step_table(buf)
    assert table == {
        # episode 0 ends with a termination: no bootstrap from inside the last 3 steps
        (0, 0): (1 + 0.5 * 2 + 0.25 * 3, 0.125, 3),
        (0, 1): (2 + 0.5 * 3 + 0.25 * 4, 0.125, 4),
        (0, 2): (3 + 0.5 * 4 + 0.25 * 5, 0.0, 5),
        (0, 3): (4 + 0.5 * 5, 0.0, 5),  # ends inside the n steps; never reaches episode 1's rewards
        (0, 4): (5, 0.0, 5),
        # episode 1 is cut by the time limit: bootstrap from its final observation, gamma^m for the m steps
        (1, 0): (10 + 0.5 * 20 + 0.25 * 30, 0.125, 3),
        (1, 1): (20 + 0.5 * 30 + 0.25 * 40, 0.125, 4),
        (1, 2): (30 + 0.5 * 40, 0.25, 4),
        (1, 3): (40, 0.5, 4),
        # episode 2 is running: its newest observation has no transition yet, so the sum stops there
        (2, 0): (100 + 0.5 * 200, 0.25, 2),
        (2, 1): (200, 0.5, 2),
    }


def test_n_step_bootstrap_stack_is_the_observation_m_steps_later():
    buf = ReplayBuffer(100, K, seed=0, n_step=3, gamma=0.9)
    episodes_by_hand(buf, [([1] * 6, "term")])
    b = buf.sample(500)
    t = b.vector[:, 1].long()
    m = (t + 3).clamp(max=6)
    assert torch.equal(b.next_vector[:, 1].long(), m)
    assert torch.equal(b.next_image[:, -1, 0, 0].long(), m)  # newest frame of the bootstrap stack
    assert torch.equal(b.image[:, -1, 0, 0].long(), t)


def test_one_step_buffer_is_plain_td():
    buf = ReplayBuffer(100, K, seed=0, n_step=1, gamma=0.5)
    episodes_by_hand(buf, [([1, 2, 3], "term"), ([4, 5], "trunc")])
    assert n_step_table(buf) == {(0, 0): (1, 0.5, 1), (0, 1): (2, 0.5, 2), (0, 2): (3, 0.0, 3),
                                 (1, 0): (4, 0.5, 1), (1, 1): (5, 0.5, 2)}


@pytest.mark.parametrize("streams", [1, 3])
def test_reused_host_arrays_give_the_same_batch_and_are_overwritten_by_the_next(streams):
    from td3drive.agent.replay import VectorReplay

    if streams == 1:
        buf = ReplayBuffer(300, K, seed=5, memory_limit_bytes=2**32, n_step=3)
        fill(buf, 300, seed=1)
    else:
        buf = VectorReplay(streams, 600, K, seed=5, memory_limit_bytes=2**32, n_step=3)
        for i, b in enumerate(buf.buffers):
            fill(b, 200, seed=i)
    state = buf.rng_state()
    fresh = [buf.sample(64) for _ in range(2)]
    buf.set_rng_state(state)
    first = buf.sample(64, reuse=True)
    first_copy = [t.clone() for t in first]
    second = buf.sample(64, reuse=True)
    # Same draws, same contents: reusing changes where the batch lives, not what it holds.
    for want, got in zip(fresh[0], first_copy):
        assert torch.equal(want, got)
    for want, got in zip(fresh[1], second):
        assert torch.equal(want, got)
    # The reused batch is the same memory each time (the first is overwritten); fresh batches are not.
    assert first.image.data_ptr() == second.image.data_ptr() and torch.equal(first.image, second.image)
    assert fresh[0].image.data_ptr() != fresh[1].image.data_ptr()
    assert not torch.equal(fresh[0].image, fresh[1].image)
