"""The configuration: one frozen dataclass tree, loaded from YAML and CLI overrides, validated once.

Every leaf declares its allowed values next to its default, so the check and the message that
names what is allowed come from the same place. A bad value raises :class:`ConfigError` with a
one-line message naming the key, the value and what is allowed; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from td3drive.config_format import FORMAT, upgrade
from td3drive.core.errors import ConfigError
from td3drive.core.files import atomic_write
from td3drive.core.guard_options import GuardConfig
from td3drive.core.options import (
    at_least,
    build,
    describe,
    keys,
    leaf,
    non_negative,
    one_of,
    opt,
    positive,
    unit_closed_open,
    unit_open_closed,
)
from td3drive.envs import EnvConfig, build_env, fixed_options, option_reference

__all__ = ["AgentConfig", "Config", "ConfigError", "EnvConfig", "GuardConfig", "LoggingConfig", "TrainingConfig",
           "build_config", "from_dict", "load_yaml", "parse_set", "reference", "resume_conflicts", "save_yaml"]


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


@dataclass(frozen=True)
class AgentConfig:
    encoder: str = leaf("critic", one_of("critic", "separate"),
                         "critic: one CNN trained by the critic loss only; separate: actor and critic CNNs", fixed=True)
    features_dim: int = leaf(50, positive(), "NatureCNN output width (the image features the heads read)", fixed=True)
    trunk: str = leaf("layernorm", one_of("relu", "layernorm"),
                       "after the NatureCNN's linear layer: relu (Nature DQN) or layernorm (LayerNorm + tanh, DrQ-v2)",
                       fixed=True)
    use_vector: bool = leaf(True, None, "feed the ego-state vector to the actor and critics (false: camera frames "
                                         "only, as pixel agents in the literature and SB3's CnnPolicy see)", fixed=True)
    augment_pad: int = leaf(4, non_negative(),
                             "DrQ random shift in the update: up to N pixels, edges replicated (0 disables)")
    n_step: int = leaf(3, positive(), "rewards summed into each critic target (1 = one-step TD3; DrQ-v2 uses 3)")
    hidden_dim: int = leaf(256, positive(), "width of the actor and critic head MLPs", fixed=True)
    actor_lr: float = leaf(3e-4, positive(), "Adam learning rate of the actor")
    critic_lr: float = leaf(3e-4, positive(), "Adam learning rate of the critics")
    gamma: float = leaf(0.99, unit_closed_open(), "discount")
    tau: float = leaf(0.005, unit_open_closed(), "polyak coefficient of the target networks")
    policy_freq: int = leaf(2, positive(), "actor and target update every N critic updates")
    policy_noise: float = leaf(0.2, non_negative(), "std of target policy smoothing noise")
    noise_clip: float = leaf(0.5, non_negative(), "clip of target policy smoothing noise")
    # Decaying exploration by measurement (docs/BENCHMARKS.md section 10): on CarRacing the constant 0.1 left
    # seed 1 on a 20-tile plateau for 200K frames; 1.0 -> 0.1 drove at 30K frames on the same seed.
    exploration_noise: float = leaf(
        1.0, non_negative(), "std of Gaussian exploration noise (at the start of the decay)"
    )
    exploration_noise_final: float | None = leaf(0.1, opt(non_negative()),
                                                  "std reached after exploration_decay_steps, linearly "
                                                  "(null: constant exploration_noise, the TD3 paper's 0.1)")
    exploration_decay_steps: int = leaf(20_000, positive(), "agent steps over which the exploration std decays")
    max_grad_norm: float | None = leaf(10.0, opt(positive()),
                                        "per-group gradient clipping threshold (null disables)")
    precision: str = leaf("fp32", one_of("fp32", "bf16"),
                           "bf16: encoders under bfloat16 autocast (weights, heads, losses stay fp32)")


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = leaf(0, non_negative(), "seed of python, numpy, torch and the envs")
    device: str = leaf("auto", one_of("auto", "cpu", "cuda"), "torch device")
    max_timesteps: int = leaf(1_000_000, positive(), "env steps to train for")
    learning_starts: int = leaf(1000, non_negative(), "uniform random actions before this many steps")
    train_freq: int = leaf(1, positive(), "run gradient_steps updates every N env steps")
    gradient_steps: int = leaf(1, positive(),
                                "updates per train_freq env steps (updates per env step = gradient_steps / train_freq)")
    num_envs: int = leaf(1, positive(), "parallel collection envs (processes); actions for all in one forward pass",
                         fixed=True)
    batch_size: int = leaf(128, positive(), "transitions per update")
    overlap_updates: bool = leaf(False, None, "run each step's updates on a second thread while the next env steps "
                                              "run (td3drive/update_thread.py); acting lags the learner by the "
                                              "updates in flight; in-process collection only (not with actors)")
    buffer_size: int = leaf(1_000_000, positive(), "replay capacity in transitions (capped to max_timesteps)")
    eval_freq: int = leaf(10_000, non_negative(), "evaluate every N env steps (0 disables)")
    num_eval_episodes: int = leaf(10, positive(), "deterministic episodes per evaluation")
    eval_at_start: bool = leaf(False, None, "also evaluate the untrained policy at step 0 (with eval_freq > 0): the "
                                             "level the report's learning progress compares with (off by default: a "
                                             "sweep would count it as a guard-stopped trial's last evaluation)")
    ablation_freq: int = leaf(50_000, non_negative(),
                               "also run the input ablations (camera frozen, ego vector neutralised; "
                               "td3drive/ablation.py) at the first evaluation after every N env steps (0 disables)")
    eval_workers: int = leaf(0, non_negative(),
                              "evaluation env processes (0: one per CPU core, at most num_eval_episodes)")
    eval_async: bool = leaf(True, None, "evaluate policy snapshots in a separate process while training goes on")
    actors: int = leaf(0, non_negative(),
                        "collection actors on Ray (td3drive/collect_ray.py), each with its own env; 0: collect in "
                        "this process (num_envs)", fixed=True)
    ray_address: str | None = leaf(None, None,
                                    "with actors: address of a running Ray cluster (null: start a local Ray)")
    actor_chunk_steps: int = leaf(25, positive(), "with actors: env steps an actor collects per chunk it ships")
    actor_weights_every: int = leaf(100, positive(),
                                     "with actors: broadcast the newest policy weights every N updates")
    checkpoint_freq: int = leaf(50_000, non_negative(), "checkpoint every N env steps (0: only at the end)")
    keep_checkpoints: int = leaf(5, at_least(2), "newest step_<N>.pt files kept (last_good.pt and files you rename "
                                                   "or copy are never removed)")
    save_replay: bool = leaf(False, None, "also save replay contents with each checkpoint")
    replay_on_stop: bool = leaf(True, None, "when a signal (Ctrl-C, SIGTERM) ends the run, save the replay contents "
                                             "beside the final checkpoint, so --resume continues the same run")


@dataclass(frozen=True)
class LoggingConfig:
    log_freq: int = leaf(100, positive(), "write train/gradient/progress scalars every N env steps")
    progress: bool = leaf(True, None, "show the rich progress bar")


@dataclass(frozen=True)
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML- and checkpoint-safe), with its ``format`` (td3drive/config_format.py)."""
        out: dict[str, Any] = {"format": FORMAT}
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            out[f.name] = section.to_dict() if isinstance(section, EnvConfig) else dataclasses.asdict(section)
        return out

    def replace(self, **dotted: Any) -> "Config":
        """Return a validated copy with dotted keys (``"agent.tau"``) set to new values. A new ``env.name``
        starts from that backend's default options (the old backend's do not carry over)."""
        base = self.to_dict()
        if dotted.get("env.name", self.env.name) != self.env.name:
            base["env"] = {k: v for k, v in base["env"].items() if k in keys(EnvConfig)}
        return from_dict(merge(base, dotted_to_nested(dotted)))


def _build(data: Mapping[str, Any]) -> Config:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config = {data!r}: must be a mapping of sections")
    sections = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]
    if unknown := sorted(set(data) - set(sections)):
        raise ConfigError(f"unknown config key '{unknown[0]}': allowed sections are {', '.join(sections)}")
    return Config(**{name: build_env(data.get(name, {})) if cls is EnvConfig else build(cls, data.get(name, {}),
                                                                                          f"{name}.")
                     for name, cls in sections.items()})


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
    if t.overlap_updates and t.actors:
        raise ConfigError("config key 'training.overlap_updates' = True: Ray actors act with their own snapshots "
                          "and the learner overlaps them already; allowed with training.actors = 0")
    if t.ray_address and not t.actors:
        raise ConfigError(f"config key 'training.ray_address' = {t.ray_address!r}: needs training.actors > 0")
    check_backend_options(cfg)
    g = cfg.guard
    if g.grad_norm_warning > g.grad_norm_critical:
        raise ConfigError(
            f"config key 'guard.grad_norm_warning' = {g.grad_norm_warning!r}: must be <= "
            f"guard.grad_norm_critical ({g.grad_norm_critical!r})"
        )


def from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (missing keys take defaults; an old saved
    config is read with the meaning it had, :func:`td3drive.config_format.upgrade`)."""
    cfg = _build(upgrade(data or {}))
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


def resume_fixed() -> list[str]:
    """The keys a resumed run cannot change (declared ``fixed=True``: they shape the networks, the replay or the
    env the checkpoint holds), every backend's included."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name == "env":
            out += fixed_options()
        else:
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(f.default_factory) if g.metadata.get("fixed")]
    return out


def resume_conflicts(saved: Config, new: Config) -> list[str]:
    """``key: saved -> new`` for each :func:`resume_fixed` key that differs (a backend option neither has is
    left out)."""
    missing = object()
    value = lambda cfg, key: getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1], missing)
    return [f"{k}: {value(saved, k)!r} -> {value(new, k)!r}" for k in resume_fixed()
            if value(saved, k) != value(new, k) and missing not in (value(saved, k), value(new, k))]


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
    """(dotted key, default, allowed, meaning) for every key, each backend's options included: the README's
    config reference."""
    rows = []
    for f in dataclasses.fields(Config):
        rows += option_reference() if f.name == "env" else describe(f.default_factory, f"{f.name}.")
    return rows
