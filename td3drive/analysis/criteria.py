"""Health-rule thresholds: built-in defaults, overridable by a criteria YAML file per env and per stage.

A criteria file has up to three sections, applied in this order (later wins)::

    defaults: {grad_norm_critical: 100000, ...}
    envs:     {carracing: {...}, lanekeep: {...}}
    stages:   {"5000": {...}, "50000": {...}}

A stage (``analyze --stage N``, every stage of ``td3drive validate``) starts from the built-in stage
criteria (those of the validation report of the CARLA trainer td3drive replaces): pre-clip gradient
norms under 10,000, |Q| under 1,000,
actor loss and Q stable, and a mean episode length no shorter than a per-backend fraction of
``env.max_episode_frames``. Under a stage every criterion of the matrix is a gate: one that fails
makes the verdict NO-GO.

Unknown keys and non-numeric values are rejected with the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from td3drive.core.guard_options import GuardConfig

_GUARD = GuardConfig()  # the live guard's defaults are the report's: one place for each threshold


@dataclass(frozen=True)
class Thresholds:
    """Every threshold the rules read (CleanRL's ``Args``): a mistyped name fails at once."""

    # gradient norms (pre-clip), as the live guard and the trainer td3drive replaces log them
    grad_norm_warning: float = _GUARD.grad_norm_warning
    grad_norm_critical: float = _GUARD.grad_norm_critical
    grad_jump_factor: float = 100.0  # a norm this many times the median of all earlier ones is a jump ...
    grad_jump_min: float = 1.0  # ... when it reaches at least this
    clip_saturation_fraction: float = 0.8  # pre-clip norm above max_grad_norm in more updates than this
    # actor loss and critic exploitation
    actor_loss_growth: float = _GUARD.actor_loss_growth  # |actor loss| beyond this factor of its early level ...
    actor_loss_floor: float = _GUARD.actor_loss_floor  # ... where the early level is at least this (initial Q ~0)
    exponential_fit_r2: float = 0.7  # ... and log|loss| fits a rising line at least this well
    exploitation_factor: float = 10.0  # |actor loss| or |q_pi| beyond this factor of max |Q1|,|Q2|
    exploitation_min: float = 100.0  # and at least this large in absolute terms
    # Q values
    q_abs_max: float = _GUARD.q_abs_max
    q_return_factor: float = 10.0  # max |Q| beyond this factor of the largest |episode return|
    twin_disagreement: float = 0.5  # final mean |Q1 - Q2| relative to mean |Q| (floored at 1)
    # losses and episodes
    loss_growth: float = 10.0  # critic loss / TD error, last fifth vs first fifth
    early_termination_ratio: float = 0.5  # recent episodes shorter than this fraction of the exploration phase's
    ending_share: float = 0.8  # this share of recent episodes ending in one penalised termination, with Q < 0
    learning_starts: float = 1000.0  # env steps of the exploration phase (read from config.yaml when present)
    q_late_growth: float = 3.0  # mean |Q| of the last fifth beyond this factor of the middle fifth's: not stable
    episode_length_min: float = 0.0  # mean length of the last fifth of episodes at least this (0: no bound)
    episode_length_max: float = float("inf")  # ... and at most this (inf: no bound)
    min_points: float = 5.0  # fewer logged points than this: a series is too short to judge
    # ... and its last fifth this factor above the fifth before: an exponential keeps multiplying fifth after
    # fifth; a rise to a plateau (or a linear one, Q moving to its scale) does not
    actor_loss_continued_growth: float = 1.5
    # learning progress and update budget (td3drive/analysis/learning.py)
    learning_min_points: float = 6.0  # return points needed to judge progress
    learning_min_change: float = 0.1  # |late - early| as a fraction of the curve's range, beyond noise
    learning_flat_updates: float = 10_000.0  # a flat curve after fewer updates is "too early to tell"
    min_updates_per_step: float = 0.1  # gradient updates per env step below this: a warning

    @classmethod
    def of(cls, values: "Thresholds | Mapping[str, float]") -> "Thresholds":
        """From a resolved mapping (:func:`resolve`); an unknown name raises CriteriaError."""
        if isinstance(values, Thresholds):
            return values
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise CriteriaError(f"unknown threshold(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DEFAULTS))}")
        return cls(**{k: float(v) for k, v in values.items()})


DEFAULTS: dict[str, float] = dataclasses.asdict(Thresholds())
# The live guard's config keys the report reads from a run's config.yaml (its thresholds for that run).
GUARD_KEYS = ("grad_norm_warning", "grad_norm_critical", "q_abs_max", "actor_loss_growth", "actor_loss_floor")


# The stage criteria of the validation report td3drive replaces, for every stage unless a criteria file says
# otherwise.
STAGE_DEFAULTS: dict[str, float] = {"grad_norm_warning": 10_000.0, "q_abs_max": 1_000.0}


def _backend_fact(env: str | None, name: str, default: Any) -> Any:
    """A fact a backend module declares (``STAGE_MIN_EPISODE_FRACTION``, ``USES_ACTION_REPEAT``), or
    ``default`` for a backend it does not know (a run of another tool). Imports that backend's module
    (no torch, no simulator server)."""
    from td3drive.envs import BACKENDS, backend

    return getattr(backend(env), name, default) if env in BACKENDS else default


class CriteriaError(ValueError):
    """A criteria file or value that is malformed."""


def _check_section(section: Any, where: str) -> dict[str, float]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise CriteriaError(f"criteria {where}: must be a mapping of threshold names to numbers")
    out = {}
    for key, value in section.items():
        if key not in DEFAULTS:
            raise CriteriaError(f"criteria {where}: unknown key '{key}'; allowed: {', '.join(sorted(DEFAULTS))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise CriteriaError(f"criteria {where}.{key} = {value!r}: must be a number >= 0")
        out[key] = float(value)
    return out


def load_criteria_file(path: str | Path) -> dict[str, Any]:
    """Parse and validate a criteria YAML file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise CriteriaError(f"criteria file '{p}': cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError:
        raise CriteriaError(f"criteria file '{p}': not valid YAML") from None
    data = data or {}
    if not isinstance(data, Mapping) or set(data) - {"defaults", "envs", "stages"}:
        raise CriteriaError(f"criteria file '{p}': top-level keys must be among defaults, envs, stages")
    parsed: dict[str, Any] = {"defaults": _check_section(data.get("defaults"), "defaults"), "envs": {}, "stages": {}}
    for kind in ("envs", "stages"):
        sections = data.get(kind) or {}
        if not isinstance(sections, Mapping):
            raise CriteriaError(f"criteria file '{p}': '{kind}' must map names to sections")
        for name, section in sections.items():
            parsed[kind][str(name)] = _check_section(section, f"{kind}.{name}")
    return parsed


def resolve(
    criteria_file: str | Path | None = None,
    env: str | None = None,
    stage: str | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Thresholds for one analysis: defaults < run's config (guard, learning_starts) < built-in stage
    criteria (only with ``stage``) < the file's defaults < its ``envs`` section < its ``stages`` section."""
    out = dict(DEFAULTS)
    if run_config:
        guard = run_config.get("guard") or {}
        for key in GUARD_KEYS:
            if isinstance(guard.get(key), (int, float)):
                out[key] = float(guard[key])
        starts = (run_config.get("training") or {}).get("learning_starts")
        if isinstance(starts, (int, float)):
            out["learning_starts"] = float(starts)
    if stage is not None:
        out.update(STAGE_DEFAULTS)
        env_cfg = (run_config or {}).get("env") or {}
        # Episode lengths are logged in agent steps; runs before the frame-based limit had max_episode_steps.
        max_steps = env_cfg.get("max_episode_steps")
        if max_steps is None and isinstance(env_cfg.get("max_episode_frames"), (int, float)):
            repeat = env_cfg.get("action_repeat") if _backend_fact(env, "USES_ACTION_REPEAT", True) else 1
            max_steps = -(-env_cfg["max_episode_frames"] // (repeat if isinstance(repeat, int) and repeat > 0 else 1))
        fraction = _backend_fact(env, "STAGE_MIN_EPISODE_FRACTION", None)
        if fraction is not None and isinstance(max_steps, (int, float)):
            out["episode_length_min"] = fraction * float(max_steps)
    if criteria_file:
        parsed = load_criteria_file(criteria_file)
        out.update(parsed["defaults"])
        if env and env in parsed["envs"]:
            out.update(parsed["envs"][env])
        if stage is not None and parsed["stages"]:
            # A file with stages must name this one: a typo must not silently fall back to the built-ins.
            if stage not in parsed["stages"]:
                raise CriteriaError(
                    f"--stage '{stage}': criteria file '{criteria_file}' has stages " + ", ".join(parsed["stages"])
                )
            out.update(parsed["stages"][stage])
    return out
