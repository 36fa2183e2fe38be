"""Environment backends, all yielding the observation/action contract of DESIGN.md."""

from __future__ import annotations

import gymnasium as gym

from td3drive.config import Config, EnvConfig
from td3drive.envs.contract import BackendUnavailable, BlankFrameError

__all__ = ["BackendUnavailable", "BlankFrameError", "SINGLE_PROCESS", "make_env", "vector_dim"]

# Backends whose envs must live in the training process, one at a time per worker: every CARLA env
# drives the one synchronous-mode server, so evaluation runs in-process with one env.
SINGLE_PROCESS = frozenset({"carla"})
# Backends whose env has ``rgb_view()``: the simulator's colour frame (``eval --video`` shows it). Asking
# another backend's vector env for it would end its worker processes, so callers check this set.
RGB_VIEW = frozenset({"carracing", "highway", "racetrack"})


def vector_dim(name: str) -> int:
    """Length k of the ``vector`` observation of backend ``name``."""
    if name == "carracing":
        from td3drive.envs.carracing import VECTOR_DIM
    elif name == "lanekeep":
        from td3drive.envs.lanekeep import VECTOR_DIM
    elif name in ("highway", "racetrack"):
        from td3drive.envs.highway import VECTOR_DIM
    elif name == "carla":
        from td3drive.envs.carla_backend import VECTOR_DIM
    else:
        raise ValueError(f"unknown env {name!r}")
    return VECTOR_DIM


def make_env(cfg: Config | EnvConfig, training: bool = False) -> gym.Env:
    """Build the backend named by the (env section of the) config under the contract.

    Seed it through ``reset(seed=...)``; the trainer gives every episode its own seed. ``training``
    adds the training-only episode rules (CarRacing's ``env.no_progress_frames``); evaluation
    envs keep the stock rules.
    """
    if isinstance(cfg, Config):
        cfg = cfg.env
    kwargs = dict(
        action_repeat=cfg.action_repeat,
        max_episode_frames=cfg.max_episode_frames,
        blank_frame_steps=cfg.blank_frame_steps,
    )
    if cfg.name == "carracing":
        from td3drive.envs.carracing import make_carracing

        return make_carracing(**kwargs, fast_render=cfg.fast_render,
                              no_progress_frames=cfg.no_progress_frames if training else 0)
    if cfg.name == "lanekeep":
        from td3drive.envs.lanekeep import make_lanekeep

        return make_lanekeep(**kwargs)
    if cfg.name in ("highway", "racetrack"):
        from td3drive.envs.highway import make_highway

        weights = {k: getattr(cfg, k) for k in ("target_speed", "reward_progress", "reward_centering",
                                                "reward_speed", "collision_penalty", "offroad_penalty")}
        return make_highway(cfg.name, cfg.scenario, cfg.max_episode_frames, cfg.blank_frame_steps, weights,
                            policy_frequency=cfg.policy_frequency, route_length_m=cfg.route_length_m,
                            steer_deg=cfg.max_steer_deg)
    if cfg.name == "carla":
        from td3drive.envs.carla_backend import make_carla

        return make_carla(cfg, **kwargs)
    raise ValueError(f"unknown env {cfg.name!r}")
