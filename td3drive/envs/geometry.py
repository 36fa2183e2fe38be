"""Plane geometry shared by the route backends (highway-env and CARLA both use a left-handed ground
frame: x forward/east, y to the right/south, a positive yaw turns clockwise seen from above)."""

from __future__ import annotations

import math

import numpy as np


def wrap_angle(a: float) -> float:
    """Angle in [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def to_ego_frame(points: np.ndarray, position: np.ndarray, heading: float) -> np.ndarray:
    """World points ``[n, 2]`` -> ego ``(x forward, y left)`` for a vehicle at ``position`` with ``heading`` (rad).

    In a left-handed ground frame "left" of heading h is the direction ``(sin h, -cos h)``.
    """
    d = np.asarray(points, dtype=np.float64) - position
    c, s = math.cos(heading), math.sin(heading)
    return np.stack([d[:, 0] * c + d[:, 1] * s, d[:, 0] * s - d[:, 1] * c], axis=1)
