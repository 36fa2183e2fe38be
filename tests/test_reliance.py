"""The drop's interval and the camera verdict: numbers a wrong bootstrap or a wrong threshold would get wrong."""

import numpy as np
import pytest

from td3drive.analysis.reliance import BARELY, UNUSED, USES, Drop, camera_verdict, paired_drop_ci


def test_paired_drop_ci_numbers():
    given = np.array([10.0, 12.0, 14.0, 16.0])
    mean, low, high = paired_drop_ci(given, given - np.array([1.0, 2.0, 3.0, 4.0]))
    assert mean == pytest.approx(2.5)
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert paired_drop_ci(given, given) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="paired"):
        paired_drop_ci(given, given[:3])


def test_pairing_removes_the_spread_between_tracks():
    # Tracks differ by hundreds; each loses exactly 50: paired, the interval is the point 50, not +-hundreds.
    given = np.array([200.0, 900.0, 450.0, 700.0, 300.0])
    assert paired_drop_ci(given, given - 50.0) == pytest.approx((50.0, 50.0, 50.0))


def test_a_measurable_but_small_drop_is_barely_using_the_camera():
    # The numbers: 711.8 normal, 703.2 frozen; even a measurable drop of 8.6 is not the camera driving.
    line = camera_verdict(711.8, 703.2, Drop(8.6, 2.0, 15.0))
    assert line.startswith("the policy barely uses its camera")
    assert not Drop(8.6, 2.0, 15.0).carries(711.8) and Drop(400.0, 300.0, 500.0).carries(711.8)


def test_use_levels_at_their_edges():
    assert Drop(5.0, 0.0, 10.0).use(700.0) == UNUSED  # the interval touches 0: within noise
    assert Drop(69.9, 60.0, 80.0).use(700.0) == BARELY  # just under 10 % of 700
    assert Drop(70.0, 60.0, 80.0).use(700.0) == USES
    assert Drop(70.0, 60.0, 80.0).use(-700.0) == USES  # the size of the return, whatever its sign


def test_camera_verdict_names_both_inputs():
    line = camera_verdict(782.8, -82.8, Drop(865.6, 771.7, 946.5), Drop(12.0, -3.0, 30.0))
    assert line == ("the policy uses its camera: freezing it costs 865.6 of 782.8 (95% CI 771.7 to 946.5); "
                    "neutralising the ego vector costs 12.0 (95% CI -3.0 to 30.0)")
    assert camera_verdict(703.2, 700.0, Drop(3.2, -4.0, 9.0)).startswith(
        "the policy does not use its camera: with the camera frozen it still returns 700.0")
