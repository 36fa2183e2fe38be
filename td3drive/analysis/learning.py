"""Is the agent learning? Learning progress of the return curve and the update budget behind it.

Learning progress compares the late level of the return curve with its early level: the evaluation
return (``eval/mean_reward``) when the run evaluated at least ``learning_min_points`` times, else the
training episode returns (ours, SB3's ``rollout/ep_rew_mean``, CleanRL's ``charts/episodic_return``,
mapped by ``aliases``). Early and late are the first and the last third of the points; the
difference of their means gets a 95 % bootstrap interval (seeded), so noise alone does not read as
progress. When the run evaluated the untrained policy at step 0 (ours with ``training.eval_at_start: true``),
the report also gives the late level against it. The answer is one of:

- ``improving``: the interval lies above 0 and the change is at least ``learning_min_change`` of the
  curve's scale (its range, or half the larger of the early and late levels' magnitudes if that is
  larger: a drift of 3 % on returns of -1,450 is not progress, however steady);
- ``declining``: the same, downwards (a warning at any update count: the policy got worse);
- ``flat``: neither; a warning once the run made ``learning_flat_updates`` updates, otherwise
- ``too early to tell``: fewer points than ``learning_min_points``, or a flat curve after fewer
  updates than ``learning_flat_updates``. "Early" is counted in gradient updates, not env steps:
  20,000 env steps at one update per 50 steps are 400 updates, which cannot teach anything.

The update budget is updates per env step and total updates: from the run's ``config.yaml`` for our
runs (``gradient_steps / train_freq`` after ``learning_starts``), else from a logged update counter
(``train/n_updates``, SB3's name for it; SB3 itself writes it to its stdout and CSV logs but not to
TensorBoard, so an SB3 event file alone does not tell the budget). Below ``min_updates_per_step`` it is
a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from td3drive.analysis import stats
from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series
from td3drive.core import tags

UPDATE_COUNTERS = ("train/n_updates",)  # a running update count (SB3's name; it keeps it out of TensorBoard)
IMPROVING, DECLINING, FLAT, TOO_EARLY = "improving", "declining", "flat", "too early to tell"


@dataclass(frozen=True)
class UpdateBudget:
    """Gradient updates per env step and in total (``updates`` None when only the ratio is known)."""

    per_step: float
    updates: float | None
    source: str  # where the numbers came from


def update_budget(series: Mapping[str, Series], run_config: Mapping[str, Any] | None) -> UpdateBudget | None:
    """The run's update budget, or None when neither its config nor a logged counter tells it."""
    last_step = max((int(s.steps.max()) for s in series.values() if len(s.steps)), default=0)
    training = (run_config or {}).get("training") or {}
    freq, grad = training.get("train_freq"), training.get("gradient_steps")
    if isinstance(freq, int) and isinstance(grad, int) and freq > 0:
        starts = training.get("learning_starts") if isinstance(training.get("learning_starts"), int) else 0
        ratio = grad / freq
        return UpdateBudget(ratio, ratio * max(0, last_step - starts), "config.yaml (gradient_steps / train_freq)")
    for tag in UPDATE_COUNTERS:
        if tag in series and len(series[tag].values):
            s = series[tag]
            updates = float(np.nanmax(s.values))
            return UpdateBudget(updates / max(int(s.steps.max()), 1), updates, f"logged {tag}")
    return None


@dataclass(frozen=True)
class Progress:
    """The learning-progress verdict and its evidence (returns in the curve's own units)."""

    status: str  # IMPROVING | DECLINING | FLAT | TOO_EARLY
    source: str  # the tag of the curve judged
    points: int
    early_mean: float
    late_mean: float
    change: float  # late - early
    ci: tuple[float, float]  # 95 % bootstrap interval of the change
    relative_change: float  # change / scale of the curve (see the module docstring)
    reason: str
    start_level: float | None = None  # the untrained policy's evaluation at step 0, when the run logged one


def return_curve(series: Mapping[str, Series], min_points: int) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(tag, steps, values) of the curve to judge: evaluations if there are enough, else episode returns."""
    for tag in (tags.EVAL_MEAN_REWARD, tags.EPISODE_REWARD):
        if tag in series:
            s = series[tag]
            ok = np.isfinite(s.values)
            if ok.sum() >= min_points or (tag == tags.EPISODE_REWARD and ok.any()):
                return tag, s.steps[ok], s.values[ok]
    return None


def bootstrap_change(early: np.ndarray, late: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ``mean(late) - mean(early)``, resampling each group with replacement."""
    return stats.mean_difference_ci(early, late, reps=reps, seed=seed)


def learning_progress(series: Mapping[str, Series], th: Thresholds | Mapping[str, float],
                      budget: UpdateBudget | None) -> Progress | None:
    """Judge the return curve (see the module docstring); None when the run logged no return at all."""
    th = Thresholds.of(th)
    min_points = int(th.learning_min_points)
    curve = return_curve(series, min_points)
    if curve is None:
        return None
    tag, steps, v = curve
    start = float(v[0]) if tag == tags.EVAL_MEAN_REWARD and steps[0] == 0 else None
    n = len(v)
    if n < min_points:
        return Progress(TOO_EARLY, tag, n, float(v.mean()), float(v.mean()), 0.0, (0.0, 0.0), 0.0,
                        f"only {n} points of {tag} (at least {min_points} are needed)")
    third = max(2, n // 3)
    early, late = v[:third], v[-third:]
    change = float(late.mean() - early.mean())
    lo, hi = bootstrap_change(early, late)
    scale = max(float(np.ptp(v)), 0.5 * max(abs(float(early.mean())), abs(float(late.mean())))) or 1.0
    rel = change / scale
    updates = budget.updates if budget is not None else None
    if lo > 0 and rel >= th.learning_min_change:
        status, reason = IMPROVING, "the late third is above the early third beyond noise"
    elif hi < 0 and rel <= -th.learning_min_change:
        status, reason = DECLINING, "the late third is below the early third beyond noise"
    elif updates is not None and updates < th.learning_flat_updates:
        status = TOO_EARLY
        reason = f"no change beyond noise after {updates:,.0f} updates (fewer than {th.learning_flat_updates:,.0f})"
    else:
        status = FLAT
        reason = "no change beyond noise" + (f" after {updates:,.0f} updates" if updates is not None else "")
    if start is not None:
        reason += (
            f"; the untrained policy (step 0) scored {start:.4g}, the late third {late.mean() - start:+.4g} from it"
        )
    return Progress(status, tag, n, float(early.mean()), float(late.mean()), change, (lo, hi), rel, reason, start)
