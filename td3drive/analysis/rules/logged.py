"""Rules on what the run logged: metrics a rule needs but the run did not write (not measured is never
a pass), and the alerts the live guard raised during training."""

from __future__ import annotations

from td3drive.analysis.rules.base import CRITICAL, WARNING, Finding, Outcome, RunData, _finite
from td3drive.core import tags
from td3drive.core.guard_options import STOP_BY_DEFAULT

# Alerts that stop a run by default are critical in the report; the others warn.
ALERT_SEVERITY = {tag: CRITICAL for tag in STOP_BY_DEFAULT}


def rule_alerts(d: RunData) -> Outcome:
    """Alerts the live guard (td3drive's, or those of the trainer it replaces) wrote as 0/1 series."""
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
