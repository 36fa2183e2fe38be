"""Rules on value estimates: actor-loss divergence, critic exploitation, Q explosion and overestimation,
twin disagreement, Q still multiplying, and losses growing beyond the value scale."""

from __future__ import annotations

import numpy as np

from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series
from td3drive.analysis.rules.base import CRITICAL, INFO, WARNING, Finding, Outcome, RunData, _finite, _r, _window, row
from td3drive.core import divergence, tags


def _q_scale(series: dict[str, Series]) -> tuple[float | None, list[float] | None]:
    """Largest |Q1|, |Q2| anywhere in the run, and the logged Q range."""
    qs = [_finite(series[t])[1] for t in (tags.Q1, tags.Q2) if t in series]
    qs = [q for q in qs if len(q)]
    if not qs:
        return None, None
    allq = np.concatenate(qs)
    return float(np.abs(allq).max()), [float(allq.min()), float(allq.max())]


def rule_actor_divergence(d: RunData) -> Outcome:
    """Divergence findings; the criterion is the growth of |actor loss| over its early level."""
    findings, growth = _actor_divergence(d.series, d.th)
    diverged = any(f.severity != INFO for f in findings)
    return Outcome(findings, [row("actor_loss", "actor loss stable (no exponential divergence)", growth,
                                  f"not > {d.th.actor_loss_growth:g}x early level on an exponential trend", 3,
                                  growth is not None, not diverged)])


def _actor_divergence(series: dict[str, Series], th: Thresholds) -> tuple[list[Finding], float | None]:
    if tags.ACTOR_LOSS not in series:
        return [], None
    steps, v = _finite(series[tags.ACTOR_LOSS])
    if len(v) < th.min_points:
        return [], None
    w = _window(len(v))
    # The criterion's maths is the live guard's (td3drive/core/divergence.py), over the logged series.
    early = divergence.early_level(v[:w], th.actor_loss_floor)
    final = float(np.abs(v[-w:]).mean())
    growth = final / early
    slope, r2 = divergence.log_trend(steps[w // 2 :], v[w // 2 :])
    # Still growing at the end: a loss that rose to a plateau (Q settling at its true scale) is not diverging.
    continued = divergence.window_ratio(v, w, th.actor_loss_floor)
    if not (growth > th.actor_loss_growth and slope > 0 and r2 >= th.exponential_fit_r2
            and continued > th.actor_loss_continued_growth):
        return [], growth
    qmax, qrange = _q_scale(series)
    evidence = {"early_level": _r(early), "final_level": _r(final), "growth": _r(growth), "first": _r(float(v[0])),
                "last": _r(float(v[-1])), "from_step": int(steps[0]), "to_step": int(steps[-1]), "exp_fit_r2": _r(r2),
                "doubling_steps": _r(float(np.log(2) / slope)), "last_fifth_over_previous": _r(continued)}
    if qmax is None:
        follows, sev = "Q values were not logged, so it cannot be told whether the critic follows", CRITICAL
    else:
        _, q = _finite(series[tags.Q1 if tags.Q1 in series else tags.Q2])
        q_growth = float(np.abs(q[-w:]).mean() / max(float(np.abs(q[:w]).mean()), th.actor_loss_floor))
        evidence.update(q_range=[_r(x) for x in qrange], q_growth=_r(q_growth))
        if final > th.exploitation_factor * qmax:
            follows, sev = (f"the logged Q1/Q2 do not follow it (they stay within {qrange[0]:.3g}..{qrange[1]:.3g}, "
                            f"grew {q_growth:.3g}x): the actor is exploiting the critic outside the data"), CRITICAL
        else:
            follows, sev = (f"the logged Q values follow it (grew {q_growth:.3g}x): value estimates are growing "
                            "with it; see the Q-value rules"), (WARNING if qmax > th.q_abs_max else INFO)
    return [Finding(
        "actor_loss_divergence", sev, f"actor loss grew {growth:.3g}x on an exponential trend",
        evidence,
        f"The actor loss (= -Q1(s, pi(s))) grew beyond {th.actor_loss_growth:g}x its early level on a "
        f"rising exponential trend (R^2 {r2:.2f}); {follows}. Clipping bounds each step but not where the "
        "steps lead: if Q(s, pi(s)) runs away while Q on stored actions does not, the policy has found "
        "actions or features the critic never saw. Try a lower actor learning rate, the `critic` encoder "
        "mode (the actor cannot move the CNN), and check target policy smoothing and action bounds.",
        [int(steps[-1])], tags.ACTOR_LOSS,
    )], growth


def rule_critic_exploitation(d: RunData) -> Outcome:
    findings, ratio = _critic_exploitation(d.series, d.th)
    return Outcome(findings, [row("critic_exploitation", "|Q(s, pi(s))| / max |Q| on data", ratio,
                                  f"< {d.th.exploitation_factor:g}", 3, ratio is not None, not findings)])


def _critic_exploitation(series: dict[str, Series], th: Thresholds) -> tuple[list[Finding], float | None]:
    source = tags.Q_PI if tags.Q_PI in series else tags.ACTOR_LOSS
    qmax, qrange = _q_scale(series)
    if source not in series or qmax is None:
        return [], None
    steps, v = _finite(series[source])
    if not len(v):
        return [], None
    i = int(np.argmax(np.abs(v)))
    ratio = float(abs(v[i]) / max(qmax, 1e-12))
    if ratio > th.exploitation_factor and abs(v[i]) > th.exploitation_min:
        return [Finding(
            "critic_exploitation", CRITICAL, f"{source} far outside the logged Q range",
            {"tag": source, "value": _r(float(v[i])), "at_step": int(steps[i]), "q_range": [_r(x) for x in qrange],
             "ratio": _r(ratio), "threshold": th.exploitation_factor},
            "Q1(s, pi(s)) is far larger in magnitude than Q1/Q2 on the actions in the replay buffer. The "
            "critic is being queried, and trusted, far outside its data: the policy found out-of-distribution "
            "actions or features where the critic extrapolates wildly. Gradient clipping does not fix this. "
            "Try: the `critic` encoder mode, a smaller actor learning rate or more critic updates per actor "
            "update, target policy smoothing, and check that actions are bounded the same way everywhere.",
            [int(steps[i])], source,
        )], ratio
    return [], ratio


def rule_q_values(d: RunData) -> Outcome:
    findings, qmax = _q_values(d.series, d.th)
    return Outcome(findings, [row("q_value", "max |Q1|, |Q2|", qmax, f"< {d.th.q_abs_max:g}", 2, qmax is not None,
                                  qmax is not None and qmax < d.th.q_abs_max)])


def _q_values(series: dict[str, Series], th: Thresholds) -> tuple[list[Finding], float | None]:
    out = []
    qmax, qrange = _q_scale(series)
    if qmax is None:
        return out, None
    if qmax > th.q_abs_max:
        out.append(Finding(
            "q_value_explosion", CRITICAL, f"|Q| reached {qmax:.3g}",
            {"max_abs_q": _r(qmax), "threshold": th.q_abs_max, "q_range": [_r(x) for x in qrange]},
            "Q values beyond any plausible return: the critic's bootstrapped targets are feeding on their "
            "own overestimates. Check gamma, reward scale, termination handling (bootstrapping through a "
            "true termination inflates values) and the critic learning rate.",
            [], tags.Q1,
        ))
    elif tags.EPISODE_REWARD in series:
        _, ret = _finite(series[tags.EPISODE_REWARD])
        scale = float(np.abs(ret).max()) if len(ret) else 0.0
        if scale > 0 and qmax > th.q_return_factor * max(scale, 1.0):
            out.append(Finding(
                "q_value_overestimation", WARNING, f"|Q| {qmax:.3g} far beyond the return scale {scale:.3g}",
                {"max_abs_q": _r(qmax), "max_abs_episode_return": _r(scale), "factor": th.q_return_factor},
                "The critic values states far above any undiscounted return seen so far. Early in training "
                "this is noise; if it grows, it is overestimation feeding on itself.",
                [], tags.Q1,
            ))
    if tags.Q1 in series and tags.Q2 in series:
        _, q1 = _finite(series[tags.Q1])
        _, q2 = _finite(series[tags.Q2])
        n = min(len(q1), len(q2))
        if n >= th.min_points:
            w = _window(n)
            a, b = q1[:n][-w:], q2[:n][-w:]
            rel = float(np.abs(a - b).mean() / max(1.0, float((np.abs(a) + np.abs(b)).mean() / 2)))
            if rel > th.twin_disagreement:
                out.append(Finding(
                    "twin_critic_disagreement", WARNING, "the twin critics disagree",
                    {"relative_difference": _r(rel), "threshold": th.twin_disagreement,
                     "q1_final": _r(float(a.mean())), "q2_final": _r(float(b.mean()))},
                    "Q1 and Q2 learn the same target; a large persistent gap means one of them is unstable "
                    "or they see different inputs. Check that both are trained by the critic loss.",
                    [], tags.Q2,
                ))
    return out, qmax


def _q_level(series: dict[str, Series], steps: np.ndarray) -> tuple[np.ndarray, str] | None:
    """|Q| at ``steps`` (interpolated), from Q1, else from the actor loss (= -Q1(s, pi(s)), the same scale;
    SB3 logs no Q), floored at 1 so that a critic starting near 0 does not divide by ~0."""
    for tag in (tags.Q1, tags.Q2, tags.Q_PI, tags.ACTOR_LOSS):
        if tag in series:
            qs, q = _finite(series[tag])
            if len(q) >= 2:
                return np.maximum(np.interp(steps, qs, np.abs(q)), 1.0), tag
    return None


def rule_growing_losses(d: RunData) -> Outcome:
    """Critic loss relative to Q^2 and TD error relative to |Q|: both grow while Q moves from ~0 to its true
    scale (a healthy critic), so only growth beyond the value scale's is a finding."""
    series, th = d.series, d.th
    out = []
    for tag, name, power in ((tags.CRITIC_LOSS, "critic loss", 2), (tags.TD_ERROR, "TD error", 1)):
        if tag not in series:
            continue
        steps, v = _finite(series[tag])
        if len(v) < th.min_points:
            continue
        w = _window(len(v))
        raw_growth = float(np.abs(v[-w:]).mean()) / max(float(np.abs(v[:w]).mean()), 1e-8)
        level = _q_level(series, steps)
        scaled = np.abs(v) / level[0] ** power if level is not None else np.abs(v)
        early, late = float(scaled[:w].mean()), float(scaled[-w:].mean())
        growth = late / max(early, 1e-8)
        if growth > th.loss_growth:
            relative = f"relative to {level[1]}{'^2' if power == 2 else ''} " if level is not None else ""
            out.append(
                Finding(
                    f"{tag.split('/')[1]}_growing",
                    WARNING,
                    f"{name} grew {growth:.3g}x {relative}".strip(),
                    {
                        "tag": tag,
                        "early_mean": _r(float(np.abs(v[:w]).mean())),
                        "final_mean": _r(float(np.abs(v[-w:]).mean())),
                        "raw_growth": _r(raw_growth),
                        "growth_relative_to_q": _r(growth) if level is not None else None,
                        "q_source": level[1] if level is not None else None,
                        "factor": th.loss_growth,
                    },
                    f"The {name} should fall or settle as the critic fits its targets; it is judged against the value "
                    f"scale (|Q|{'^2' if power == 2 else ''}), since it grows with Q while Q moves to its true scale. "
                    "Growth beyond that means the targets move faster than the critic can follow: usually Q "
                    "overestimation, a too-high critic learning rate, or a too-large tau.",
                    [int(steps[-1])],
                    tag,
                )
            )
    return Outcome(out)


def rule_q_stable(d: RunData) -> Outcome:
    """Q still multiplying over the second half of the run: a critic on its way to an explosion."""
    th = d.th
    growth = q_late_growth(d.series, th)
    findings = []
    if growth is not None and growth > th.q_late_growth:
        findings.append(Finding(
            "q_value_growing", WARNING, f"Q still growing: {growth:.3g}x over the second half of the run",
            {"late_growth": _r(growth), "threshold": th.q_late_growth},
            "Mean |Q| of the last fifth of the logged updates is far above that of the middle fifth. A critic "
            "that is converging flattens out; one that keeps multiplying is on its way to an explosion.",
            [], tags.Q1,
        ))
    return Outcome(findings, [row("q_stable", "mean |Q| last fifth / middle fifth", growth, f"<= {th.q_late_growth:g}",
                                  2, growth is not None, growth is not None and growth <= th.q_late_growth)])


def q_late_growth(series: dict[str, Series], th: Thresholds) -> float | None:
    """Mean |Q1| of the last fifth of the logged updates over that of the middle fifth (floored)."""
    tag = tags.Q1 if tags.Q1 in series else tags.Q2
    if tag not in series:
        return None
    _, q = _finite(series[tag])
    n = len(q)
    if n < th.min_points:
        return None
    w = _window(n)
    mid = np.abs(q[(n - w) // 2 : (n - w) // 2 + w]).mean()
    return float(np.abs(q[-w:]).mean() / max(float(mid), th.actor_loss_floor))
