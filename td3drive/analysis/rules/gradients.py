"""Rules on gradients: non-finite values anywhere, explosions and jumps of the pre-clip norms, clipping
that saturates or is not applied, and networks whose gradient is dead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from td3drive.analysis.events import Series
from td3drive.analysis.rules.base import CRITICAL, WARNING, Finding, Outcome, RunData, _finite, _r, row
from td3drive.core import tags


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


# Logged points over which a pre-clip norm is judged, by its median: one outlier batch (which clipping absorbs)
# is not an explosion; a norm that stays high is. The live guard does the same over guard.grad_norm_window updates.
EXPLOSION_WINDOW = 5


def _sustained(v: np.ndarray) -> np.ndarray:
    """Median of each value with the ones logged before it, over :data:`EXPLOSION_WINDOW` points."""
    return pd.Series(v).rolling(EXPLOSION_WINDOW, min_periods=1).median().to_numpy()


def rule_gradient_explosion(d: RunData) -> Outcome:
    series, th = d.series, d.th
    out, levels = [], []
    for tag in _grad_tags(series):
        steps, v = _finite(series[tag])
        if not len(v):
            continue
        level_v = _sustained(v)  # what is judged; the jump check below reads the single values
        peak = int(np.argmax(level_v))
        levels.append(float(level_v[peak]))
        for level, sev in (("grad_norm_critical", CRITICAL), ("grad_norm_warning", WARNING)):
            over = level_v > getattr(th, level)
            if over.any():
                out.append(Finding(
                    f"gradient_explosion_{sev}", sev, f"gradient explosion in {tag}",
                    {"tag": tag, "max": _r(level_v[peak]), "at_step": int(steps[peak]), "threshold": getattr(th, level),
                     "points_over": int(over.sum()), "of": len(v), "window": EXPLOSION_WINDOW,
                     "max_single": _r(float(v.max()))},
                    f"The gradient norm before clipping, as the median of {EXPLOSION_WINDOW} logged points, passed "
                    "the threshold (single outlier batches do not count). Clipping bounds the step, but a "
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
    gmax = max(levels, default=None)
    return Outcome(out, [row("grad_norm", f"max pre-clip gradient norm (median of {EXPLOSION_WINDOW} log points)",
                             gmax, f"< {th.grad_norm_warning:g}", 2,
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
                "The pre-clip norm is above max_grad_norm in most updates, so clipping no longer catches "
                "outliers: it rescales every gradient to the same norm. Under SGD that fixes the step length; "
                "under Adam (td3drive, SB3, CleanRL), which is invariant to the gradient's overall scale, it "
                "weights every batch the same whatever its error, and lowering the learning rate or rescaling "
                "the loss does not change it. Clipping is working (see the _clipped series). To have clipping "
                "guard against outliers only, set max_grad_norm above the typical pre-clip norm (the median is "
                "in the evidence) or turn it off (DrQ-v2 and SB3's TD3 do not clip), and compare the return "
                "reached.",
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
