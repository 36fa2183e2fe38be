"""Rules on learning: whether the return improves beyond noise, and whether the run made enough
gradient updates per env step (td3drive.analysis.learning measures both)."""

from __future__ import annotations

from td3drive.analysis import learning
from td3drive.analysis.rules.base import INFO, WARNING, Finding, Outcome, RunData, _r, row

_PROGRESS_SEVERITY = {learning.IMPROVING: INFO, learning.TOO_EARLY: INFO, learning.DECLINING: WARNING,
                      learning.FLAT: WARNING}


def rule_learning(d: RunData) -> Outcome:
    """Learning progress and the update budget: their findings and their (non-gating) criteria rows."""
    series, th, budget = d.series, d.th, d.budget
    out: list[Finding] = []
    p = learning.learning_progress(series, th, budget)
    if p is not None:
        out.append(Finding(
            "learning_progress", _PROGRESS_SEVERITY[p.status],
            f"learning: {p.status} ({p.source} {p.early_mean:.4g} -> {p.late_mean:.4g}, change {p.change:+.4g}, "
            f"95% CI [{p.ci[0]:.4g}, {p.ci[1]:.4g}])",
            {"status": p.status, "tag": p.source, "points": p.points, "early_mean": _r(p.early_mean),
             "late_mean": _r(p.late_mean), "change": _r(p.change), "change_ci95": [_r(p.ci[0]), _r(p.ci[1])],
             "relative_change": _r(p.relative_change),
             "untrained_level": _r(p.start_level) if p.start_level is not None else None,
             "updates": _r(budget.updates) if budget is not None and budget.updates is not None else None},
            f"{p.reason}. Mean of the first and the last third of the {p.source} points, with a 95 % bootstrap "
            "interval of their difference. A declining return means the policy got worse (look for a wrecked "
            "critic: Q, critic loss, learning rates); a flat one after many updates means the updates do not "
            "reach the policy (update budget, exploration, reward, a dead actor gradient).",
            [], p.source,
        ))
    if budget is not None:
        low = budget.per_step < th.min_updates_per_step
        total = f", {budget.updates:,.0f} updates in all" if budget.updates is not None else ""
        out.append(Finding(
            "update_budget", WARNING if low else INFO,
            f"{budget.per_step:.3g} gradient updates per env step{total}",
            {"updates_per_env_step": _r(budget.per_step), "updates": _r(budget.updates) if budget.updates is not None
             else None, "source": budget.source, "threshold": th.min_updates_per_step},
            ("Far too few updates for the data: Spinning Up's TD3 locks the ratio of gradient steps to env steps "
             "at 1 (it runs update_every updates every update_every steps), and SB3's TD3 defaults to "
             "train_freq=1, gradient_steps=1, also 1. One update per 50 env steps (0.02: train_freq 50, "
             f"gradient_steps 1) is 50x below them. This run: {budget.per_step:.3g}. Raise gradient_steps or "
             "lower train_freq.") if low else
            "Updates per env step and total updates (Spinning Up and SB3 TD3 both run 1 update per env step).",
            [], None,
        ))
    rows = [
        row("learning_progress", "return: late third vs early third (95 % CI)", None if p is None else p.change,
            "improving, or too early to tell", 2, p is not None and p.status != learning.TOO_EARLY,
            p is not None and p.status == learning.IMPROVING, gate=False),
        row("update_budget", "gradient updates per env step", None if budget is None else budget.per_step,
            f">= {th.min_updates_per_step:g}", 1, budget is not None,
            budget is not None and budget.per_step >= th.min_updates_per_step, gate=False),
    ]
    return Outcome(out, rows)
