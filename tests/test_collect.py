from pathlib import Path

import numpy as np
import torch

from td3drive.checkpoint import upgrade
from td3drive.collect import Collector, Counters, EpisodeEnd, add_reward_terms, obs_checksum
from td3drive.config import build_config


def collector(tiny_sets, *extra) -> Collector:
    cfg = build_config(sets=tiny_sets + ["env.max_episode_frames=10", *extra])
    c = Collector(cfg, Counters(), capacity=100, vector_dim=2)
    c.reset()
    return c


def test_steps_store_count_and_end_episodes_at_the_time_limit(tiny_sets):
    col = collector(tiny_sets)
    ends: list[EpisodeEnd] = []
    steer_to_centre = lambda: np.array([3.0 * float(col.obs["vector"][0]), 0.0], np.float32)
    for _ in range(25):
        ends += col.step(np.clip(steer_to_centre(), -1, 1))
    c = col.c
    # Two 10-step episodes ended (the car kept the lane), the third is 5 steps in.
    assert [e.length for e in ends] == [10, 10] and [e.step for e in ends] == [10, 20]
    assert c.step == 25 and c.frames == 25 and c.episode == 2 and c.episode_length == 5
    assert len(c.episode_actions) == 5 and len(col.buffer) == 25
    # LaneKeep pays 1 - |offset| per step: a kept lane returns between 0 and 10 per episode.
    assert all(0 < e.ret <= 10 for e in ends)
    assert col.buffer.truncated[9] and not col.buffer.terminated[9]  # the time limit is a truncation


def test_restore_replays_the_episode_to_the_saved_observation(tiny_sets):
    col = collector(tiny_sets)
    rng = np.random.default_rng(0)
    for _ in range(4):
        col.step(rng.uniform(-0.3, 0.3, 2).astype(np.float32))
    saved, actions, counters = obs_checksum(col.obs), np.stack(col.c.episode_actions), col.c.state_dict()

    again = collector(tiny_sets)
    again.c.load_state_dict(counters)
    assert again.restore(actions, saved) and obs_checksum(again.obs) == saved
    assert again.c.step == 4 and again.c.episode == 0 and len(again.c.episode_actions) == 4

    other = collector(tiny_sets)
    other.c.load_state_dict(counters)
    assert not other.restore(actions, saved ^ 1)  # not reached: a fresh next episode instead
    assert other.c.episode == 1 and other.c.episode_length == 0 and other.c.episode_actions == []


def test_counters_are_plain_numbers_and_actions_a_float_tensor():
    c = Counters(step=np.int64(3), frames=np.int64(12), episode_return=np.float32(1.5))
    state = c.state_dict()
    assert type(state["step"]) is int and type(state["frames"]) is int and type(state["episode_return"]) is float
    c.episode_actions = [np.array([0.5, -0.5], np.float32)] * 2
    t = c.episode_actions_tensor()
    assert t.dtype == torch.float32 and t.shape == (2, 2)
    assert Counters().episode_actions_tensor().shape == (0, 2)
    old = {k: v for k, v in state.items() if k != "frames"}  # a checkpoint from before the frame count
    c2 = Counters()
    c2.load_state_dict(upgrade({"format": 1, "agent": {}, "config": {"env": {"action_repeat": 4}},
                                "counters": old}, Path("old.pt"))["counters"])
    assert c2.frames == 12


def test_reward_terms_add_up_and_skip_gymnasium_masks():
    totals: dict[str, float] = {}
    add_reward_terms(totals, {"reward_terms": {"progress": 1.0}})
    add_reward_terms(totals, {"reward_terms": {"progress": np.array([0.5, 2.0]), "_progress": np.array([1, 1])}}, env=1)
    assert totals == {"progress": 3.0}


def test_vector_send_starts_a_step_that_receive_stores(tiny_sets):
    from td3drive.collect import VectorCollector

    cfg = build_config(sets=tiny_sets + ["env.max_episode_frames=10", "training.num_envs=2"])
    col = VectorCollector(cfg, Counters(), capacity=100, vector_dim=2)
    try:
        col.reset()
        ends: list[EpisodeEnd] = []
        for _ in range(12):
            col.send(np.zeros((2, 2), np.float32))
            # In flight: the agent steps are counted, nothing is stored or framed until receive().
            assert col.c.step == col.c.frames + 2 and len(col.buffer) == col.c.frames
            ends += col.receive()
            assert len(col.buffer) == col.c.step == col.c.frames
        # Both envs hit the 10-step limit at the 10th vector step (agent steps 19 and 20 of the run).
        assert [e.length for e in ends] == [10, 10] and [e.step for e in ends] == [19, 20]
        assert col.c.step == 24 and col.c.episode == 2
    finally:
        col.close()
