"""The live guard's options (the config's ``guard`` section) and which alerts stop a run by default.

They live in ``core`` because two layers read them: the guard (td3drive/guard.py) judges each update with
them, and the report (td3drive/analysis) rates a run by the same thresholds, without the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from td3drive.core import tags
from td3drive.core.options import leaf, one_of, positive


@dataclass(frozen=True)
class GuardConfig:
    enabled: bool = leaf(True, None, "check every update's telemetry and raise alerts (td3drive/guard.py)")
    grad_norm_warning: float = leaf(50_000.0, positive(), "pre-clip gradient norm warning threshold")
    grad_norm_critical: float = leaf(100_000.0, positive(), "pre-clip gradient norm critical threshold")
    grad_norm_window: int = leaf(20, positive(),
                                  "updates over which each group's pre-clip norm is judged, by its median: one "
                                  "outlier batch, which clipping absorbs, is not an explosion (1: each update)")
    q_abs_max: float = leaf(10_000.0, positive(), "mean |Q1| or |Q2| on a batch above this is an explosion")
    actor_loss_growth: float = leaf(10.0, positive(), "actor loss beyond this factor of its early level (and rising)")
    actor_loss_floor: float = leaf(1.0, positive(), "early actor-loss level is at least this (initial Q is ~0)")
    actor_loss_window: int = leaf(50, positive(),
                                   "actor updates that set the early level, and over which the rise is fitted")
    actor_loss_rate: float = leaf(1.5, positive(),
                                   "... and the mean |actor loss| of the last window at least this factor of the "
                                   "window before (a divergence multiplies fast; learning moves Q slowly)")
    on_non_finite: str = leaf("stop", one_of("warn", "stop"), "policy of the non_finite alert")
    on_gradient_critical: str = leaf("stop", one_of("warn", "stop"), "policy of gradient_explosion_critical")
    on_gradient_warning: str = leaf("warn", one_of("warn", "stop"), "policy of gradient_explosion_warning")
    on_q_value_explosion: str = leaf("warn", one_of("warn", "stop"), "policy of q_value_explosion")
    on_actor_loss_divergence: str = leaf("warn", one_of("warn", "stop"), "policy of actor_loss_divergence")


# alert tag -> the guard key that holds its policy
POLICY_KEYS: dict[str, str] = {
    tags.ALERT_NON_FINITE: "on_non_finite",
    tags.ALERT_GRAD_CRITICAL: "on_gradient_critical",
    tags.ALERT_GRAD_WARNING: "on_gradient_warning",
    tags.ALERT_Q_EXPLOSION: "on_q_value_explosion",
    tags.ALERT_ACTOR_DIVERGENCE: "on_actor_loss_divergence",
}
# The alerts that stop a run by default (their default policy is "stop"): the report rates them critical.
STOP_BY_DEFAULT: frozenset[str] = frozenset(
    t for t, key in POLICY_KEYS.items() if getattr(GuardConfig(), key) == "stop"
)
