import math

import pytest

from td3drive.core import tags
from td3drive.metrics import EpisodeDriving, summarize


def episode(steps):
    e = EpisodeDriving()
    for s in steps:
        e.add(*s)
    return e


def test_driving_metrics_by_hand():
    # Episode A: 600 m of a 1000 m route, one collision, at 20 m/s. Episode B: the full 1000 m route
    # (1200 m driven, completion capped at 100%), two lane invasions, at 10 m/s.
    a = episode([(300.0, 1000.0, False, False, 20.0), (300.0, 1000.0, True, False, 20.0)])
    b = episode([(600.0, 1000.0, False, True, 10.0), (600.0, 1000.0, False, True, 10.0)])
    assert a.route_completion == 0.6 and b.route_completion == 1.0
    assert a.driving_score == pytest.approx(0.6 * 0.6) and b.driving_score == 1.0
    m = summarize([a, b])
    assert m[tags.EVAL_ROUTE_COMPLETION] == pytest.approx(80.0)
    assert m[tags.EVAL_COLLISIONS_PER_KM] == pytest.approx(1 / 1.8)
    assert m[tags.EVAL_LANE_INVASIONS_PER_KM] == pytest.approx(2 / 1.8)
    assert m[tags.EVAL_MEAN_SPEED] == pytest.approx(15.0)
    assert m[tags.EVAL_DRIVING_SCORE] == pytest.approx(100 * (0.36 + 1.0) / 2)


def test_backwards_driving_completes_nothing_and_no_distance_gives_nan_rates():
    e = episode([(-50.0, 1000.0, False, False, 5.0)])
    assert e.route_completion == 0.0
    m = summarize([e])
    assert m[tags.EVAL_ROUTE_COMPLETION] == 0.0 and math.isnan(m[tags.EVAL_COLLISIONS_PER_KM])
