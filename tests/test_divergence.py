"""td3drive.core.divergence: the actor-loss divergence maths the guard and the report share."""

import math

import numpy as np
import pytest

from td3drive.core.divergence import early_level, log_trend, window_ratio


def test_an_exponential_is_a_straight_rising_line_in_log_space():
    steps = np.arange(10.0)
    slope, r2 = log_trend(steps, -250.0 * 2.0**steps)  # the sign does not matter: |actor loss|
    assert slope == pytest.approx(math.log(2.0)) and r2 == pytest.approx(1.0)
    slope, r2 = log_trend(steps, np.full(10, 5.0))
    assert slope == pytest.approx(0.0, abs=1e-12) and r2 == 0.0  # flat: no trend, nothing explained
    assert log_trend(np.arange(2.0), np.array([1.0, 9.0])) == (0.0, 0.0)  # fewer than 3 points
    assert log_trend(np.zeros(5), np.arange(1.0, 6.0)) == (0.0, 0.0)  # one x for every point


def test_the_early_level_is_a_floored_median_and_the_ratio_compares_the_last_two_windows():
    assert early_level(np.array([-0.1, 0.2, -0.05]), floor=1.0) == 1.0  # initial Q ~0: the floor
    assert early_level(np.array([-250.0, 10.0, 300.0]), floor=1.0) == 250.0
    assert window_ratio(np.array([9.0, 1.0, 1.0, 2.0, -2.0]), 2, floor=0.5) == pytest.approx(2.0)
    assert window_ratio(np.array([0.0, 0.0, 3.0, 3.0]), 2, floor=0.5) == pytest.approx(6.0)
