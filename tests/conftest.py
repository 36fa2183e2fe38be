import os

import pytest
import torch

# Deterministic, and fair to a 2-core CI machine.
torch.set_num_threads(2)
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # CarRacing draws offscreen with pygame


@pytest.fixture
def tiny_sets():
    """--set items for a short LaneKeep run."""
    return [
        "env.name=lanekeep",
        "env.max_episode_frames=50",
        "env.action_repeat=1",
        "training.learning_starts=64",
        "training.train_freq=4",
        "training.batch_size=16",
        "training.eval_freq=0",
        "training.eval_workers=1",
        "training.checkpoint_freq=0",
        "logging.log_freq=20",
        "logging.progress=false",
        "agent.features_dim=64",
        "agent.hidden_dim=32",
    ]
