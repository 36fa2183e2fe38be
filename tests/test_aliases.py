import numpy as np

from td3drive.analysis.aliases import canonical
from td3drive.analysis.events import Series


def s(v):
    return Series(np.arange(len(v)), np.zeros(len(v)), np.asarray(v, float))


def test_aliases_rename_without_duplicating_and_never_shadow_ours():
    series = {"losses/qf1_values": s([1, 2]), "rollout/ep_rew_mean": s([3]), "train/episode_reward": s([9])}
    out, used = canonical(series)
    assert used == {"train/q1_value": "losses/qf1_values"}
    assert "losses/qf1_values" not in out and out["train/q1_value"].values.tolist() == [1, 2]
    assert out["train/episode_reward"].values.tolist() == [9]  # our own tag wins over SB3's
