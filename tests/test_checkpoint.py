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
    assert sorted(p.name for p in d.iterdir()) == ["latest.pt", "replay_step_20.pt", "step_10.pt", "step_20.pt"]
    assert checkpoint.latest_path(tmp_path).resolve().name == "step_20.pt"
    assert checkpoint.load(checkpoint.latest_path(tmp_path))["step"] == 20
    assert checkpoint.load_replay(d / "replay_step_20.pt")["frames"].shape == (2,)


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
