import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from td3drive.analysis import stats


def test_iqm_by_hand_and_against_scipy():
    # sorted: 1 2 3 4 5 6 7 100 -> drop 2 from each end -> mean(3, 4, 5, 6) = 4.5 (the mean would be 16).
    scores = [7, 100, 1, 5, 3, 6, 2, 4]
    assert stats.iqm(scores) == 4.5
    assert stats.mean(scores) == 16.0
    # Five seeds: int(0.25 * 5) = 1 dropped from each end.
    assert stats.iqm([10, -50, 3, 4, 5]) == pytest.approx(4.0)
    # Fewer than four scores: nothing is trimmed.
    assert stats.iqm([1, 2, 9]) == 4.0
    rng = np.random.default_rng(0)
    for n in (4, 5, 7, 10, 33):
        x = rng.normal(size=(n, 3))
        assert stats.iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25, axis=None))


def test_bootstrap_ci_matches_the_exact_bootstrap_distribution():
    # Five seeds have 5^5 = 3125 equally likely resamples: the exact percentile interval of the IQM.
    scores = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    exact = np.sort([stats.iqm(scores[list(idx)]) for idx in itertools.product(range(5), repeat=5)])
    lo, hi = stats.bootstrap_ci(scores, reps=50_000, seed=1)
    # By hand: 2.5 % of the resamples have IQM <= 4/3 (e.g. 1, 1, 1, 2, x -> mean(1, 1, 2)); 97.5 % <= 40/3.
    assert np.quantile(exact, 0.025) == pytest.approx(4 / 3) and np.quantile(exact, 0.975) == pytest.approx(40 / 3)
    assert lo == pytest.approx(4 / 3) and hi == pytest.approx(40 / 3)
    # Deterministic in the seed; degenerate data gives a zero-width interval.
    assert stats.bootstrap_ci(scores, reps=1000, seed=3) == stats.bootstrap_ci(scores, reps=1000, seed=3)
    assert stats.bootstrap_ci([5.0, 5.0, 5.0], reps=500) == (5.0, 5.0)


def test_the_bootstrap_is_stratified_by_task():
    a, b = [0.0, 1.0, 2.0], [100.0, 101.0, 102.0]
    scores = np.column_stack([a, b])
    res = stats.stratified_resample(scores, 2000, np.random.default_rng(0))
    assert res.shape == (2000, 3, 2)
    assert set(np.unique(res[:, :, 0])) <= set(a) and set(np.unique(res[:, :, 1])) <= set(b)
    # Every replicate keeps three runs of each task, so the pooled mean never leaves [50, 52];
    # a bootstrap that pooled the tasks first would draw all-low or all-high replicates.
    means = res.reshape(2000, -1).mean(axis=1)
    assert means.min() >= 50.0 and means.max() <= 52.0
    lo, hi = stats.bootstrap_ci(scores, statistic=lambda x: x.reshape(len(x), -1).mean(axis=1), reps=2000)
    assert 50.0 <= lo < 51.0 < hi <= 52.0


def test_probability_of_improvement_by_hand():
    x, y = [1.0, 2.0, 3.0], [2.0, 2.0, 0.0]
    # x=1 beats only 0 (1 win); x=2 ties twice and beats 0 (0.5 + 0.5 + 1); x=3 beats all (3): 6 / 9.
    assert stats.probability_of_improvement(x, y) == pytest.approx(6 / 9)
    assert stats.probability_of_improvement(y, x) == pytest.approx(3 / 9)
    # Averaged over tasks: task 1 as above (6/9), task 2 x always wins (1).
    assert stats.probability_of_improvement([[1, 5], [2, 5], [3, 5]], [[2, 0], [2, 0], [0, 0]]) == pytest.approx(
        (6 / 9 + 1) / 2
    )
    assert stats.probability_of_improvement_ci([5, 6, 7], [1, 2, 3], reps=500) == (1.0, 1.0)
    lo, hi = stats.probability_of_improvement_ci([1, 2, 3, 4], [1, 2, 3, 4], reps=4000)
    assert lo < 0.5 < hi


def test_bad_scores_are_rejected():
    with pytest.raises(ValueError, match="at least one run"):
        stats.iqm([])
    with pytest.raises(ValueError, match="finite"):
        stats.iqm([1.0, float("nan")])
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement([[1, 2]], [[1]])
