"""A checkpoint for inference: load its agent and config (``load_agent``), evaluate it as ``td3drive eval``
does (``evaluate_checkpoint``: the evaluation seeds, optionally a video of episode 0 and the input ablations)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from td3drive.ablation import with_ablations
from td3drive.evaluate import EvalResult, eval_workers, evaluate, make_eval_envs

if TYPE_CHECKING:
    from td3drive.agent.td3 import TD3
    from td3drive.config import Config


@dataclass
class CheckpointEval:
    """What ``td3drive eval`` reports: the result, and the checkpoint's step and config."""

    result: EvalResult
    step: int  # agent steps the checkpoint was trained for
    cfg: Config  # the checkpoint's config, with the evaluation's episode count
    frames: list[np.ndarray]  # video frames of episode 0 (empty unless asked for)
    has_view: bool  # the frames show the simulator's colour view


def load_agent(path: str | Path, device: str = "cpu") -> tuple[TD3, Config, int]:
    """(agent, config, step) of a checkpoint file or of a run directory's ``latest.pt``.

    Raises ``CheckpointError`` (one line) for a missing, damaged or foreign file, also for one with the
    right keys and contents that are not a td3drive agent.
    """
    from td3drive.agent.td3 import TD3
    from td3drive.checkpoint import CheckpointError, latest_path, load
    from td3drive.config import ConfigError, from_dict
    from td3drive.core.device import resolve_device
    from td3drive.envs import vector_dim

    path = Path(path)
    try:
        device = resolve_device(device)
        state = load(latest_path(path) if path.is_dir() else path, map_location=device)
        cfg = from_dict(state["config"])
        agent = TD3(vector_dim(cfg.env), cfg.agent, device)
        agent.load_state_dict(state["agent"])
        return agent, cfg, state["counters"]["step"]
    except CheckpointError:
        raise
    except (ConfigError, ValueError) as e:  # the config it holds is not valid here (or names no backend)
        raise CheckpointError(f"checkpoint '{path}': {e}") from None
    except (KeyError, TypeError, RuntimeError) as e:  # right keys, wrong contents
        raise CheckpointError(f"checkpoint '{path}': its contents are not a td3drive agent "
                              f"({type(e).__name__})") from None


def evaluate_checkpoint(path: str | Path, episodes: int, workers: int = 0, device: str = "cpu",
                        video: bool = False, ablate: bool = False) -> CheckpointEval:
    """Evaluate a checkpoint's deterministic policy for ``episodes`` episodes on the evaluation seeds
    (``workers`` env processes, 0: one per core); with ``video``, keep the frames of episode 0; with
    ``ablate``, also run :mod:`td3drive.ablation`'s conditions on the same seeds (``result.ablated``)."""
    from td3drive.envs import has_rgb_view, make_env
    from td3drive.video import video_frame

    agent, cfg, step = load_agent(path, device)
    cfg = cfg.replace(**{"training.num_eval_episodes": episodes, "training.eval_workers": workers,
                         "training.eval_async": False})
    envs = make_eval_envs(partial(make_env, cfg.env), eval_workers(cfg.training, cfg.env.name))
    has_view = has_rgb_view(cfg.env.name)  # asking another backend's vector env would end its workers
    frames: list[np.ndarray] = []

    def record(agent_input: np.ndarray) -> None:  # episode 0 runs in env 0
        frames.append(video_frame(agent_input, envs.call("rgb_view")[0] if has_view else None))

    try:
        result = evaluate(envs, agent.act, cfg.training.seed, episodes, record if video else None)
        if ablate:
            result = with_ablations(envs, agent.act, cfg, result)
    finally:
        envs.close()
    return CheckpointEval(result, step, cfg, frames, has_view)
