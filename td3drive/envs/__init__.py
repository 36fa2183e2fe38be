"""Environment backends, all yielding the observation/action contract of docs/ARCHITECTURE.md.

:data:`BACKENDS` is the one place a backend is named: the config's allowed ``env.name`` values and
scenarios, :func:`vector_dim`, :func:`make_env` and the CLI help all read it. A backend module exports

- ``VECTOR_DIM``: length k of its ``vector`` observation (or ``vector_dim(cfg: EnvConfig) -> int`` where an
  option chooses the vector, as ``env.carracing_vector`` does);
- ``SCENARIOS``: backend name -> the ``env.scenario`` values it allows (a module may serve several names);
- ``make(cfg: EnvConfig, training: bool) -> gym.Env``: the env under the contract;
- optionally: ``SINGLE_PROCESS = True`` (its envs must live in the training process, one at a time: every
  CARLA env drives the one synchronous-mode server); ``RGB_VIEW = True`` (its env has ``rgb_view()``, the
  simulator's colour frame that ``eval --video`` shows); ``FRAMES_PER_S`` (real-time video playback);
  ``USES_ACTION_REPEAT = False`` (it ignores ``env.action_repeat``); ``STAGE_MIN_EPISODE_FRACTION`` (a
  validation stage's shortest healthy mean episode); ``BASELINE_VEHICLE`` and ``baseline_setup(cfg)``
  (a route backend the classical baseline can drive); ``check_config(cfg: Config)`` (checks across keys
  that only this backend knows, raising ``ConfigError``); ``actor_env(cfg: EnvConfig, index: int, actors:
  int)`` (the env options of collection actor ``index`` of ``training.actors``: CARLA gives each its own
  server).

Adding a backend is one module and one line here. This package imports no simulator until a backend
is used, so the config can read the registry.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gymnasium as gym

    from td3drive.config import Config, EnvConfig

__all__ = ["BACKENDS", "BackendUnavailable", "BlankFrameError", "actor_env", "backend", "check_backend_options",
           "has_rgb_view", "make_env", "observation_name", "scenarios", "single_process", "vector_dim"]

# backend name -> the module that implements it
BACKENDS: dict[str, str] = {
    "carracing": "td3drive.envs.carracing",  # gymnasium CarRacing-v3
    "lanekeep": "td3drive.envs.lanekeep",  # the tiny built-in visual task of the tests
    "highway": "td3drive.envs.highway",  # highway-env (extra `highway`)
    "racetrack": "td3drive.envs.highway",
    "carla": "td3drive.envs.carla_backend",  # a CARLA server (extra `carla`)
}


def backend(name: str) -> ModuleType:
    """The module of backend ``name`` (imported on first use)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown env {name!r}; allowed: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def vector_dim(cfg: Config | EnvConfig) -> int:
    """Length k of the ``vector`` observation that the (env section of the) config's backend yields."""
    env_cfg = getattr(cfg, "env", cfg)
    module = backend(env_cfg.name)
    return int(module.vector_dim(env_cfg)) if hasattr(module, "vector_dim") else int(module.VECTOR_DIM)


def observation_name(cfg: Config) -> str:
    """What the policy of ``cfg`` reads, for every printed number: ``camera only``, or ``camera + <vector> (k=N)``
    with the backend's name for its vector (``VECTOR_NAME``, or ``vector_name(cfg)`` where an option chooses it)."""
    if not cfg.agent.use_vector:
        return "camera only"
    module = backend(cfg.env.name)
    name = module.vector_name(cfg.env) if hasattr(module, "vector_name") else getattr(module, "VECTOR_NAME", "ego")
    return f"camera + {name} vector (k={vector_dim(cfg)})"


def scenarios(name: str) -> tuple[int, ...]:
    """The ``env.scenario`` values backend ``name`` allows."""
    return tuple(backend(name).SCENARIOS[name])


def single_process(name: str) -> bool:
    """Its envs must live in the training process, one at a time (evaluation runs in-process, one env)."""
    return bool(getattr(backend(name), "SINGLE_PROCESS", False))


def check_backend_options(cfg: Config) -> None:
    """The backend's own checks across config keys (``check_config``), if it has any; raises ConfigError."""
    hook = getattr(backend(cfg.env.name), "check_config", None)
    if hook is not None:
        hook(cfg)


def actor_env(cfg: EnvConfig, index: int, actors: int) -> EnvConfig:
    """The env options collection actor ``index`` (of ``actors``) drives: ``cfg`` itself unless the backend
    says otherwise (``actor_env``; CARLA: the actor's own server from ``env.carla_servers``)."""
    hook = getattr(backend(cfg.name), "actor_env", None)
    return cfg if hook is None else hook(cfg, index, actors)


def has_rgb_view(name: str) -> bool:
    """Its env has ``rgb_view()``. Asking another backend's vector env for it would end its worker
    processes, so callers check this first."""
    return bool(getattr(backend(name), "RGB_VIEW", False))


def lane_invasion_label(name: str) -> str:
    """What the backend's ``lane_invasion`` is, in the plural, for printed results ("lane invasions" unless the
    backend names it: CarRacing has no lanes, its invasion is leaving the road)."""
    return str(getattr(backend(name), "LANE_INVASION_LABEL", "lane invasions"))


def make_env(cfg: Config | EnvConfig, training: bool = False) -> gym.Env:
    """Build the backend named by the (env section of the) config under the contract.

    Seed it through ``reset(seed=...)``; the trainer gives every episode its own seed. ``training``
    adds the training-only episode rules (CarRacing's ``env.no_progress_frames``); evaluation
    envs keep the stock rules.
    """
    env_cfg = getattr(cfg, "env", cfg)
    env = backend(env_cfg.name).make(env_cfg, training)
    if env_cfg.step_latency_ms > 0:
        from td3drive.envs.latency import StepLatency

        env = StepLatency(env, env_cfg.step_latency_ms / 1000.0)
    return env


def __getattr__(name: str) -> Any:
    # The contract's errors, without importing gymnasium for a caller that only reads the registry.
    if name in ("BackendUnavailable", "BlankFrameError"):
        from td3drive.envs import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'td3drive.envs' has no attribute {name!r}")
