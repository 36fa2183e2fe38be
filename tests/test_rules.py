import numpy as np
import pytest

from td3drive.analysis.criteria import DEFAULTS
from td3drive.analysis.events import Series
from td3drive.analysis.rules import CRITICAL, INFO, WARNING, evaluate_rules, verdict
from td3drive.core import tags

TH = dict(DEFAULTS)


def S(values, steps=None):
    v = np.asarray(values, float)
    return Series(np.arange(len(v)) * 100 if steps is None else np.asarray(steps), np.zeros(len(v)), v)


def ids(series, max_grad_norm=None, th=TH):
    findings, _ = evaluate_rules(series, th, max_grad_norm)
    return {(f.id, f.severity) for f in findings}, findings


def base(n=30, seed=0):
    """Healthy-looking core series that trip nothing on their own."""
    rng = np.random.default_rng(seed)
    q = np.linspace(1, 20, n)
    return {
        tags.CRITIC_LOSS: S(1 + 0.1 * rng.random(n)), tags.ACTOR_LOSS: S(-q),
        tags.Q1: S(q), tags.Q2: S(q + 0.1), tags.grad_norm("critic_cnn"): S(1 + rng.random(n)),
        tags.grad_norm("actor_mlp"): S(0.5 + rng.random(n)), tags.EPISODE_REWARD: S(np.linspace(0, 100, n)),
    }


def test_non_finite_is_critical_with_first_step():
    s = base()
    s[tags.CRITIC_LOSS] = S([1.0, 2.0, np.nan, 3.0, np.inf])
    found, findings = ids(s)
    assert ("non_finite", CRITICAL) in found
    f = next(f for f in findings if f.id == "non_finite")
    assert f.evidence["count"] == 2 and f.evidence["first_step"] == 200
    assert ("non_finite", CRITICAL) not in ids(base())[0]


@pytest.mark.parametrize("peak, expected", [(60_000, ("gradient_explosion_warning", WARNING)),
                                            (150_000, ("gradient_explosion_critical", CRITICAL))])
def test_gradient_explosion_thresholds(peak, expected):
    s = base()
    v = np.ones(30)
    v[20] = peak  # one outlier batch: a jump, not an explosion (the median of 5 logged points stays at 1)
    s[tags.grad_norm("critic_cnn")] = S(v)
    found, _ = ids(s)
    assert ("gradient_jump", WARNING) in found and not any(i.startswith("gradient_explosion") for i, _ in found)
    v[20:23] = peak  # three of five logged points: the median is over the threshold
    found, findings = ids(s)
    assert expected in found
    f = next(f for f in findings if f.id == expected[0])
    assert f.evidence["at_step"] == 2200 and f.evidence["points_over"] == 3 and f.evidence["max"] == peak
    v[22] = 1.0  # two of five: not yet
    assert not any(i.startswith("gradient_explosion") for i, _ in ids(s)[0])
    s[tags.grad_norm("critic_cnn")] = S(np.full(30, 40_000.0))  # high but below warning, no jump
    found, _ = ids(s)
    assert not any(i.startswith("gradient_explosion") or i == "gradient_jump" for i, _ in found)


def test_clipping_saturation_and_not_applied():
    s = base()
    s[tags.grad_norm("critic_cnn")] = S(np.full(30, 25.0))
    s[tags.grad_norm_clipped("critic_cnn")] = S(np.full(30, 10.0))
    found, _ = ids(s, max_grad_norm=10.0)
    assert ("clipping_saturation", WARNING) in found and ("clipping_not_applied", CRITICAL) not in found
    s[tags.grad_norm_clipped("critic_cnn")] = S(np.full(30, 25.0))
    assert ("clipping_not_applied", CRITICAL) in ids(s, max_grad_norm=10.0)[0]
    s[tags.grad_norm("critic_cnn")] = S(np.r_[np.full(10, 25.0), np.full(20, 5.0)])  # a third over: fine
    s[tags.grad_norm_clipped("critic_cnn")] = S(np.minimum(s[tags.grad_norm("critic_cnn")].values, 10))
    assert ("clipping_saturation", WARNING) not in ids(s, max_grad_norm=10.0)[0]


def test_dead_network_zero_or_constant_while_loss_changes():
    s = base()
    s[tags.grad_norm("actor_mlp")] = S(np.zeros(30))
    assert ("dead_network", CRITICAL) in ids(s)[0]
    s[tags.grad_norm("actor_mlp")] = S(np.full(30, 0.37))
    assert ("dead_network", CRITICAL) in ids(s)[0]
    s[tags.ACTOR_LOSS] = S(np.full(30, -3.0))  # nothing changes: not evidence of a broken graph
    assert ("dead_network", CRITICAL) not in ids(s)[0]


def test_actor_divergence_exponential_vs_q_following():
    s = base(n=25)
    s[tags.ACTOR_LOSS] = S(-250.0 * 2.0 ** np.arange(25))
    found, findings = ids(s)
    assert ("actor_loss_divergence", CRITICAL) in found and ("critic_exploitation", CRITICAL) in found
    f = next(f for f in findings if f.id == "actor_loss_divergence")
    assert "do not follow" in f.explanation and f.evidence["growth"] > 1e5
    # linear growth, not exponential: no divergence finding
    s[tags.ACTOR_LOSS] = S(-np.linspace(1, 100, 25))
    assert not any(i == "actor_loss_divergence" for i, _ in ids(s)[0])
    # exponential but the Q values follow: reported, but as information while |Q| is plausible
    q = 2.0 ** (np.arange(25) / 3)
    s[tags.ACTOR_LOSS], s[tags.Q1], s[tags.Q2] = S(-q), S(q), S(q)
    assert ("actor_loss_divergence", INFO) in ids(s)[0]


def test_critic_exploitation_only_far_outside_q_range():
    s = base()
    s[tags.Q_PI] = S(np.r_[np.linspace(1, 20, 29), 5000.0])
    assert ("critic_exploitation", CRITICAL) in ids(s)[0]
    s[tags.Q_PI] = S(np.linspace(1, 25, 30))
    assert ("critic_exploitation", CRITICAL) not in ids(s)[0]


def test_q_explosion_overestimation_and_twin_disagreement():
    s = base()
    s[tags.Q1] = S(np.linspace(1, 20_000, 30))
    assert ("q_value_explosion", CRITICAL) in ids(s)[0]
    s = base()
    s[tags.Q1], s[tags.Q2] = S(np.full(30, 5000.0)), S(np.full(30, 5000.0))  # returns reach 100
    assert ("q_value_overestimation", WARNING) in ids(s)[0]
    s = base()
    s[tags.Q2] = S(np.linspace(1, 20, 30) * 3)
    assert ("twin_critic_disagreement", WARNING) in ids(s)[0]


def test_growing_critic_loss_and_td_error():
    s = base()
    # Q settles at 20 (base: 1 -> 20): a loss 1000x up while Q^2 grew 400x is 2.5x relative to it, not a
    # finding; with Q flat at 20 the same loss is 1000x relative to Q^2.
    s[tags.CRITIC_LOSS] = S(np.geomspace(0.1, 100, 30))
    s[tags.TD_ERROR] = S(np.geomspace(0.1, 0.2, 30))
    found, _ = ids(s)
    assert ("critic_loss_growing", WARNING) not in found
    s[tags.Q1] = s[tags.Q2] = S(np.full(30, 20.0))
    s[tags.ACTOR_LOSS] = S(np.full(30, -20.0))
    found, findings = ids(s)
    assert ("critic_loss_growing", WARNING) in found and ("td_error_growing", WARNING) not in found
    f = next(f for f in findings if f.id == "critic_loss_growing")
    assert f.evidence["q_source"] == tags.Q1 and f.evidence["growth_relative_to_q"] == pytest.approx(
        np.geomspace(0.1, 100, 30)[-6:].mean() / np.geomspace(0.1, 100, 30)[:6].mean(), rel=1e-3)


def test_critic_loss_that_grows_with_q_squared_is_healthy_q_from_the_actor_loss_without_q():
    # SB3 on Pendulum logs no Q: the actor loss (-Q(s, pi(s))) gives the scale. Q 0 -> -150, loss ~ 0.01 Q^2.
    q = -np.linspace(1, 150, 30)
    s = {tags.CRITIC_LOSS: S(0.01 * q**2), tags.ACTOR_LOSS: S(-q), tags.EPISODE_REWARD: S(np.linspace(-1200, -600, 30))}
    found, findings = ids(s)
    assert ("critic_loss_growing", WARNING) not in found


def test_early_termination_collapse():
    s = base()
    steps = np.arange(1, 41) * 250
    s[tags.EPISODE_LENGTH] = S(np.r_[np.full(4, 400.0), np.full(36, 60.0)], steps)
    assert ("early_termination_collapse", WARNING) in ids(s)[0]
    s[tags.EPISODE_LENGTH] = S(np.full(40, 400.0), steps)
    assert ("early_termination_collapse", WARNING) not in ids(s)[0]


def test_ending_pays_when_most_episodes_leave_the_road_and_q_is_negative():
    # The shape of docs/BENCHMARKS.md 18c's run: random actions mostly crashed; after learning starts the
    # agent leaves the road in nearly every episode and Q sits near -offroad_penalty.
    s = base()
    steps = np.arange(1, 41) * 250
    leaves = np.r_[np.zeros(4), np.where(np.arange(36) % 10 == 0, 0.0, -10.0)]  # 32 of 36 later episodes
    s[tags.env_reward("offroad")] = S(leaves, steps)
    s[tags.env_reward("collision")] = S(np.r_[np.full(4, -50.0), np.zeros(36)], steps)
    s[tags.Q1] = S(np.full(30, -9.0), np.arange(30) * 350)
    found, findings = ids(s)
    assert ("ending_pays", WARNING) in found
    f = next(f for f in findings if f.id == "ending_pays")
    assert f.evidence["term"] == "offroad" and f.evidence["recent_episodes"] == 7
    assert f.evidence["recent_share"] == pytest.approx(6 / 7, abs=1e-3)  # the last 7 of 36: one lands on 0
    assert f.evidence["exploration_share"] == 0.0 and f.evidence["recent_mean_q"] == -9.0
    # The same terminations with Q above zero: crashes the agent did not choose (it expects to gain by driving).
    s[tags.Q1] = S(np.full(30, 25.0), np.arange(30) * 350)
    assert ("ending_pays", WARNING) not in ids(s)[0]
    # Negative Q, but most episodes do not end off the road: no finding.
    s[tags.Q1] = S(np.full(30, -9.0), np.arange(30) * 350)
    s[tags.env_reward("offroad")] = S(np.r_[np.zeros(4), np.where(np.arange(36) % 2 == 0, 0.0, -10.0)], steps)
    assert ("ending_pays", WARNING) not in ids(s)[0]


def test_missing_metrics_are_not_measured_not_passed():
    s = {tags.EPISODE_REWARD: S(np.linspace(0, 1, 10))}
    findings, criteria = evaluate_rules(s, TH)
    assert {f.evidence["missing"][0] for f in findings if f.id == "not_measured"} >= {
        tags.CRITIC_LOSS,
        tags.Q1,
        "gradients/",
    }
    status = {c.id: c.status for c in criteria}
    assert status["grad_norm"] == status["q_value"] == status["actor_loss"] == "not measured"
    assert verdict(findings) == "GO WITH WARNINGS"


def test_verdict_order():
    s = base()
    findings, _ = evaluate_rules(s, TH)
    assert verdict(findings) == "GO"
    assert [f.severity for f in findings] == sorted([f.severity for f in findings], key=[CRITICAL, WARNING, INFO].index)


def test_guard_alert_series_become_findings():
    s = base()
    s[tags.ALERT_NON_FINITE] = S([0, 0, 1, 0])
    s[tags.ALERT_Q_EXPLOSION] = S([0, 1, 1, 0])
    s[tags.ALERT_GRAD_WARNING] = S([0, 0, 0, 0])  # written, never raised: the reference system's case
    found, findings = ids(s)
    assert ("alert_non_finite", CRITICAL) in found and ("alert_q_value_explosion", WARNING) in found
    assert not any(f.id == "alert_gradient_explosion_warning" for f in findings)
    q = next(f for f in findings if f.id == "alert_q_value_explosion")
    assert q.evidence == {"tag": tags.ALERT_Q_EXPLOSION, "log_points_with_alert": 2, "of": 4, "first_step": 100}


def test_q_stable_compares_the_last_fifth_with_the_middle_fifth():
    s = base(n=50)  # Q rises linearly 1 -> 20: last fifth ~18.1, middle fifth ~10.5
    _, crit = evaluate_rules(s, TH)
    q = next(c for c in crit if c.id == "q_stable")
    assert q.status == "pass" and q.value == pytest.approx(
        np.linspace(1, 20, 50)[-10:].mean() / np.linspace(1, 20, 50)[20:30].mean()
    )
    s[tags.Q1] = S(1.1 ** np.arange(50))  # x1.1 per point: last fifth / middle fifth = 1.1^20 ~ 6.7
    found, _ = ids(s)
    assert ("q_value_growing", WARNING) in found
    assert next(c for c in evaluate_rules(s, TH)[1] if c.id == "q_stable").status == "fail"


def test_a_jump_to_a_small_gradient_norm_is_not_a_finding():
    # The actor's first gradients once the critic stops being flat (a real CarRacing run: 7.9e-6 -> 0.65).
    s = base()
    v = np.full(30, 1e-5)
    v[20:] = 0.65
    s[tags.grad_norm("actor_mlp")] = S(v)
    assert ("gradient_jump", WARNING) not in ids(s)[0]
    v[20:] = 5.0
    assert ("gradient_jump", WARNING) in ids(s)[0]


def test_driving_finding_reads_the_route_metrics_first_and_last():
    steps = [2500, 5000, 7500]
    s = base()
    assert not any(f.id == "driving" for f in ids(s)[1])  # no route metrics logged: no finding
    s.update({tags.EVAL_ROUTE_COMPLETION: S([12.0, 89.5, 96.7], steps),
              tags.EVAL_DRIVING_SCORE: S([12.0, 89.5, 96.7], steps),
              tags.EVAL_COLLISIONS_PER_KM: S([0.0, 0.0, 0.0], steps),
              tags.EVAL_LANE_INVASIONS_PER_KM: S([30.0, 4.72, 3.77], steps),
              tags.EVAL_MEAN_SPEED: S([5.0, 72.2, np.nan], steps)})
    found, findings = ids(s)
    f = next(f for f in findings if f.id == "driving")
    assert f.severity == INFO and f.steps == [7500]
    assert f.title == ("driving: route 96.7 % (12.0 % at the first evaluation), driving score 96.7, "
                       "0.00 collisions/km, 3.77 lane invasions/km, 72.2 m/s at step 7,500")  # the last finite speed
    assert f.evidence["lane_invasions_per_km_first"] == 30.0 and f.evidence["route_completion"] == 96.7
    assert ("driving", WARNING) not in found and ("driving", CRITICAL) not in found


def _ablated(given, frozen, low, high, steps=(50000, 100000)):
    """A run whose evaluations at ``steps`` logged the camera ablation."""
    steps = list(steps)
    s = base()
    s.update({tags.EVAL_MEAN_REWARD: S(given, steps),
              tags.ablated(tags.EVAL_MEAN_REWARD, "camera_frozen"): S(frozen, steps),
              tags.drop_ci("camera_frozen", "low"): S(low, steps),
              tags.drop_ci("camera_frozen", "high"): S(high, steps)})
    return s


def _camera(series):
    findings, matrix = evaluate_rules(series, TH)
    return next((f for f in findings if f.id == "camera_use"), None), next(c for c in matrix if c.id == "camera_use")


def test_a_policy_that_drives_without_its_camera_is_a_warning_at_the_newest_ablation():
    # The checkpoint: 711.8 normal, 703.2 frozen; the first ablation (an untrained policy) is not the one read.
    f, c = _camera(_ablated([-60.0, 711.8], [-800.0, 703.2], [500.0, -2.0], [900.0, 19.0]))
    assert f.severity == WARNING and f.steps == [100000]
    assert f.title.startswith("camera: the policy does not use its camera: with the camera frozen it still returns "
                              "703.2 (normal 711.8; drop 8.6")
    assert f.evidence["drop"] == pytest.approx(8.6) and f.evidence["ablations"] == 2
    assert c.status == "fail" and not c.gate and c.value == pytest.approx(8.6)
    assert verdict(*evaluate_rules(_ablated([-60.0, 711.8], [-800.0, 703.2], [500.0, -2.0], [900.0, 19.0]), TH)[:1]) \
        != "GO"


def test_a_policy_that_needs_its_camera_passes():
    f, c = _camera(_ablated([-50.0, 782.8], [-60.0, -82.8], [-5.0, 771.7], [25.0, 946.5]))
    assert f.severity == INFO and f.title.startswith("camera: the policy uses its camera: freezing it costs 865.6")
    assert c.status == "pass" and c.value == pytest.approx(865.6)


def test_no_ablation_logged_is_not_measured_and_half_logged_ones_are_skipped():
    f, c = _camera(base())
    assert f is None and c.status == "not measured"
    s = _ablated([-50.0, 782.8], [-60.0, -82.8], [-5.0, 771.7], [25.0, 946.5])
    s[tags.drop_ci("camera_frozen", "high")] = S([25.0], [50000])  # the newest interval was never written
    f, _ = _camera(s)
    assert f.steps == [50000] and f.severity == WARNING  # the older, complete ablation: within noise
