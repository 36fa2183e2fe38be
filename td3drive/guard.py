"""The live guard: reads each update's telemetry in the training process, raises alerts, asks to stop.

Alerts (tags of docs/ARCHITECTURE.md, thresholds from the ``guard:`` config section):

- ``non_finite``: any loss, Q value or gradient norm of the update is NaN or infinite. The agent
  never applies such an update (``TD3`` skips the optimizer step and counts it).
- ``gradient_explosion_warning`` / ``_critical``: a gradient group's pre-clip norm above the threshold
  as the median of its last ``grad_norm_window`` updates (fewer at the start). One outlier batch is not
  an explosion: clipping exists to absorb it, and judging single updates stopped a healthy CarRacing run
  (evaluation return 888, Q ~280 and steady) on one batch whose norm was 1.0e5 among ~5e3
  (docs/BENCHMARKS.md section 10). A norm that stays high, as in a real explosion, crosses within
  about half a window.
- ``q_value_explosion``: mean |Q1| or |Q2| on the batch above ``q_abs_max``.
- ``actor_loss_divergence``: |actor loss| beyond ``actor_loss_growth`` times its early level (the
  median over the first ``actor_loss_window`` actor updates, floored at ``actor_loss_floor``) while
  log|actor loss| is rising over the last ``actor_loss_window`` actor updates, and fast: the mean of
  the last ``actor_loss_window`` is at least ``actor_loss_rate`` times the mean of the window before.
  This is the failure the CARLA trainer td3drive replaces did not alert on (-250 to -2.7e9 with small
  gradient norms): it does not depend on gradients at all. The rate condition tells it from learning: the actor loss is
  -Q1(s, pi(s)) and grows with Q while a learning agent's values move from ~0 to their true scale
  (the first CarRacing agent that drove: ~0.05 to ~240 over ~17,000 actor updates, about 1.03x per 50),
  where a divergence multiplies within tens of updates.

Each alert has a policy, ``warn`` (logged) or ``stop`` (the trainer stops after this update).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from td3drive.core import divergence, tags
from td3drive.core.guard_options import POLICY_KEYS, GuardConfig


@dataclass(frozen=True)
class Alert:
    tag: str  # one of tags.ALERTS
    step: int  # env step of the update that raised it
    message: str  # one line: what, how much, against which threshold
    stop: bool  # the policy for this alert is "stop"


class Guard:
    """Checks every update; remembers which alerts fired since the last log point and in the whole run."""

    def __init__(self, cfg: GuardConfig):
        self.cfg = cfg
        self.early: list[float] = []  # |actor loss| of the first actor_loss_window actor updates
        self.recent: deque[float] = deque(maxlen=2 * max(3, cfg.actor_loss_window))
        self.counts: dict[str, int] = {t: 0 for t in tags.ALERTS}
        self.first: dict[str, Alert] = {}  # first alert of each kind
        self.first_alert_step: int | None = None
        self.stop: Alert | None = None
        self._since_log: set[str] = set()
        self.norms: dict[str, deque[float]] = {}  # last grad_norm_window pre-clip norms of each group

    def _policy(self, tag: str) -> bool:
        return getattr(self.cfg, POLICY_KEYS[tag]) == "stop"

    @property
    def early_level(self) -> float | None:
        """Reference |actor loss|; None until ``actor_loss_window`` actor updates have been seen."""
        if len(self.early) < self.cfg.actor_loss_window:
            return None
        return divergence.early_level(np.array(self.early), self.cfg.actor_loss_floor)

    def _actor_loss(self, value: float) -> str | None:
        v = abs(value)
        if len(self.early) < self.cfg.actor_loss_window:
            self.early.append(v)
        self.recent.append(v)
        early = self.early_level
        w = max(3, self.cfg.actor_loss_window)
        if early is None or v <= self.cfg.actor_loss_growth * early or len(self.recent) < 2 * w:
            return None
        recent = np.array(self.recent)  # exactly 2 w values: the window before and the last one
        rate = divergence.window_ratio(recent, w, 1e-12)
        if divergence.log_trend(np.arange(w), recent[w:])[0] <= 0 or rate < self.cfg.actor_loss_rate:
            return None
        return (f"|{tags.ACTOR_LOSS}| = {v:.4g} is {v / early:.3g}x its early level {early:.4g} "
                f"(threshold {self.cfg.actor_loss_growth:g}x) and rising {rate:.3g}x per {w} actor updates")

    def _non_finite(self, telemetry: Mapping[str, float]) -> dict[str, str]:
        # Losses and Q first; a post-clip norm is non-finite exactly when its pre-clip norm is.
        bad = sorted((k for k, v in telemetry.items() if not math.isfinite(v) and not k.endswith("_clipped")),
                     key=lambda k: (tags.is_grad_norm(k), k))
        if not bad:
            return {}
        return {tags.ALERT_NON_FINITE: (
            f"non-finite {', '.join(f'{k} = {telemetry[k]}' for k in bad[:3])}"
            + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            + f"; the update was not applied ({int(telemetry.get(tags.SKIPPED_UPDATES, 0))} skipped so far)")}

    def _gradient_explosion(self, telemetry: Mapping[str, float]) -> dict[str, str]:
        medians = {}
        for k, v in telemetry.items():
            if tags.is_grad_norm(k) and math.isfinite(v):
                window = self.norms.setdefault(k, deque(maxlen=self.cfg.grad_norm_window))
                window.append(v)
                medians[k] = float(np.median(window))
        if not medians:
            return {}
        tag, top = max(medians.items(), key=lambda kv: kv[1])
        n = len(self.norms[tag])
        raised = {}
        for alert, threshold in ((tags.ALERT_GRAD_CRITICAL, self.cfg.grad_norm_critical),
                                 (tags.ALERT_GRAD_WARNING, self.cfg.grad_norm_warning)):
            if top > threshold:
                what = f"{tag} = {top:.4g}" if n == 1 else f"{tag} = {top:.4g} (median of the last {n} updates)"
                raised[alert] = f"{what} > {threshold:g} (pre-clip)"
        return raised

    def _q_explosion(self, telemetry: Mapping[str, float]) -> dict[str, str]:
        qs = {k: abs(telemetry[k]) for k in (tags.Q1, tags.Q2) if k in telemetry and math.isfinite(telemetry[k])}
        if not qs:
            return {}
        tag, top = max(qs.items(), key=lambda kv: kv[1])
        return (
            {tags.ALERT_Q_EXPLOSION: f"|{tag}| = {top:.4g} > {self.cfg.q_abs_max:g}"}
            if top > self.cfg.q_abs_max
            else {}
        )

    def _actor_divergence(self, telemetry: Mapping[str, float]) -> dict[str, str]:
        value = telemetry.get(tags.ACTOR_LOSS)  # only on updates that trained the actor
        if value is None or not math.isfinite(value):
            return {}
        message = self._actor_loss(value)
        return {tags.ALERT_ACTOR_DIVERGENCE: message} if message else {}

    def check(self, telemetry: Mapping[str, float], step: int) -> list[Alert]:
        """Alerts raised by one update's telemetry (tag-keyed floats, as ``TD3.update`` returns)."""
        raised: dict[str, str] = {}
        for detect in (self._non_finite, self._gradient_explosion, self._q_explosion, self._actor_divergence):
            raised.update(detect(telemetry))
        alerts = [Alert(tag, step, f"{tags.alert_name(tag)} at step {step}: {msg}", self._policy(tag))
                  for tag, msg in raised.items()]
        for a in alerts:
            self.counts[a.tag] += 1
            self.first.setdefault(a.tag, a)
            self._since_log.add(a.tag)
            if self.first_alert_step is None:
                self.first_alert_step = step
            if a.stop and self.stop is None:
                self.stop = a
        return alerts

    def log_values(self) -> dict[str, float]:
        """Every alert tag as 0.0/1.0: did it fire since the previous call. Resets that memory."""
        values = {t: float(t in self._since_log) for t in tags.ALERTS}
        self._since_log.clear()
        return values

    def summary(self) -> str:
        """``q_value_explosion x3, actor_loss_divergence x1`` (empty when nothing fired)."""
        return ", ".join(f"{tags.alert_name(t)} x{n}" for t, n in self.counts.items() if n)

    def state_dict(self) -> dict:
        return {"early": list(self.early), "recent": list(self.recent), "counts": dict(self.counts),
                "first_alert_step": self.first_alert_step, "norms": {k: list(v) for k, v in self.norms.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.early = list(state["early"])
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.counts.update(state["counts"])
        self.first_alert_step = state["first_alert_step"]
        # A checkpoint from before the windowed norms has none: the windows refill within grad_norm_window.
        self.norms = {k: deque(v, maxlen=self.cfg.grad_norm_window) for k, v in state.get("norms", {}).items()}
