import numpy as np
import pytest

from td3drive.analysis.criteria import DEFAULTS
from td3drive.analysis.events import Series
from td3drive.analysis.learning import (
    DECLINING,
    FLAT,
    IMPROVING,
    TOO_EARLY,
    UpdateBudget,
    bootstrap_change,
    learning_progress,
    update_budget,
)
from td3drive.core import tags

TH = dict(DEFAULTS)


def S(values, every=1000):
    v = np.asarray(values, float)
    return Series(np.arange(1, len(v) + 1) * every, np.zeros(len(v)), v)


def noisy(trend, n=30, sd=5.0, seed=0):
    return np.linspace(*trend, n) + np.random.default_rng(seed).normal(0, sd, n)


MANY = UpdateBudget(1.0, 50_000, "test")


@pytest.mark.parametrize(
    "trend,status", [((-1200, -600), IMPROVING), ((-1070, -1480), DECLINING), ((-900, -900), FLAT)]
)
def test_progress_of_the_episode_return(trend, status):
    p = learning_progress({tags.EPISODE_REWARD: S(noisy(trend, sd=40))}, TH, MANY)
    assert p.status == status and p.source == tags.EPISODE_REWARD and p.points == 30
    assert p.ci[0] <= p.change <= p.ci[1]


def test_flat_is_too_early_before_enough_updates_and_a_decline_is_a_decline_at_any_count():
    flat = {tags.EPISODE_REWARD: S(noisy((-92, -92), sd=1))}
    assert learning_progress(flat, TH, UpdateBudget(0.02, 380, "test")).status == TOO_EARLY
    assert learning_progress(flat, TH, UpdateBudget(1.0, 20_000, "test")).status == FLAT
    falling = {tags.EPISODE_REWARD: S(noisy((-1070, -1480), sd=30))}
    assert learning_progress(falling, TH, UpdateBudget(0.02, 380, "test")).status == DECLINING


def test_evaluations_are_preferred_and_too_few_points_are_too_early():
    series = {tags.EPISODE_REWARD: S(noisy((0, 0))), tags.EVAL_MEAN_REWARD: S([-50, 10, 90, 200, 310, 420, 500], 2500)}
    p = learning_progress(series, TH, MANY)
    assert p.source == tags.EVAL_MEAN_REWARD and p.status == IMPROVING
    # thirds of 7 points: the first and last 2
    assert p.early_mean == pytest.approx(-20) and p.late_mean == pytest.approx(460)
    few = {tags.EPISODE_REWARD: S([1.0, 2.0, 3.0])}
    assert learning_progress(few, TH, MANY).status == TOO_EARLY
    assert learning_progress({}, TH, MANY) is None


def test_bootstrap_interval_of_the_change_by_hand():
    # Each group constant: every resample has the same means, so the interval is the point itself.
    assert bootstrap_change(np.full(5, 2.0), np.full(5, 7.0)) == (5.0, 5.0)
    lo, hi = bootstrap_change(np.array([0.0, 10.0]), np.array([0.0, 10.0]), reps=20_000)
    # mean of 2 draws from {0, 10}: 0, 5, 10 with probability 1/4, 1/2, 1/4; the difference spans -10..10
    assert lo == -10.0 and hi == 10.0


def test_update_budget_from_config_and_from_a_logged_counter():
    series = {tags.CRITIC_LOSS: S(np.ones(20))}  # steps 1000..20000
    cfg = {"training": {"train_freq": 50, "gradient_steps": 1, "learning_starts": 1000}}
    b = update_budget(series, cfg)
    assert b.per_step == 0.02 and b.updates == pytest.approx(0.02 * 19_000)
    sb3 = {"train/n_updates": Series(np.array([10_000, 20_000]), np.zeros(2), np.array([180.0, 380.0]))}
    b = update_budget(sb3, None)
    assert b.per_step == pytest.approx(0.019) and b.updates == 380 and "n_updates" in b.source
    assert update_budget(series, None) is None


def test_the_untrained_policys_evaluation_at_step_0_is_the_reference_level():
    ev = Series(np.array([0, 2500, 5000, 7500, 10000, 12500, 15000]), np.zeros(7),
                np.array([-92.5, -57.7, -7.7, 5.9, 27.1, 260.3, 445.6]))
    p = learning_progress({tags.EVAL_MEAN_REWARD: ev}, TH, MANY)
    assert p.start_level == -92.5 and "scored -92.5" in p.reason and p.status == IMPROVING
    shifted = Series(ev.steps + 2500, ev.wall_times, ev.values)  # no point at step 0: not known
    assert learning_progress({tags.EVAL_MEAN_REWARD: shifted}, TH, MANY).start_level is None
