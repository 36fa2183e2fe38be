"""The configuration: one frozen dataclass tree, loaded from YAML and CLI overrides, validated once.

Every leaf declares its allowed values next to its default, so the check and the message that
names what is allowed come from the same place. A bad value raises :class:`ConfigError` with a
one-line message naming the key, the value and what is allowed; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from td3drive.core.errors import ConfigError
from td3drive.core.files import atomic_write
from td3drive.envs import BACKENDS


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` as a string; configs are full of such numbers, so read them as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that also reads ``1e-4`` and ``1e9`` as floats."""
    return yaml.load(text, Loader=_Loader)


# A constraint is (predicate, human-readable description of what is allowed).
Check = tuple[Callable[[Any], bool], str]


def _positive() -> Check:
    return (lambda v: v > 0, "a number > 0")


def _non_negative() -> Check:
    return (lambda v: v >= 0, "a number >= 0")


def _at_least(low: int) -> Check:
    return (lambda v: v >= low, f"an integer >= {low}")


def _unit_open_closed() -> Check:
    return (lambda v: 0 < v <= 1, "a number in (0, 1]")


def _unit_closed_open() -> Check:
    return (lambda v: 0 <= v < 1, "a number in [0, 1)")


def _one_of(*choices: Any) -> Check:
    return (lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def _opt(check: Check) -> Check:
    pred, text = check
    return (lambda v: v is None or pred(v), f"{text}, or null")


def _leaf(default: Any, check: Check | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"check": check, "doc": doc})


@dataclass(frozen=True)
class EnvConfig:
    name: str = _leaf("carracing", _one_of(*BACKENDS),
                      "backend: carracing (gymnasium CarRacing-v3), lanekeep (tiny built-in visual task), "
                      "highway / racetrack (highway-env, extra `highway`), carla (a CARLA server, extra `carla`)")
    scenario: int = _leaf(0, _non_negative(), "backend scenario; backends without scenarios accept only 0")
    action_repeat: int = _leaf(4, _positive(),
                               "simulator frames per agent action (rewards summed); ignored by highway/racetrack "
                               "(their agent step is env.policy_frequency)")
    max_episode_frames: int = _leaf(1000, _positive(),
                                    "time limit in simulator frames, whatever the action repeat (truncation, "
                                    "bootstrapped): CarRacing's standard episode is 1,000 frames")
    no_progress_frames: int = _leaf(200, _non_negative(),
                                    "carracing, training episodes only: truncate after N frames without a new "
                                    "track tile (0 disables; evaluation always keeps the stock rules)")
    carracing_offroad_penalty: float = _leaf(
        0.0, _non_negative(), "carracing, training episodes only: reward subtracted for each simulator frame with no "
        "wheel on the road (0 disables; evaluation keeps the stock reward)"
    )
    carracing_vector: str = _leaf(
        "proprio", _one_of("proprio", "full"), "carracing: the ego vector: proprio (speed, yaw rate, steering, wheel "
        "spin: the dashboard's sensors, k=7) or full (adds lateral offset, heading error and 5 waypoints: "
        "privileged road geometry, k=14); camera frames only is agent.use_vector=false"
    )
    fast_render: bool = _leaf(
        True, None, "carracing: vectorised road drawing (pixel-identical frames, ~2x faster steps)"
    )
    blank_frame_steps: int = _leaf(50, _non_negative(),
                                   "raise if every frame of the first N steps is one value (0 disables)")
    policy_frequency: int = _leaf(5, _positive(), "highway/racetrack: agent actions per simulated second")
    target_speed: float = _leaf(20.0, _positive(), "highway/racetrack: speed the reward aims for (m/s)")
    route_length_m: float = _leaf(
        1000.0, _positive(), "highway/racetrack: metres along the lanes that complete the route"
    )
    max_steer_deg: float | None = _leaf(
        None, _opt(_positive()), "highway/racetrack: steering angle at |steer| = 1 (null: 5 highway, 15 racetrack)"
    )
    reward_progress: float = _leaf(1.0, _non_negative(), "highway/racetrack: weight of progress along the lane")
    reward_centering: float = _leaf(0.3, _non_negative(), "highway/racetrack: weight of the lane-centring penalty")
    reward_speed: float = _leaf(0.3, _non_negative(), "highway/racetrack: weight of the speed-near-target term")
    collision_penalty: float = _leaf(10.0, _non_negative(), "highway/racetrack: penalty on a crash (terminates)")
    offroad_penalty: float = _leaf(
        10.0, _non_negative(), "highway/racetrack: penalty for leaving the road (terminates)"
    )
    step_latency_ms: float = _leaf(0.0, _non_negative(),
                                   "a fixed wait per env step, in ms (a slow-simulator stand-in: 50 = CARLA at 20 Hz)")
    carla_host: str = _leaf("localhost", None, "carla: host of the CARLA server")
    carla_port: int = _leaf(2000, _positive(), "carla: RPC port of the CARLA server")
    carla_servers: str | None = _leaf(None, None,
                                      "carla with training.actors: the training servers, comma-separated host:port, "
                                      "one collection actor each (evaluation keeps env.carla_host:carla_port)")
    carla_timeout: float = _leaf(10.0, _positive(), "carla: seconds to wait for the server")
    carla_town: str = _leaf("Town01", None, "carla: map")
    carla_spawn_point: int = _leaf(-1, (lambda v: v >= -1, "an integer >= -1"),
                                   "carla: ego spawn point index (-1: drawn from each episode's seed)")
    carla_target_kmh: float = _leaf(30.0, _positive(), "carla: speed the efficiency term aims for (km/h)")
    reward_efficiency: float = _leaf(1.0, _non_negative(), "carla: weight of the efficiency (speed) term")
    reward_comfort: float = _leaf(0.1, _non_negative(), "carla: weight of the steering-change penalty")
    lane_invasion_penalty: float = _leaf(1.0, _non_negative(), "carla: penalty per lane invasion")


@dataclass(frozen=True)
class AgentConfig:
    encoder: str = _leaf("critic", _one_of("critic", "separate"),
                         "critic: one CNN trained by the critic loss only; separate: actor and critic CNNs")
    features_dim: int = _leaf(50, _positive(), "NatureCNN output width (the image features the heads read)")
    trunk: str = _leaf("layernorm", _one_of("relu", "layernorm"),
                       "after the NatureCNN's linear layer: relu (Nature DQN) or layernorm (LayerNorm + tanh, DrQ-v2)")
    use_vector: bool = _leaf(True, None, "feed the ego-state vector to the actor and critics (false: camera frames "
                                         "only, as pixel agents in the literature and SB3's CnnPolicy see)")
    augment_pad: int = _leaf(4, _non_negative(),
                             "DrQ random shift in the update: up to N pixels, edges replicated (0 disables)")
    n_step: int = _leaf(3, _positive(), "rewards summed into each critic target (1 = one-step TD3; DrQ-v2 uses 3)")
    hidden_dim: int = _leaf(256, _positive(), "width of the actor and critic head MLPs")
    actor_lr: float = _leaf(3e-4, _positive(), "Adam learning rate of the actor")
    critic_lr: float = _leaf(3e-4, _positive(), "Adam learning rate of the critics")
    gamma: float = _leaf(0.99, _unit_closed_open(), "discount")
    tau: float = _leaf(0.005, _unit_open_closed(), "polyak coefficient of the target networks")
    policy_freq: int = _leaf(2, _positive(), "actor and target update every N critic updates")
    policy_noise: float = _leaf(0.2, _non_negative(), "std of target policy smoothing noise")
    noise_clip: float = _leaf(0.5, _non_negative(), "clip of target policy smoothing noise")
    # Decaying exploration by measurement (docs/BENCHMARKS.md section 10): on CarRacing the constant 0.1 left
    # seed 1 on a 20-tile plateau for 200K frames; 1.0 -> 0.1 drove at 30K frames on the same seed.
    exploration_noise: float = _leaf(
        1.0, _non_negative(), "std of Gaussian exploration noise (at the start of the decay)"
    )
    exploration_noise_final: float | None = _leaf(0.1, _opt(_non_negative()),
                                                  "std reached after exploration_decay_steps, linearly "
                                                  "(null: constant exploration_noise, the TD3 paper's 0.1)")
    exploration_decay_steps: int = _leaf(20_000, _positive(), "agent steps over which the exploration std decays")
    max_grad_norm: float | None = _leaf(10.0, _opt(_positive()),
                                        "per-group gradient clipping threshold (null disables)")
    precision: str = _leaf("fp32", _one_of("fp32", "bf16"),
                           "bf16: encoders under bfloat16 autocast (weights, heads, losses stay fp32)")


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = _leaf(0, _non_negative(), "seed of python, numpy, torch and the envs")
    device: str = _leaf("auto", _one_of("auto", "cpu", "cuda"), "torch device")
    max_timesteps: int = _leaf(1_000_000, _positive(), "env steps to train for")
    learning_starts: int = _leaf(1000, _non_negative(), "uniform random actions before this many steps")
    train_freq: int = _leaf(1, _positive(), "run gradient_steps updates every N env steps")
    gradient_steps: int = _leaf(1, _positive(),
                                "updates per train_freq env steps (updates per env step = gradient_steps / train_freq)")
    num_envs: int = _leaf(1, _positive(), "parallel collection envs (processes); actions for all in one forward pass")
    batch_size: int = _leaf(128, _positive(), "transitions per update")
    buffer_size: int = _leaf(1_000_000, _positive(), "replay capacity in transitions (capped to max_timesteps)")
    eval_freq: int = _leaf(10_000, _non_negative(), "evaluate every N env steps (0 disables)")
    num_eval_episodes: int = _leaf(10, _positive(), "deterministic episodes per evaluation")
    eval_at_start: bool = _leaf(False, None, "also evaluate the untrained policy at step 0 (with eval_freq > 0): the "
                                             "level the report's learning progress compares with (off by default: a "
                                             "sweep would count it as a guard-stopped trial's last evaluation)")
    ablation_freq: int = _leaf(50_000, _non_negative(),
                               "also run the input ablations (camera frozen, ego vector neutralised; "
                               "td3drive/ablation.py) at the first evaluation after every N env steps (0 disables)")
    eval_workers: int = _leaf(0, _non_negative(),
                              "evaluation env processes (0: one per CPU core, at most num_eval_episodes)")
    eval_async: bool = _leaf(True, None, "evaluate policy snapshots in a separate process while training goes on")
    actors: int = _leaf(0, _non_negative(),
                        "collection actors on Ray (td3drive/collect_ray.py), each with its own env; 0: collect in "
                        "this process (num_envs)")
    ray_address: str | None = _leaf(None, None,
                                    "with actors: address of a running Ray cluster (null: start a local Ray)")
    actor_chunk_steps: int = _leaf(25, _positive(), "with actors: env steps an actor collects per chunk it ships")
    actor_weights_every: int = _leaf(100, _positive(),
                                     "with actors: broadcast the newest policy weights every N updates")
    checkpoint_freq: int = _leaf(50_000, _non_negative(), "checkpoint every N env steps (0: only at the end)")
    keep_checkpoints: int = _leaf(5, _at_least(2), "newest step_<N>.pt files kept (last_good.pt and files you rename "
                                                   "or copy are never removed)")
    save_replay: bool = _leaf(False, None, "also save replay contents with each checkpoint")
    replay_on_stop: bool = _leaf(True, None, "when a signal (Ctrl-C, SIGTERM) ends the run, save the replay contents "
                                             "beside the final checkpoint, so --resume continues the same run")


@dataclass(frozen=True)
class LoggingConfig:
    log_freq: int = _leaf(100, _positive(), "write train/gradient/progress scalars every N env steps")
    progress: bool = _leaf(True, None, "show the rich progress bar")


@dataclass(frozen=True)
class GuardConfig:
    enabled: bool = _leaf(True, None, "check every update's telemetry and raise alerts (td3drive/guard.py)")
    grad_norm_warning: float = _leaf(50_000.0, _positive(), "pre-clip gradient norm warning threshold")
    grad_norm_critical: float = _leaf(100_000.0, _positive(), "pre-clip gradient norm critical threshold")
    grad_norm_window: int = _leaf(20, _positive(),
                                  "updates over which each group's pre-clip norm is judged, by its median: one "
                                  "outlier batch, which clipping absorbs, is not an explosion (1: each update)")
    q_abs_max: float = _leaf(10_000.0, _positive(), "mean |Q1| or |Q2| on a batch above this is an explosion")
    actor_loss_growth: float = _leaf(10.0, _positive(), "actor loss beyond this factor of its early level (and rising)")
    actor_loss_floor: float = _leaf(1.0, _positive(), "early actor-loss level is at least this (initial Q is ~0)")
    actor_loss_window: int = _leaf(50, _positive(),
                                   "actor updates that set the early level, and over which the rise is fitted")
    actor_loss_rate: float = _leaf(1.5, _positive(),
                                   "... and the mean |actor loss| of the last window at least this factor of the "
                                   "window before (a divergence multiplies fast; learning moves Q slowly)")
    on_non_finite: str = _leaf("stop", _one_of("warn", "stop"), "policy of the non_finite alert")
    on_gradient_critical: str = _leaf("stop", _one_of("warn", "stop"), "policy of gradient_explosion_critical")
    on_gradient_warning: str = _leaf("warn", _one_of("warn", "stop"), "policy of gradient_explosion_warning")
    on_q_value_explosion: str = _leaf("warn", _one_of("warn", "stop"), "policy of q_value_explosion")
    on_actor_loss_divergence: str = _leaf("warn", _one_of("warn", "stop"), "policy of actor_loss_divergence")


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    def replace(self, **dotted: Any) -> "Config":
        """Return a validated copy with dotted keys (``"agent.tau"``) set to new values."""
        return from_dict(merge(self.to_dict(), dotted_to_nested(dotted)))


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _type_ok(value: Any, annotation: str) -> bool:
    base = annotation.replace(" | None", "")
    if value is None:
        return annotation.endswith("| None")
    if base == "bool":
        return isinstance(value, bool)
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "str":
        return isinstance(value, str)
    raise AssertionError(f"unhandled annotation {annotation}")


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' = {data!r}: must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = prefix + str(unknown[0])
        raise ConfigError(f"unknown config key '{key}': allowed keys here are {', '.join(sorted(fields))}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = prefix + name
        if f.default_factory is not dataclasses.MISSING:  # a section, not a leaf
            kwargs[name] = _build(f.default_factory, data.get(name, {}), key + ".")
            continue
        if name not in data:
            continue
        value = data[name]
        annotation = str(f.type)
        if not _type_ok(value, annotation):
            raise ConfigError(f"config key '{key}' = {value!r}: must be of type {annotation}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{key}' = {value!r}: must be a finite number")
        check = f.metadata.get("check")
        if check is not None and not check[0](value):
            raise ConfigError(f"config key '{key}' = {value!r}: must be {check[1]}")
        if annotation.startswith("float") and isinstance(value, int):
            value = float(value)
        kwargs[name] = value
    return cls(**kwargs)


def _cross_check(cfg: Config) -> None:
    from td3drive.envs import check_backend_options, scenarios  # imports the backend's module

    allowed = scenarios(cfg.env.name)
    if cfg.env.scenario not in allowed:
        raise ConfigError(
            f"config key 'env.scenario' = {cfg.env.scenario!r}: backend '{cfg.env.name}' allows "
            + ", ".join(map(str, allowed))
        )
    t = cfg.training
    if t.actors and t.num_envs > 1:
        raise ConfigError(f"config key 'training.num_envs' = {t.num_envs!r}: with training.actors = {t.actors} each "
                          "actor owns one env; allowed: 1")
    if t.ray_address and not t.actors:
        raise ConfigError(f"config key 'training.ray_address' = {t.ray_address!r}: needs training.actors > 0")
    check_backend_options(cfg)
    g = cfg.guard
    if g.grad_norm_warning > g.grad_norm_critical:
        raise ConfigError(
            f"config key 'guard.grad_norm_warning' = {g.grad_norm_warning!r}: must be <= "
            f"guard.grad_norm_critical ({g.grad_norm_critical!r})"
        )


# What a key left out of a config meant before the default recipe changed (the reference system's
# schedule, no augmentation, one-step targets, no action repeat, the 512-wide ReLU features).
_FORMER_DEFAULTS = {
    "env": {"action_repeat": 1, "no_progress_frames": 0},
    "agent": {"features_dim": 512, "trunk": "relu", "augment_pad": 0, "n_step": 1},
    "training": {"train_freq": 50, "batch_size": 256},
}


# Keys added after configs were first saved, with what a saved config that predates them meant. A saved config
# (config.yaml, a checkpoint's) holds every key of its time, so one that has every other key of its section
# predates the addition; a hand-written file that leaves the key out gets today's default.
_ADDED_KEYS = {"env": {"carracing_vector": "full"}}


def _fill_added(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for section, added in _ADDED_KEYS.items():
        fields = {f.name for f in dataclasses.fields(_SECTIONS[section])}
        have = out.get(section)
        if isinstance(have, Mapping) and fields - set(added) <= set(have):
            out[section] = {**{k: v for k, v in added.items() if k not in have}, **have}
    return out


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config that predates a key of :data:`_ADDED_KEYS` keeps its meaning (its checkpoints load, its
    run resumes as it ran). One written before the time limit counted frames (it has
    ``env.max_episode_steps``) too: the limit becomes ``max_episode_frames = max_episode_steps x
    action_repeat`` and every key it leaves out takes its former default."""
    env = data.get("env") if isinstance(data, Mapping) else None
    if not isinstance(env, Mapping) or "max_episode_steps" not in env:
        return _fill_added(dict(data or {}))
    out = merge(
        dotted_to_nested({f"{s}.{k}": v for s, keys in _FORMER_DEFAULTS.items() for k, v in keys.items()}), data
    )
    env = dict(out["env"])
    steps = env.pop("max_episode_steps")
    if "max_episode_frames" not in env and isinstance(steps, int) and isinstance(env["action_repeat"], int):
        env["max_episode_frames"] = steps * env["action_repeat"]
    out["env"] = env
    return _fill_added(out)


def from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (missing keys take defaults; a config
    written before frame-based time limits is read with its former meaning, see :func:`upgrade`)."""
    cfg = _build(Config, upgrade(data or {}), "")
    _cross_check(cfg)
    return cfg


def dotted_to_nested(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"agent.tau": 0.01}`` -> ``{"agent": {"tau": 0.01}}``."""
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{key}': '{part}' is a value, not a section")
        node[parts[-1]] = value
    return nested


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value`` (value in YAML syntax: ``10``, ``1e-4``, ``null``, ``critic``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: must be key=value, e.g. agent.tau=0.01")
    try:
        value = yaml_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict; unreadable or malformed files raise :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"config file '{p}': cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{p}': not a text file (YAML expected)") from None
    try:
        data = yaml_load(text)
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise ConfigError(f"config file '{p}': not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{p}': must hold a mapping of sections, got {type(data).__name__}")
    return data


def build_config(
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Resolve defaults < YAML file < ``--set`` items < explicit CLI flags, then validate once."""
    data: dict[str, Any] = upgrade(load_yaml(config_file)) if config_file else {}
    dotted = dict(parse_set(s) for s in sets or [])
    dotted.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(merge(data, dotted_to_nested(dotted)))


# Keys a resumed run cannot change: they shape the networks, the replay or the env the checkpoint holds.
RESUME_FIXED = ("env.name", "env.scenario", "env.action_repeat", "env.carracing_vector", "agent.encoder",
                "agent.features_dim", "agent.trunk", "agent.use_vector", "agent.hidden_dim", "training.num_envs",
                "training.actors")


def resume_conflicts(saved: Config, new: Config) -> list[str]:
    """``key: saved -> new`` for each :data:`RESUME_FIXED` key that differs."""
    value = lambda cfg, key: getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1])
    return [f"{k}: {value(saved, k)!r} -> {value(new, k)!r}" for k in RESUME_FIXED if value(saved, k) != value(new, k)]


def save_yaml(cfg: Config, path: str | Path) -> None:
    """Write the full resolved config as YAML, atomically (a kill mid-write leaves the old file or the new
    one, never a truncated one); an identical file is left untouched, so a resume does not rewrite it."""
    p, text = Path(path), yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    try:
        if p.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(p, text)


def reference() -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, allowed, meaning) for every leaf: the README's config reference."""
    rows = []
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory):
            check = f.metadata.get("check")
            allowed = check[1] if check else ("true or false" if str(f.type) == "bool" else str(f.type))
            rows.append((f"{section.name}.{f.name}", f.default, allowed, f.metadata.get("doc", "")))
    return rows
