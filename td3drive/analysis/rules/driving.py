"""Rule on driving: the route metrics of a run's evaluations (``td3drive.metrics``: highway, racetrack,
CARLA and CarRacing report them), at the first and the last evaluation, so a report says how the car
drives and not only what it scores."""

from __future__ import annotations

from td3drive.analysis.rules.base import INFO, Finding, Outcome, RunData, _finite, _r
from td3drive.core import tags

# (tag, evidence name, how the title shows a value)
_METRICS = (
    (tags.EVAL_ROUTE_COMPLETION, "route_completion", "route {:.1f} %"),
    (tags.EVAL_DRIVING_SCORE, "driving_score", "driving score {:.1f}"),
    (tags.EVAL_COLLISIONS_PER_KM, "collisions_per_km", "{:.2f} collisions/km"),
    (tags.EVAL_LANE_INVASIONS_PER_KM, "lane_invasions_per_km", "{:.2f} lane invasions/km"),
    (tags.EVAL_MEAN_SPEED, "mean_speed", "{:.1f} m/s"),
)


def rule_driving(d: RunData) -> Outcome:
    """An info finding with the driving metrics of the last evaluation and of the first (none without
    ``eval/route_completion``). It has no criteria row: what good driving is depends on the task."""
    if tags.EVAL_ROUTE_COMPLETION not in d.series:
        return Outcome()
    shown, evidence = [], {}
    for tag, name, fmt in _METRICS:
        steps, values = _finite(d.series[tag]) if tag in d.series else ((), ())
        if not len(values):
            continue
        evidence[f"{name}_first"], evidence[name] = _r(float(values[0])), _r(float(values[-1]))
        shown.append(fmt.format(values[-1]))
        if name == "route_completion":
            last_step = int(steps[-1])
            if len(values) > 1:
                shown[-1] += f" ({values[0]:.1f} % at the first evaluation)"
    if "route_completion" not in evidence:  # logged, but never a finite value
        return Outcome()
    evidence = {"step": last_step, **evidence}
    return Outcome([Finding(
        "driving", INFO, f"driving: {', '.join(shown)} at step {last_step:,}", evidence,
        "The route metrics of the evaluations (td3drive.metrics): route completion is the share of the route "
        "driven (CarRacing: of the track's tiles), the driving score discounts it by 0.60 per collision, lane "
        "invasions (CarRacing: leaving the road) and collisions are counted per km driven. A return stuck below "
        "its target with a high route completion and many lane invasions points at cornering (CarRacing counts "
        "a lap only with more than 95 % of the tiles); collisions at traffic.",
        [last_step], tags.EVAL_ROUTE_COMPLETION,
    )])
