"""How much of a return one input carries: the paired drop without it, its confidence interval, and the
one-line verdict on the camera that ``td3drive eval --ablate``, the training log and the health report all say.

Pure numbers (no env, no torch): :mod:`td3drive.ablation` runs the ablated evaluations and hands their
returns here; the report's rule (:mod:`td3drive.analysis.rules.inputs`) reads the logged tags back.

An input is **unused** when the return without it is within noise of the normal one (the drop's confidence
interval reaches 0), and **barely used** when the drop, though measurable, is under :data:`MATERIAL_FRACTION`
of the normal return's size: a policy that loses 9 of 712 points without its camera drives from something else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from td3drive.analysis.stats import bootstrap_ci

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 10_000
MATERIAL_FRACTION = 0.1  # a drop under this fraction of |normal return| is not the input carrying the driving
UNUSED, BARELY, USES = "does not use", "barely uses", "uses"


def paired_drop_ci(given: np.ndarray, ablated: np.ndarray, confidence: float = CONFIDENCE,
                   reps: int = BOOTSTRAP_REPS, seed: int = 0) -> tuple[float, float, float]:
    """``(mean drop, low, high)`` of ``given - ablated`` over paired episodes ``[n]``: the percentile bootstrap
    of the mean of the per-episode differences (returns' units). Deterministic in ``seed``."""
    g, a = np.asarray(given, np.float64), np.asarray(ablated, np.float64)
    if g.ndim != 1 or len(g) == 0 or g.shape != a.shape:
        raise ValueError(f"paired returns must be two [n] arrays of one length, got {g.shape} and {a.shape}")
    diff = g - a
    low, high = bootstrap_ci(diff, lambda x: x.mean(axis=(1, 2)), reps, confidence, seed)
    return float(diff.mean()), low, high


@dataclass(frozen=True)
class Drop:
    """The return lost without one input: mean and confidence interval of the paired differences (return units)."""

    mean: float
    low: float
    high: float

    @property
    def within_noise(self) -> bool:
        """The return without the input is not measurably lower: the interval reaches 0."""
        return self.low <= 0.0

    def carries(self, given_return: float) -> bool:
        """The input carries a material share of ``given_return`` (measurable and >= MATERIAL_FRACTION of it)."""
        return not self.within_noise and self.mean >= MATERIAL_FRACTION * abs(given_return)

    def use(self, given_return: float) -> str:
        """:data:`UNUSED`, :data:`BARELY` or :data:`USES`."""
        return UNUSED if self.within_noise else USES if self.carries(given_return) else BARELY


def camera_verdict(given: float, frozen: float, cam: Drop, vec: Drop | None = None) -> str:
    """One line on the camera's share (and the vector's): ``given`` and ``frozen`` mean returns, their drops."""
    ci = f"{CONFIDENCE:.0%} CI {cam.low:.1f} to {cam.high:.1f}"
    use = cam.use(given)
    if use == UNUSED:
        head = (f"the policy does not use its camera: with the camera frozen it still returns {frozen:.1f} "
                f"(normal {given:.1f}; drop {cam.mean:.1f}, {ci})")
    elif use == BARELY:
        head = (f"the policy barely uses its camera: freezing it costs {cam.mean:.1f} of {given:.1f} ({ci}), "
                f"under {MATERIAL_FRACTION:.0%}")
    else:
        head = f"the policy uses its camera: freezing it costs {cam.mean:.1f} of {given:.1f} ({ci})"
    if vec is not None:
        head += (f"; neutralising the ego vector costs {vec.mean:.1f} ({CONFIDENCE:.0%} CI {vec.low:.1f} to "
                 f"{vec.high:.1f})")
    return head
