"""Synthetic runs written as real event files (torch's SummaryWriter), shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from td3drive.core import tags


def write_run(path: Path, scalars: dict[str, tuple[np.ndarray, np.ndarray]], config: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    w = SummaryWriter(str(path))
    for tag, (steps, values) in scalars.items():
        for s, v in zip(steps, values):
            w.add_scalar(tag, float(v), int(s))
    w.close()
    if config is not None:
        (path / "config.yaml").write_text(config)
    return path


def reference_failure(path: Path) -> Path:
    """The reference system's 5K run: 25 logged updates from step 2600 to 5000, actor loss -250 -> -2.76e9,
    Q1/Q2 39 -> 72, gradient norms actor_cnn 1.9, critic_cnn 23, actor_mlp exactly 0, critic_mlp 2.5."""
    rng = np.random.default_rng(0)
    steps = np.linspace(2600, 5000, 25).astype(int)
    actor = -250.0 * (2.76e9 / 250.0) ** (np.arange(25) / 24)
    q = np.linspace(39, 72, 25)
    ep_steps = np.arange(1000, 5001, 1000)
    return write_run(path, {
        tags.ACTOR_LOSS: (steps, actor),
        tags.CRITIC_LOSS: (steps, 50 + 5 * rng.random(25)),
        tags.Q1: (steps, q + rng.normal(0, 0.5, 25)),
        tags.Q2: (steps, q + rng.normal(0, 0.5, 25)),
        tags.grad_norm("actor_cnn"): (steps, 1.9 + 0.1 * rng.random(25)),
        tags.grad_norm("critic_cnn"): (steps, 23 + rng.random(25)),
        tags.grad_norm("actor_mlp"): (steps, np.zeros(25)),
        tags.grad_norm("critic_mlp"): (steps, 2.5 + 0.1 * rng.random(25)),
        tags.EPISODE_REWARD: (ep_steps, np.array([-60.0, -55, -58, -62, -57])),
        tags.EPISODE_LENGTH: (ep_steps, np.full(5, 1000.0)),
    })


def healthy(path: Path, n: int = 200, config: str | None = None) -> Path:
    """A run that learns: Q rises smoothly to ~50 with the actor loss, losses settle, norms small."""
    rng = np.random.default_rng(1)
    steps = np.arange(1, n + 1) * 100 + 1000
    q = 50 * (1 - np.exp(-np.arange(n) / (n / 3))) + rng.normal(0, 0.3, n)
    ep_steps = np.arange(1000, steps[-1] + 1, 1000)
    k = len(ep_steps)
    scalars = {
        tags.ACTOR_LOSS: (steps, -q - rng.normal(0, 0.2, n)),
        tags.Q_PI: (steps, q + rng.normal(0, 0.2, n)),
        tags.CRITIC_LOSS: (steps, 2.0 * np.exp(-np.arange(n) / n) + 0.1 * rng.random(n)),
        tags.TD_ERROR: (steps, 1.0 * np.exp(-np.arange(n) / n) + 0.05 * rng.random(n)),
        tags.Q1: (steps, q),
        tags.Q2: (steps, q + rng.normal(0, 0.3, n)),
        tags.EPISODE_REWARD: (ep_steps, np.linspace(-50, 400, k) + rng.normal(0, 10, k)),
        tags.EPISODE_LENGTH: (ep_steps, np.full(k, 1000.0)),
        tags.EVAL_MEAN_REWARD: (ep_steps[::5], np.linspace(-40, 420, len(ep_steps[::5]))),
    }
    for g in ("actor_mlp", "critic_cnn", "critic_mlp"):
        pre = np.abs(rng.normal(3, 1, n)) + 0.1
        scalars[tags.grad_norm(g)] = (steps, pre)
        scalars[tags.grad_norm_clipped(g)] = (steps, np.minimum(pre, 10.0))
    return write_run(path, scalars, config)
