"""Rules on episodes: early-termination collapse, episodes ended on purpose, the return and length trends,
and a stage's bound on the episode length."""

from __future__ import annotations

import numpy as np

from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series
from td3drive.analysis.rules.base import INFO, WARNING, Finding, Outcome, RunData, _finite, _r, _window, row
from td3drive.core import tags


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


def recent_episode_length(series: dict[str, Series]) -> float | None:
    """Mean length of the last fifth (at least 1) of the finished episodes."""
    if tags.EPISODE_LENGTH not in series:
        return None
    _, v = _finite(series[tags.EPISODE_LENGTH])
    if not len(v):
        return None
    return float(v[-max(1, len(v) // 5) :].mean())


# Reward terms whose non-zero episode sum means the episode ended with them (highway and racetrack: both
# terminate). CARLA's "safety" term also holds lane invasions, which do not end an episode.
TERMINAL_TERMS = ("collision", "offroad")


def rule_ending_pays(d: RunData) -> Outcome:
    """A warning when most recent episodes end in one penalised termination while the critic values the states
    it is trained on below zero: ending the episode then costs the agent less than driving on, and it learns to
    leave (docs/BENCHMARKS.md 18c: a crash penalty raised to 50 with leaving the road at 10; the agent left the
    road within 5 steps of every evaluation episode). Needs the ``env/reward_<term>`` episode sums and Q1."""
    th = d.th
    if tags.Q1 not in d.series:
        return Outcome()
    q_steps, q = _finite(d.series[tags.Q1])
    findings = []
    for term in TERMINAL_TERMS:
        tag = tags.env_reward(term)
        if tag not in d.series:
            continue
        steps, v = _finite(d.series[tag])
        after = steps > th.learning_starts
        if after.sum() < th.min_points:
            continue
        recent_steps, recent = steps[after][-_window(int(after.sum())):], v[after][-_window(int(after.sum())):]
        share = float(np.mean(recent != 0))
        q_recent = q[q_steps >= recent_steps[0]]
        if share < th.ending_share or not len(q_recent) or q_recent.mean() >= 0:
            continue
        explore = v[~after]
        findings.append(Finding(
            "ending_pays", WARNING,
            f"{share:.0%} of recent episodes end with '{term}' while the critic values its states at "
            f"{q_recent.mean():.3g}: ending the episode may pay better than driving on",
            {"term": term, "recent_episodes": len(recent), "recent_share": _r(share),
             "exploration_share": _r(float(np.mean(explore != 0))) if len(explore) else None,
             "recent_mean_q": _r(float(q_recent.mean())), "recent_mean_penalty": _r(float(recent.mean())),
             "threshold": th.ending_share},
            "With Q below zero the agent expects to lose by driving on, so a termination that costs less than that "
            "is its best action, and it takes it on purpose (reward hacking, not a crash it could not avoid). "
            "Check this termination's penalty against the others (a cheaper way out is the one taken) and against "
            "the per-step reward early in training (a time penalty makes every slow step negative); raise it to "
            "at least the largest penalty, or make driving on worth more than ending.",
            [int(recent_steps[-1])], tag,
        ))
    return Outcome(findings)
