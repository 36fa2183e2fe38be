"""Health rules over a run's scalar series: findings with evidence and a criteria matrix.

Every rule reads series by the tag names of ``td3drive.core.tags`` (other tools' names are mapped by
``aliases.canonical``), takes its thresholds from the resolved criteria (:class:`Thresholds`), and
returns an :class:`Outcome`: findings with an id, a severity, numbers and steps as evidence, and an
explanation with likely causes and what to try, together with its rows of the criteria matrix. A
metric that a rule needs but the run did not log is "not measured", never a pass. The rules live by
subject (``gradients``, ``values``, ``episodes``, ``logged``, ``learning``, ``inputs``, ``driving``); :data:`RULES` runs
them.
"""

from __future__ import annotations

from typing import Callable, Mapping

from td3drive.analysis import learning
from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series
from td3drive.analysis.rules.base import (
    CRITICAL,
    INFO,
    SEVERITY_ORDER,
    WARNING,
    Criterion,
    Finding,
    Outcome,
    RunData,
    row,
)
from td3drive.analysis.rules.driving import rule_driving
from td3drive.analysis.rules.episodes import rule_ending_pays, rule_episode_range, rule_episodes
from td3drive.analysis.rules.gradients import rule_clipping, rule_dead_network, rule_gradient_explosion, rule_non_finite
from td3drive.analysis.rules.inputs import rule_camera_use
from td3drive.analysis.rules.learning import rule_learning
from td3drive.analysis.rules.logged import rule_alerts, rule_missing
from td3drive.analysis.rules.values import (
    rule_actor_divergence,
    rule_critic_exploitation,
    rule_growing_losses,
    rule_q_stable,
    rule_q_values,
)
from td3drive.core import verdicts

__all__ = ["CRITICAL", "INFO", "RULES", "WARNING", "Criterion", "Finding", "Outcome", "RunData", "evaluate_rules",
           "row", "verdict"]

# The rules, in the order of the criteria matrix. A new rule is one function returning an Outcome, and
# one line here.
RULES: tuple[Callable[[RunData], Outcome], ...] = (
    rule_non_finite, rule_gradient_explosion, rule_dead_network, rule_clipping, rule_actor_divergence,
    rule_critic_exploitation, rule_q_values, rule_q_stable, rule_episodes, rule_ending_pays, rule_growing_losses,
    rule_missing, rule_alerts, rule_learning, rule_camera_use, rule_episode_range, rule_driving,
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
