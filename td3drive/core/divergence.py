"""The maths of actor-loss divergence, shared by the live guard and the report.

Both judge |actor loss| (= |Q1(s, pi(s))|) the same way: its early level (the median of a first window,
floored, since initial Q is ~0), its growth over that level, whether log|loss| rises on a straight line
(an exponential), and whether it is still multiplying (the mean of the last window over the one before).
They differ only in what they see: the guard (td3drive/guard.py) every actor update as it happens, the
report (td3drive/analysis/rules/values.py) the logged series afterwards, so each sets its own windows
and thresholds (``guard.actor_loss_*``; ``Thresholds.actor_loss_*`` and ``exponential_fit_r2``).
"""

from __future__ import annotations

import numpy as np


def early_level(values: np.ndarray, floor: float) -> float:
    """Median |value| of ``values`` (the first window), at least ``floor``."""
    return max(float(np.median(np.abs(values))), floor)


def log_trend(x: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(slope per unit of ``x``, R^2) of the least-squares line through log|values| against ``x``; (0, 0) for
    fewer than 3 points or a constant ``x``."""
    y = np.log(np.maximum(np.abs(values), 1e-12))
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0:
        return 0.0, 0.0
    slope, intercept = np.polyfit(x, y, 1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - (slope * x + intercept)) ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0
    return float(slope), r2


def window_ratio(values: np.ndarray, window: int, floor: float) -> float:
    """Mean |value| of the last ``window`` values over that of the ``window`` before (the latter at least
    ``floor``): how fast the loss is multiplying now."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    return float(v[-window:].mean() / max(float(v[-2 * window:-window].mean()), floor))
