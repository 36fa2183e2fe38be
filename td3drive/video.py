"""GIFs of evaluation episodes: the simulator's colour view (where the backend has one) beside the
agent's 84x84 grey input, at the simulator's real-time speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def video_frame(agent_input: np.ndarray, rgb: np.ndarray | None, height: int = 192) -> np.ndarray:
    """One GIF frame ``uint8[height, W, 3]``: the simulator's RGB view (when there is one) beside the agent's
    84x84 grey input, each scaled to ``height`` by pixel repetition."""

    def scaled(img: np.ndarray) -> np.ndarray:
        k = max(1, height // img.shape[0])
        img = np.repeat(np.repeat(img, k, axis=0), k, axis=1)
        return img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)

    panels = ([scaled(rgb)] if rgb is not None else []) + [scaled(agent_input)]
    h = max(p.shape[0] for p in panels)
    panels = [np.pad(p, ((0, h - p.shape[0]), (0, 4), (0, 0))) for p in panels]  # bottom-align, 4 px gap
    return np.concatenate(panels, axis=1)[:, :-4]


def step_ms(env: str, action_repeat: int) -> float:
    """Display time of one agent step in ms: real time for a backend that declares its ``FRAMES_PER_S``
    (CarRacing: 50), else 25 steps per second."""
    from td3drive.envs import backend

    fps = getattr(backend(env), "FRAMES_PER_S", None)
    return 1000 * action_repeat / fps if fps else 40.0


def write_gif(path: str | Path, frames: list[np.ndarray], per_step_ms: float) -> None:
    import imageio.v2 as imageio

    # Pillow's GIF writer takes the per-frame duration in milliseconds (1 / 25 became 0 ms) and merges
    # identical consecutive frames, adding up their durations: the timing stays true.
    imageio.mimsave(path, frames, duration=per_step_ms, loop=0)
