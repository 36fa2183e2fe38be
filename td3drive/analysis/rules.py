"""Health rules over a run's scalar series: findings with evidence and a criteria matrix.

Every rule reads series by the tag names of ``td3drive.tags`` (other tools' names are mapped by
``aliases.canonical``), takes its thresholds from the resolved criteria, and returns findings with
an id, a severity, numbers and steps as evidence, and an explanation with likely causes and what
to try. A metric that a rule needs but the run did not log is "not measured", never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from td3drive import tags, verdicts
from td3drive.analysis import learning
from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series
from td3drive.guard import STOP_BY_DEFAULT

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}


@dataclass
class Finding:
    id: str
    severity: str
    title: str
    evidence: dict[str, Any]
    explanation: str
    steps: list[int] = field(default_factory=list)
    tag: str | None = None


@dataclass
class Criterion:
    id: str
    criterion: str
    value: float | None
    threshold: str
    weight: int
    status: str  # "pass" | "fail" | "not measured"
    gate: bool = True  # False: reported, but a stage does not gate on it (learning progress, update budget)


@dataclass(frozen=True)
class RunData:
    """What every rule reads: the run's series (canonical tags), its thresholds, the clipping threshold it
    trained with (None: unknown) and its update budget (None: not derivable)."""

    series: dict[str, Series]
    th: Thresholds
    max_grad_norm: float | None = None
    budget: learning.UpdateBudget | None = None


@dataclass
class Outcome:
    """What every rule returns: its findings and its rows of the criteria matrix (built by :func:`row`)."""

    findings: list[Finding] = field(default_factory=list)
    rows: list[Criterion] = field(default_factory=list)


def row(id: str, criterion: str, value: float | None, threshold: str, weight: int, measured: bool, ok: bool,
        gate: bool = True) -> Criterion:
    """A criteria-matrix row: "not measured" when the rule lacked the data, else pass or fail."""
    return Criterion(id, criterion, value, threshold, weight,
                     "not measured" if not measured else ("pass" if ok else "fail"), gate)


def _r(x: float) -> float:
    """Round for evidence: 4 significant digits."""
    return float(f"{x:.4g}") if np.isfinite(x) else float(x)


def _finite(s: Series) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(s.values)
    return s.steps[ok], s.values[ok]


def _window(n: int) -> int:
    return max(3, n // 5)


def rule_non_finite(d: RunData) -> Outcome:
    out = []
    for tag, s in sorted(d.series.items()):
        bad = ~np.isfinite(s.values)
        if bad.any():
            first = int(s.steps[np.argmax(bad)])
            out.append(Finding(
                "non_finite", CRITICAL, f"non-finite values in {tag}",
                {"tag": tag, "count": int(bad.sum()), "first_step": first, "of": len(s.values)},
                "NaN or infinity reached the logs: once a parameter is non-finite every later update is "
                "garbage. Likely causes: a diverging critic (check Q and TD error before this step), a "
                "division by zero in the reward or observation scaling, or an exploding gradient that "
                "clipping did not bound. Resume from a checkpoint before the first step shown, lower the "
                "learning rates and make sure no update with non-finite values is applied.",
                [first], tag,
            ))
    n_bad = sum(int((~np.isfinite(s.values)).sum()) for s in d.series.values())
    return Outcome(out, [row("non_finite", "no NaN/inf in any metric", float(n_bad), "= 0", 3, bool(d.series),
                             n_bad == 0)])


def _grad_tags(series: dict[str, Series]) -> list[str]:
    return sorted(t for t in series if tags.is_grad_norm(t))


def rule_gradient_explosion(d: RunData) -> Outcome:
    series, th = d.series, d.th
    out = []
    for tag in _grad_tags(series):
        steps, v = _finite(series[tag])
        if not len(v):
            continue
        peak = int(np.argmax(v))
        for level, sev in (("grad_norm_critical", CRITICAL), ("grad_norm_warning", WARNING)):
            over = v > getattr(th, level)
            if over.any():
                out.append(Finding(
                    f"gradient_explosion_{sev}", sev, f"gradient explosion in {tag}",
                    {"tag": tag, "max": _r(v[peak]), "at_step": int(steps[peak]), "threshold": getattr(th, level),
                     "updates_over": int(over.sum()), "of": len(v)},
                    "The gradient norm before clipping passed the threshold. Clipping bounds the step, but a "
                    "norm this large means the loss surface is being hit far from where the network is "
                    "calibrated: usually targets that grew (check Q and target Q), unnormalised inputs or "
                    "rewards, or a learning rate that is too high. Lower the learning rate, scale rewards, "
                    "and check the critic first.",
                    [int(s) for s in steps[over][:20]], tag,
                ))
                break
        # Sudden jumps relative to the run's own recent history (median of the previous 20 values).
        if len(v) > th.min_points:
            med = pd.Series(v).rolling(20, min_periods=int(th.min_points)).median().shift(1).to_numpy()
            ratio = v / np.maximum(med, 1e-12)
            # A norm that jumps to a still-small value (the actor's first gradients once Q stops being flat:
            # 1e-5 -> 0.6) is no hazard: only jumps to at least grad_jump_min count.
            jumps = np.flatnonzero((np.nan_to_num(ratio) > th.grad_jump_factor) & (v >= th.grad_jump_min))
            if len(jumps):
                j = int(jumps[0])
                out.append(Finding(
                    "gradient_jump", WARNING, f"sudden gradient jump in {tag}",
                    {"tag": tag, "value": _r(v[j]), "at_step": int(steps[j]), "median_before": _r(med[j]),
                     "factor": _r(ratio[j]), "jumps": len(jumps)},
                    "The norm jumped by more than the configured factor over the median of its previous 20 "
                    "logged values. A single jump is often one bad batch; repeated jumps precede divergence. "
                    "Look at the losses and Q values at the same step.",
                    [int(steps[k]) for k in jumps[:20]], tag,
                ))
    gmax = max((float(v.max()) for t in _grad_tags(series) if len(v := _finite(series[t])[1])), default=None)
    return Outcome(out, [row("grad_norm", "max pre-clip gradient norm", gmax, f"< {th.grad_norm_warning:g}", 2,
                             gmax is not None, gmax is not None and gmax < th.grad_norm_warning)])


def rule_clipping(d: RunData) -> Outcome:
    """Saturation (pre-clip above the threshold most of the time) and clipping that did not happen."""
    series, th, max_grad_norm = d.series, d.th, d.max_grad_norm
    out, checked = [], []
    for tag in _grad_tags(series) if max_grad_norm is not None else []:
        steps, pre = _finite(series[tag])
        if len(pre) < th.min_points:
            continue
        checked.append(tag)
        frac = float((pre > max_grad_norm).mean())
        if frac > th.clip_saturation_fraction:
            out.append(Finding(
                "clipping_saturation", WARNING, f"clipping does all the work in {tag}",
                {"tag": tag, "fraction_over": _r(frac), "max_grad_norm": max_grad_norm,
                 "median_pre_clip": _r(float(np.median(pre)))},
                "The pre-clip norm is above max_grad_norm in most updates, so every step has the same length "
                "and the optimiser is effectively doing sign descent. Clipping is working (see the _clipped "
                "series), but the gradients it receives are too large: lower the learning rate or fix the "
                "loss scale rather than clipping harder.",
                [], tag,
            ))
        post_tag = tag + "_clipped"
        if post_tag in series:
            _, post = _finite(series[post_tag])
            if len(post) and post.max() > max_grad_norm * 1.001:
                out.append(Finding(
                    "clipping_not_applied", CRITICAL, f"clipping did not bound {post_tag}",
                    {"tag": post_tag, "max": _r(post.max()), "max_grad_norm": max_grad_norm},
                    "The norm measured after clipping exceeds the configured threshold: clipping is not applied "
                    "to the parameters this group logs (wrong parameter list, or clipping after the optimiser step).",
                    [], post_tag,
                ))
    return Outcome(out, [row("clipping", "post-clip norm within max_grad_norm", float(len(out)) if checked else None,
                             f"<= {max_grad_norm:g}" if max_grad_norm else "needs max_grad_norm", 1, bool(checked),
                             not any(f.id == "clipping_not_applied" for f in out))])


def _loss_for(grad_tag: str) -> str:
    return tags.ACTOR_LOSS if "/actor" in grad_tag else tags.CRITIC_LOSS


def rule_dead_network(d: RunData) -> Outcome:
    series, th = d.series, d.th
    out = []
    for tag in _grad_tags(series):
        steps, v = _finite(series[tag])
        loss_tag = _loss_for(tag)
        if len(v) < th.min_points or loss_tag not in series:
            continue
        _, loss = _finite(series[loss_tag])
        loss_changes = len(loss) >= 2 and float(np.ptp(loss)) > 0
        if not loss_changes:
            continue
        if np.all(v == 0):
            what = "exactly zero"
        elif np.ptp(v) == 0:
            what = f"constant at {v[0]:.6g}"
        else:
            continue
        out.append(Finding(
            "dead_network", CRITICAL, f"{tag} is {what} while {loss_tag} changes",
            {"tag": tag, "logged_updates": len(v), "value": _r(float(v[0])), "loss_tag": loss_tag,
             "loss_range": [_r(float(loss.min())), _r(float(loss.max()))]},
            "A network whose loss changes must receive gradient. A norm that is exactly zero (or frozen) over "
            "every logged update is a bug, not health: the graph is disconnected (features detached before "
            "this group, parameters missing from the optimiser), the norm is read after zero_grad, or it is "
            "logged on updates that did not train this network (with delayed policy updates the actor trains "
            "only every policy_freq-th update). Check the logging point first, then the computation graph.",
            [int(s) for s in steps[:5]], tag,
        ))
    return Outcome(out, [row("dead_network", "every gradient group alive", float(len(out)), "= 0 dead groups", 3,
                             bool(_grad_tags(series)), not out)])


def _exp_fit(steps: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Slope (per step) and R^2 of a least-squares line through log|v| against step."""
    y = np.log(np.maximum(np.abs(v), 1e-12))
    x = steps.astype(np.float64)
    if len(x) < 3 or np.ptp(x) == 0:
        return 0.0, 0.0
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 0.0
    return float(slope), r2


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
    early = max(float(np.median(np.abs(v[:w]))), th.actor_loss_floor)
    final = float(np.abs(v[-w:]).mean())
    growth = final / early
    slope, r2 = _exp_fit(steps[w // 2 :], v[w // 2 :])
    # Still growing at the end: a loss that rose to a plateau (Q settling at its true scale) is not diverging.
    before = max(float(np.abs(v[-2 * w : -w]).mean()), th.actor_loss_floor)
    continued = final / before
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


def rule_episodes(d: RunData) -> Outcome:
    """Early-termination collapse and the return/length trends. A stage with an episode-length range and
    no exploration phase to compare with (a later stage's run) is judged by the range alone
    (:func:`rule_episode_range`): an unmeasurable ratio would block ``--strict`` forever."""
    th = d.th
    findings, ratio = _episodes(d.series, th)
    ranged = th.episode_length_min > 0 or np.isfinite(th.episode_length_max)
    if ranged and ratio is None:
        return Outcome(findings)
    return Outcome(findings, [row("episode_length", "recent / exploration episode length", ratio,
                                  f">= {th.early_termination_ratio:g}", 1, ratio is not None,
                                  ratio is None or ratio >= th.early_termination_ratio)])


def rule_episode_range(d: RunData) -> Outcome:
    """A stage's bound on the mean length of the last fifth of the episodes (when it has one)."""
    lo, hi = d.th.episode_length_min, d.th.episode_length_max
    if not (lo > 0 or np.isfinite(hi)):
        return Outcome()
    recent = recent_episode_length(d.series)
    return Outcome([], [row("episode_length_range", "mean length of the last fifth of episodes", recent,
                            f"in [{lo:g}, {hi:g}]", 2, recent is not None,
                            recent is not None and lo <= recent <= hi)])


def _episodes(series: dict[str, Series], th: Thresholds) -> tuple[list[Finding], float | None]:
    out: list[Finding] = []
    ratio = None
    if tags.EPISODE_LENGTH in series:
        steps, length = _finite(series[tags.EPISODE_LENGTH])
        explore = length[steps <= th.learning_starts]
        if len(explore) == 0 and len(length) >= 2 * th.min_points:
            explore = length[: _window(len(length))]
        after = length[steps > th.learning_starts]
        if len(explore) and len(after) >= 2:
            recent = after[-_window(len(after)) :] if len(after) >= 3 else after
            ratio = float(recent.mean() / max(explore.mean(), 1e-9))
            if ratio < th.early_termination_ratio:
                out.append(
                    Finding(
                        "early_termination_collapse",
                        WARNING,
                        f"recent episodes are {ratio:.0%} as long as in the exploration phase",
                        {
                            "exploration_mean_length": _r(float(explore.mean())),
                            "recent_mean_length": _r(float(recent.mean())),
                            "ratio": _r(ratio),
                            "threshold": th.early_termination_ratio,
                        },
                        "The policy ends episodes much sooner than random actions did: it drives off the road or "
                        "crashes quickly. Check the termination penalty against the per-step reward (a policy may "
                        "learn that ending early is cheaper) and whether the critic is exploited.",
                        [int(steps[-1])],
                        tags.EPISODE_LENGTH,
                    )
                )
    for tag, name in ((tags.EPISODE_REWARD, "episode return"), (tags.EPISODE_LENGTH, "episode length")):
        if tag in series:
            steps, v = _finite(series[tag])
            if len(v) >= 3:
                w = _window(len(v))
                out.append(Finding(
                    f"{tag.split('/')[1]}_trend", INFO, f"{name}: {v[:w].mean():.4g} -> {v[-w:].mean():.4g}",
                    {"episodes": len(v), "first_mean": _r(float(v[:w].mean())), "final_mean": _r(float(v[-w:].mean())),
                     "best": _r(float(v.max()))},
                    f"Mean {name} of the first and the last fifth of the episodes.", [], tag,
                ))
    return out, ratio


# Alerts that stop a run by default are critical in the report; the others warn.
ALERT_SEVERITY = {tag: CRITICAL for tag in STOP_BY_DEFAULT}


def rule_alerts(d: RunData) -> Outcome:
    """Alerts the live guard (ours, or the reference system's) wrote as 0/1 series."""
    series, out = d.series, []
    for tag in tags.ALERTS:
        if tag not in series:
            continue
        steps, v = _finite(series[tag])
        fired = v > 0
        if fired.any():
            name = tags.alert_name(tag)
            out.append(
                Finding(
                    f"alert_{name}",
                    ALERT_SEVERITY.get(tag, WARNING),
                    f"the guard raised {name}",
                    {
                        "tag": tag,
                        "log_points_with_alert": int(fired.sum()),
                        "of": len(v),
                        "first_step": int(steps[fired][0]),
                    },
                    "The live guard raised this alert during training (it checks every update, not only the logged "
                    "ones). Read the findings on the same metric and the run's log for the value and threshold.",
                    [int(x) for x in steps[fired][:20]],
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


def recent_episode_length(series: dict[str, Series]) -> float | None:
    """Mean length of the last fifth (at least 1) of the finished episodes."""
    if tags.EPISODE_LENGTH not in series:
        return None
    _, v = _finite(series[tags.EPISODE_LENGTH])
    if not len(v):
        return None
    return float(v[-max(1, len(v) // 5) :].mean())


EXPECTED = {
    "losses": (tags.CRITIC_LOSS, tags.ACTOR_LOSS),
    "Q values": (tags.Q1,),
    "gradient norms": ("gradients/",),
    "episode returns": (tags.EPISODE_REWARD,),
}


def rule_missing(d: RunData) -> Outcome:
    out = []
    for what, needed in EXPECTED.items():
        missing = [t for t in needed if not any(s == t or (t.endswith("/") and s.startswith(t)) for s in d.series)]
        if missing:
            out.append(Finding(
                "not_measured", WARNING, f"{what} not measured",
                {"missing": missing},
                f"The run logged no {', '.join(missing)}: the rules that need them could not run, and an "
                "unmeasured quantity is not a pass. Log it (td3drive does by default).",
            ))
    return Outcome(out)


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
             "train_freq=1, gradient_steps=1, also 1. The reference system's 0.02 (train_freq 50, "
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


# The rules, in the order of the criteria matrix. A new rule is one function returning an Outcome, and
# one line here.
RULES: tuple[Callable[[RunData], Outcome], ...] = (
    rule_non_finite, rule_gradient_explosion, rule_dead_network, rule_clipping, rule_actor_divergence,
    rule_critic_exploitation, rule_q_values, rule_q_stable, rule_episodes, rule_growing_losses, rule_missing,
    rule_alerts, rule_learning, rule_episode_range,
)


def evaluate_rules(series: dict[str, Series], th: Thresholds | Mapping[str, float], max_grad_norm: float | None = None,
                   budget: learning.UpdateBudget | None = None) -> tuple[list[Finding], list[Criterion]]:
    """Run every rule; return the findings (most severe first) and the criteria matrix."""
    data = RunData(series, Thresholds.of(th), max_grad_norm, budget)
    findings: list[Finding] = []
    criteria: list[Criterion] = []
    for rule in RULES:
        outcome = rule(data)
        findings += outcome.findings
        criteria += outcome.rows
    # Most severe first; within a severity, what was measured before what was not.
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.id == "not_measured"))
    return findings, criteria


def verdict(findings: list[Finding], gate: list[Criterion] | None = None) -> str:
    """NO-GO on any critical finding, GO WITH WARNINGS on any warning, else GO.

    With ``gate`` (a stage's criteria matrix) every criterion must pass: one that fails is NO-GO,
    one that was not measured is at best GO WITH WARNINGS.
    """
    severities = {f.severity for f in findings}
    statuses = {c.status for c in gate or [] if c.gate}
    if CRITICAL in severities or "fail" in statuses:
        return verdicts.NO_GO
    if WARNING in severities or "not measured" in statuses:
        return verdicts.GO_WITH_WARNINGS
    return verdicts.GO
