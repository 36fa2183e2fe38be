"""Rule on input reliance: whether the policy uses its camera, from the input ablations its evaluations logged
(``training.ablation_freq``; :mod:`td3drive.ablation`), read back by tag and judged by
:mod:`td3drive.analysis.reliance` so that the report says what ``td3drive eval --ablate`` says."""

from __future__ import annotations

import numpy as np

from td3drive.analysis.events import Series
from td3drive.analysis.reliance import MATERIAL_FRACTION, USES, Drop, camera_verdict
from td3drive.analysis.rules.base import INFO, WARNING, Finding, Outcome, RunData, _r, row
from td3drive.core import tags

FROZEN = tags.ablated(tags.EVAL_MEAN_REWARD, "camera_frozen")
NEUTRAL = tags.ablated(tags.EVAL_MEAN_REWARD, "vector_neutral")


def _at(s: Series | None, step: int) -> float | None:
    """The value ``s`` logged at ``step`` (the last one when several), None when none."""
    if s is None:
        return None
    hit = np.flatnonzero(s.steps == step)
    return float(s.values[hit[-1]]) if len(hit) and np.isfinite(s.values[hit[-1]]) else None


def _drop(d: RunData, condition: str, ablated: Series | None, step: int, given: float) -> Drop | None:
    """The drop under ``condition`` at ``step``: mean from the two returns, the interval from its own tags."""
    value = _at(ablated, step)
    low, high = (_at(d.series.get(tags.drop_ci(condition, end)), step) for end in ("low", "high"))
    if value is None or low is None or high is None:
        return None
    return Drop(given - value, low, high)


def rule_camera_use(d: RunData) -> Outcome:
    """At the last evaluation that ran the ablations: a warning when the policy does not or barely uses its camera
    (the return with the camera frozen within noise of the normal one, or under MATERIAL_FRACTION below it),
    info when it does; one non-gating criteria row ("not measured" without ablations)."""
    frozen, given_s = d.series.get(FROZEN), d.series.get(tags.EVAL_MEAN_REWARD)
    cam = step = given = None
    if frozen is not None and given_s is not None:
        for s in frozen.steps[::-1]:  # the newest ablation with all its numbers
            given = _at(given_s, int(s))
            cam = _drop(d, "camera_frozen", frozen, int(s), given) if given is not None else None
            if cam is not None:
                step = int(s)
                break
    threshold = f"95 % CI above 0 and >= {MATERIAL_FRACTION:.0%} of the return"
    if cam is None:
        return Outcome(rows=[row("camera_use", "return lost with the camera frozen", None, threshold, 2,
                                 False, False, gate=False)])
    vec = _drop(d, "vector_neutral", d.series.get(NEUTRAL), step, given)
    use = cam.use(given)
    ablations = len(np.unique(frozen.steps))
    evidence = {"step": step, "return": _r(given), "return_camera_frozen": _r(given - cam.mean),
                "drop": _r(cam.mean), "drop_ci95": [_r(cam.low), _r(cam.high)], "use": use, "ablations": ablations}
    if vec is not None:
        evidence |= {"drop_vector_neutral": _r(vec.mean), "drop_vector_neutral_ci95": [_r(vec.low), _r(vec.high)]}
    explanation = (
        "Input ablation at the evaluation of this step (td3drive.ablation): the same evaluation seeds with the camera "
        "frozen (every step sees the episode's first frames) and with the ego vector replaced by its mean over the "
        "normal run's steps; the drop is the mean paired difference with a 95 % bootstrap interval. ")
    if use != USES:
        explanation += (
            "A policy that earns its return without looking drives from the ego vector: it will fail where what "
            "matters exists only in the image (other cars, lights, people). On CarRacing use env.carracing_vector: "
            "proprio (no road geometry) or agent.use_vector: false; elsewhere check what the vector holds "
            "(docs/ARCHITECTURE.md). A policy that has not learned to drive yet does not use its camera either: "
            "read this beside the learning finding.")
    return Outcome(
        [Finding("camera_use", INFO if use == USES else WARNING,
                 f"camera: {camera_verdict(given, given - cam.mean, cam, vec)} at step {step:,}", evidence,
                 explanation, [step], FROZEN)],
        [row("camera_use", "return lost with the camera frozen", cam.mean, threshold, 2, True, use == USES,
             gate=False)],
    )

