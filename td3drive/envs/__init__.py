"""Environment backends, all yielding the observation/action contract of docs/ARCHITECTURE.md.

:data:`BACKENDS` is the one place a backend is named: the config's allowed ``env.name`` values and
scenarios, its options, :func:`vector_dim`, :func:`make_env` and the CLI all read it. :class:`EnvConfig`
is the config's ``env`` section: the contract's options every backend reads, and the chosen backend's own.
A backend module exports

- ``OPTIONS``: its frozen options dataclass (keys declared with :func:`td3drive.core.options.leaf`: default,
  allowed values, meaning; ``flag=True`` makes a key a command-line flag, ``fixed=True`` one a resumed run
  cannot change). Its keys are written ``env.<key>`` in a config and read ``cfg.env.<key>``; a key that is
  not the chosen backend's is an error. Without ``OPTIONS`` the backend has no options of its own;
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

Adding a backend is one module and one line here, its options and flags included. Reading the registry
imports a backend's module (CarRacing's imports Box2D; highway-env and CARLA are imported when an env is
made), never the runtime above this package.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

from td3drive.core.errors import ConfigError
from td3drive.core.options import build, check_value, describe, keys, leaf, non_negative, one_of, positive

if TYPE_CHECKING:
    import gymnasium as gym

    from td3drive.config import Config

__all__ = ["BACKENDS", "BackendUnavailable", "BlankFrameError", "EnvConfig", "NoOptions", "actor_env", "backend",
           "build_env", "check_backend_options", "flag_options", "fixed_options", "has_rgb_view", "make_env",
           "observation_name", "option_reference", "options_class", "scenarios", "single_process", "vector_dim"]

# backend name -> the module that implements it
BACKENDS: dict[str, str] = {
    "carracing": "td3drive.envs.carracing",  # gymnasium CarRacing-v3
    "lanekeep": "td3drive.envs.lanekeep",  # the tiny built-in visual task of the tests
    "highway": "td3drive.envs.highway",  # highway-env (extra `highway`)
    "racetrack": "td3drive.envs.highway",
    "carla": "td3drive.envs.carla_backend",  # a CARLA server (extra `carla`)
}


@dataclass(frozen=True)
class NoOptions:
    """The options of a backend that has none of its own."""


def options_class(name: str) -> type:
    """Backend ``name``'s options dataclass (``OPTIONS``, or :class:`NoOptions`)."""
    return getattr(backend(name), "OPTIONS", NoOptions)


@dataclass(frozen=True, init=False)
class EnvConfig:
    """The ``env`` section: which backend, the contract's options every backend reads, and ``options``, the
    chosen backend's own (its ``OPTIONS`` dataclass). A backend option reads as it is written in a config:
    ``cfg.env.target_speed`` is ``env.target_speed``; one the chosen backend does not have raises
    AttributeError naming it. ``EnvConfig(name="carracing", carracing_vector="full")`` builds the backend's
    options from keyword values (validated; the others take their defaults)."""

    name: str = leaf("carracing", (lambda v: v in BACKENDS, one_of(*BACKENDS)[1]),  # BACKENDS read at each check
                     "backend: carracing (gymnasium CarRacing-v3), lanekeep (tiny built-in visual task), "
                     "highway / racetrack (highway-env, extra `highway`), carla (a CARLA server, extra `carla`); "
                     "each has its own env.* options below", fixed=True)
    scenario: int = leaf(0, non_negative(), "backend scenario; backends without scenarios accept only 0", fixed=True)
    action_repeat: int = leaf(4, positive(),
                              "simulator frames per agent action (rewards summed); ignored by highway/racetrack "
                              "(their agent step is env.policy_frequency)", fixed=True)
    max_episode_frames: int = leaf(1000, positive(),
                                   "time limit in simulator frames, whatever the action repeat (truncation, "
                                   "bootstrapped): CarRacing's standard episode is 1,000 frames")
    blank_frame_steps: int = leaf(50, non_negative(),
                                  "raise if every frame of the first N steps is one value (0 disables)")
    step_latency_ms: float = leaf(0.0, non_negative(),
                                  "a fixed wait per env step, in ms (a slow-simulator stand-in: 50 = CARLA at 20 Hz)")
    options: Any = field(default=None, metadata={"options": True})

    def __init__(self, options: Any = None, **values: Any) -> None:
        for f in dataclasses.fields(EnvConfig):
            if f.name != "options":
                object.__setattr__(self, f.name, values.pop(f.name, f.default))
        if options is not None and values:
            raise TypeError("EnvConfig: give the backend's options or their values, not both")
        cls = options_class(self.name)
        object.__setattr__(self, "options", options if options is not None else build(cls, values, "env."))

    def __getattr__(self, key: str) -> Any:  # only for names that are not fields: the backend's options
        options = self.__dict__.get("options")
        if key.startswith("__") or options is None:
            raise AttributeError(key)
        try:
            return getattr(options, key)
        except AttributeError:
            raise AttributeError(f"env option {key!r}: backend {self.__dict__.get('name')!r} has no such option") \
                from None

    def with_options(self, **values: Any) -> "EnvConfig":
        """A copy with backend options changed (``with_options(carla_port=2002)``)."""
        return dataclasses.replace(self, options=dataclasses.replace(self.options, **values))

    def to_dict(self) -> dict[str, Any]:
        """The flat ``env`` section as a config writes it: the common keys, then the backend's options."""
        out = {k: getattr(self, k) for k in keys(EnvConfig)}
        return {**out, **dataclasses.asdict(self.options)}


def build_env(data: Mapping[str, Any], prefix: str = "env.") -> EnvConfig:
    """The ``env`` section from its flat mapping: the common keys of :class:`EnvConfig`, and the chosen
    backend's options, each validated by its declaration. A key of another backend, or of none, raises
    ConfigError naming the key, the backend and what it allows."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' = {data!r}: must be a mapping")
    name = check_value(EnvConfig, "name", data.get("name", "carracing"), prefix + "name")
    common, cls = set(keys(EnvConfig)), options_class(name)
    own = {k: v for k, v in data.items() if k not in common}
    for key in sorted(set(own) - set(keys(cls))):
        owners = [b for b in BACKENDS if key in keys(options_class(b))]
        where = f"an option of {', '.join(owners)}" if owners else "not an option of any backend"
        allowed = ", ".join(sorted(common | set(keys(cls))))
        raise ConfigError(f"config key '{prefix}{key}': backend '{name}' has no such option ({where}); allowed "
                          f"keys for {name}: {allowed}")
    values = {k: check_value(EnvConfig, k, v, prefix + k) for k, v in data.items() if k in common}
    return EnvConfig(**values, options=build(cls, own, prefix))


def option_reference() -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, allowed, meaning) of the common env keys, then of each backend's options (the
    meaning names the backends; a module serving several names lists its options once)."""
    rows = describe(EnvConfig, "env.")
    seen: set[type] = set()
    for name in BACKENDS:
        cls = options_class(name)
        if cls in seen:
            continue
        seen.add(cls)
        owners = "/".join(b for b in BACKENDS if options_class(b) is cls)
        rows += [(k, d, a, f"{owners}: {m}") for k, d, a, m in describe(cls, "env.")]
    return rows


def _options_with(marker: str) -> list[tuple[str, dataclasses.Field, list[str]]]:
    """(key, its field, the backends that have it) of every backend option marked ``marker``."""
    out: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name in BACKENDS:
        for f in dataclasses.fields(options_class(name)):
            if f.metadata.get(marker):
                out.setdefault(f.name, (f, []))[1].append(name)
    return [(k, f, owners) for k, (f, owners) in out.items()]


def flag_options() -> list[tuple[str, dataclasses.Field, list[str]]]:
    """The backend options that are also command-line flags (``flag=True``): (key, field, backends)."""
    return _options_with("flag")


def fixed_options() -> list[str]:
    """The ``env.*`` keys a resumed run cannot change: the common ones and the backends' (``fixed=True``)."""
    common = [f"env.{f.name}" for f in dataclasses.fields(EnvConfig) if f.metadata.get("fixed")]
    return common + [f"env.{k}" for k, _, _ in _options_with("fixed")]


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
