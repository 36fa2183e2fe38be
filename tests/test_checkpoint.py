import random

import numpy as np
import pytest
import torch

from td3drive import checkpoint
from td3drive.checkpoint import CheckpointError


class Payload:
    """A pickled object: a weights_only load must refuse to construct it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_save_step_is_atomic_points_latest_and_keeps_one_replay(tmp_path):
    for step in (10, 20):
        checkpoint.save_step(tmp_path, step, {"agent": {}, "config": {}, "step": step}, {"frames": torch.zeros(2)})
    d = tmp_path / "checkpoints"
    assert sorted(p.name for p in d.iterdir()) == ["latest.pt", "replay_step_20.pt", "replay_step_20.pt.sha256",
                                                   "step_10.pt", "step_10.pt.sha256", "step_20.pt", "step_20.pt.sha256"]
    assert checkpoint.latest_path(tmp_path).resolve().name == "step_20.pt"
    assert checkpoint.load(checkpoint.latest_path(tmp_path))["step"] == 20
    assert checkpoint.load_replay(d / "replay_step_20.pt")["frames"].shape == (2,)


def test_save_replay_after_the_checkpoint_pairs_by_step_and_a_later_plain_save_drops_it(tmp_path):
    checkpoint.save_step(tmp_path, 30, {"step": 30})
    checkpoint.save_replay(tmp_path, 30, {"frames": torch.zeros(3)})
    d = tmp_path / "checkpoints"
    assert checkpoint.load_replay(d / "replay_step_30.pt")["frames"].shape == (3,)
    # A run restarted in the same directory that checkpoints step 30 without replay must not pick up the
    # leftover of the earlier run's step 30.
    checkpoint.save_step(tmp_path, 30, {"step": 30})
    assert not (d / "replay_step_30.pt").exists() and not (d / "replay_step_30.pt.sha256").exists()


def test_load_refuses_code_garbage_and_foreign_files(tmp_path):
    torch.save({"agent": Payload(), "config": {}}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        checkpoint.load(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        checkpoint.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a td3drive checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoints/latest.pt"):
        checkpoint.latest_path(tmp_path)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    checkpoint.atomic_save({"rng": checkpoint.capture_rng(), "agent": {}, "config": {}}, tmp_path / "r.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.restore_rng(checkpoint.load(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_damaged_checkpoint_is_refused_and_resume_falls_back_to_the_newest_intact(tmp_path):
    for step in (10, 20, 30):
        checkpoint.save_step(tmp_path, step, {"agent": {"w": torch.arange(5000.0)}, "config": {}, "step": step})
    d = tmp_path / "checkpoints"
    data = bytearray((d / "step_30.pt").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # damage in the middle: still a loadable zip
    (d / "step_30.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load(d / "latest.pt")
    path, state, problems = checkpoint.load_newest_intact(tmp_path)
    assert (path.name, state["step"]) == ("step_20.pt", 20)
    assert len(problems) == 1 and problems[0][0].name == "step_30.pt" and "damaged" in problems[0][1]
    (d / "step_20.pt").write_bytes(b"")
    (d / "step_10.pt.sha256").write_text("0" * 64)
    with pytest.raises(CheckpointError, match="step_30.pt.*step_20.pt.*step_10.pt"):
        checkpoint.load_newest_intact(tmp_path)


def test_a_checkpoint_without_checksum_still_loads(tmp_path):
    torch.save({"agent": {}, "config": {}, "step": 1}, tmp_path / "old.pt")  # written before checksums existed
    assert checkpoint.load(tmp_path / "old.pt")["step"] == 1


def test_prune_keeps_the_newest_k_and_everything_not_named_step_n(tmp_path):
    d = tmp_path / "checkpoints"
    for step in (5, 10, 100, 20, 50):
        checkpoint.save_step(tmp_path, step, {"agent": {}, "config": {}})
    checkpoint.keep_last_good(tmp_path, d / "step_5.pt")
    (d / "mine_step_10.pt").write_bytes((d / "step_10.pt").read_bytes())
    removed = checkpoint.prune(d, keep=2)
    assert sorted(p.name for p in removed) == ["step_10.pt", "step_20.pt", "step_5.pt"]
    assert sorted(p.name for p in d.glob("*.pt")) == ["last_good.pt", "latest.pt", "mine_step_10.pt", "step_100.pt",
                                                      "step_50.pt"]
    assert not (d / "step_5.pt.sha256").exists()
    assert checkpoint.load(d / "last_good.pt") is not None  # its own link and checksum survive
    assert checkpoint.latest_path(tmp_path).resolve().name == "step_50.pt"


def test_a_checkpoint_of_a_newer_format_is_refused_and_format_1_counters_get_their_frames(tmp_path):
    from td3drive.checkpoint import FORMAT, upgrade

    p = tmp_path / "new.pt"
    torch.save({"format": FORMAT + 1, "agent": {}, "config": {}}, p)
    with pytest.raises(checkpoint.CheckpointError, match=f"format {FORMAT + 1}; this td3drive reads formats 1 to"):
        checkpoint.load(p)
    old = upgrade({"agent": {}, "config": {"env": {"action_repeat": 2}}, "counters": {"step": 10}}, p)
    assert old["counters"]["frames"] == 20 and old["format"] == FORMAT
    kept = upgrade({"format": 1, "agent": {}, "config": {}, "counters": {"step": 10, "frames": 33}}, p)
    assert kept["counters"]["frames"] == 33
