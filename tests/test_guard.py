import math

import numpy as np
import torch

from td3drive.config import GuardConfig
from td3drive.core import tags
from td3drive.guard import Guard
from tests.test_td3 import B, agent, batch


def names(alerts):
    return sorted(a.tag.split("/")[1] for a in alerts)


def test_thresholds_and_policies_by_hand():
    g = Guard(GuardConfig(grad_norm_warning=100, grad_norm_critical=1000, q_abs_max=50, grad_norm_window=1))
    ok = {tags.grad_norm("critic_cnn"): 99.0, tags.Q1: -49.0, tags.Q2: 10.0, tags.CRITIC_LOSS: 1.0}
    assert g.check(ok, 1) == []
    warn = g.check({**ok, tags.grad_norm("actor_mlp"): 101.0}, 2)
    assert names(warn) == ["gradient_explosion_warning"] and not warn[0].stop
    crit = g.check({**ok, tags.grad_norm("critic_mlp"): 1001.0, tags.Q2: -51.0}, 3)
    assert names(crit) == ["gradient_explosion_critical", "gradient_explosion_warning", "q_value_explosion"]
    assert {a.tag: a.stop for a in crit} == {tags.ALERT_GRAD_CRITICAL: True, tags.ALERT_GRAD_WARNING: False,
                                           tags.ALERT_Q_EXPLOSION: False}
    assert g.stop.tag == tags.ALERT_GRAD_CRITICAL and g.stop.step == 3 and "1001 > 1000" in g.stop.message
    assert g.first_alert_step == 2
    # Each log point reports what fired since the previous one, then starts afresh.
    logged = g.log_values()
    assert logged[tags.ALERT_Q_EXPLOSION] == 1.0 and logged[tags.ALERT_NON_FINITE] == 0.0 and len(logged) == 5
    assert set(g.log_values().values()) == {0.0}
    assert g.summary() == "gradient_explosion_warning x2, gradient_explosion_critical x1, q_value_explosion x1"


def test_one_outlier_batch_is_not_an_explosion_a_norm_that_stays_high_is():
    """The pre-clip norm is judged by its median over the last grad_norm_window updates of each group: the
    healthy CarRacing run that the single-update rule stopped had one batch at 1.02e5 among ~5e3."""
    g = Guard(GuardConfig(grad_norm_window=20))
    norm = tags.grad_norm("critic_cnn")
    for step in range(1, 41):
        assert g.check({norm: 5_000.0 if step != 10 else 102_147.0}, step) == []
    # from now on every update is above the critical threshold: the median (of 20: the mean of the middle
    # two) reaches the warning on the 10th of them and the critical threshold on the 11th
    fired = {step: names(g.check({norm: 150_000.0}, step)) for step in range(41, 61)}
    assert [s for s, n in fired.items() if n][:2] == [50, 51] and fired[50] == ["gradient_explosion_warning"]
    assert g.stop.tag == tags.ALERT_GRAD_CRITICAL and g.stop.step == 51
    assert "critic_cnn_norm = 1.5e+05 (median of the last 20 updates) > 100000 (pre-clip)" in g.stop.message
    # groups have their own windows: another group's high norms do not lift this one's median
    h = Guard(GuardConfig(grad_norm_window=3))
    h.check({tags.grad_norm("actor_mlp"): 1e6, norm: 1.0}, 1)
    assert [a.tag for a in h.check({tags.grad_norm("actor_mlp"): 1e6, norm: 1.0}, 2)] == [
        tags.ALERT_GRAD_CRITICAL, tags.ALERT_GRAD_WARNING]
    assert "actor_mlp" in h.stop.message


def test_the_norm_windows_survive_a_checkpoint():
    g = Guard(GuardConfig(grad_norm_window=3))
    norm = tags.grad_norm("critic_cnn")
    g.check({norm: 2e5}, 1)
    g.check({norm: 2e5}, 2)
    g.stop = None
    restored = Guard(GuardConfig(grad_norm_window=3))
    restored.load_state_dict(g.state_dict())
    assert restored.check({norm: 1.0}, 3)[0].tag == tags.ALERT_GRAD_CRITICAL  # median of 2e5, 2e5, 1
    old = g.state_dict()
    del old["norms"]  # a checkpoint written before the windows existed
    fresh = Guard(GuardConfig(grad_norm_window=3))
    fresh.load_state_dict(old)
    assert fresh.check({norm: 1.0}, 3) == []


def test_policies_are_configurable():
    g = Guard(GuardConfig(on_non_finite="warn", on_q_value_explosion="stop", q_abs_max=1))
    (a,) = g.check({tags.CRITIC_LOSS: math.nan}, 5)
    assert a.tag == tags.ALERT_NON_FINITE and not a.stop and g.stop is None
    g.check({tags.Q1: 2.0}, 6)
    assert g.stop.tag == tags.ALERT_Q_EXPLOSION


def test_actor_divergence_needs_growth_beyond_the_early_level_and_a_rising_trend():
    cfg = GuardConfig(actor_loss_window=5, actor_loss_growth=10, actor_loss_floor=1)
    g = Guard(cfg)
    for v in (-50, -40, -60, -50, -55):  # early level: median 50
        assert g.check({tags.ACTOR_LOSS: v}, 0) == []
    assert g.early_level == 50
    # One spike beyond 10x after a flat stretch is not a rising trend over the window ...
    for v in (-50, -50, -50, -50):
        g.check({tags.ACTOR_LOSS: v}, 0)
    assert g.check({tags.ACTOR_LOSS: -400.0}, 0) == []  # below 10x
    # ... a steady rise past 10x is.
    fired = [names(g.check({tags.ACTOR_LOSS: -50.0 * 2**k}, k)) for k in range(1, 6)]
    assert fired == [[], [], [], ["actor_loss_divergence"], ["actor_loss_divergence"]]  # 800 and 1600 > 500


def test_the_reference_failure_is_caught_before_it_grows_1000x():
    """The reference run's telemetry: actor loss -250 -> -2.76e9 over 25 logged updates while every
    gradient norm stays small (1.9 / 23 / 0 / 2.5). Its guard stayed silent; ours must not."""
    g = Guard(GuardConfig(actor_loss_window=5))  # a short early window: the reference logged only 25 points
    actor = -250.0 * (2.76e9 / 250.0) ** (np.arange(25) / 24)
    first = None
    for i, loss in enumerate(actor):
        telemetry = {tags.ACTOR_LOSS: float(loss), tags.Q1: 39.0 + i, tags.Q2: 39.0 + i,
                     tags.grad_norm("actor_cnn"): 1.9, tags.grad_norm("critic_cnn"): 23.0,
                     tags.grad_norm("actor_mlp"): 0.0, tags.grad_norm("critic_mlp"): 2.5}
        alerts = g.check(telemetry, i)
        if first is None and alerts:
            first = (i, names(alerts))
    i, fired = first
    assert fired == ["actor_loss_divergence"]
    assert abs(actor[i]) / 250 < 1000, abs(actor[i]) / 250


def test_a_real_agent_made_to_diverge_is_caught_before_its_actor_loss_grows_1000x():
    """TD3 itself (not a stand-in) on rewards that grow 2% per update, as a reward-scaling bug would:
    the critic chases them and the actor loss diverges exponentially. The guard raises
    actor_loss_divergence at ~10x the early level, long before 1000x and before any gradient alert;
    left running, the same agent goes far past 1000x."""
    # The former 512-wide ReLU features (trunk relu): LayerNorm + tanh features bound what the heads read,
    # and at Adam's rate-limited steps this agent's actor loss then grows only ~40x in 500 updates.
    ag, g = agent(trunk="relu"), Guard(GuardConfig())
    batches = [batch(i) for i in range(8)]
    alert_at, losses, max_grad = None, [], 0.0
    for i in range(500):
        b = batches[i % 8]
        telemetry = ag.update(b._replace(reward=b.reward.abs() * 1.02**i))
        if tags.ACTOR_LOSS in telemetry:
            losses.append(abs(telemetry[tags.ACTOR_LOSS]))
        alerts = g.check(telemetry, i)
        if alert_at is None:
            max_grad = max([max_grad] + [v for k, v in telemetry.items() if k.endswith("_norm")])
            if alerts:
                alert_at = (i, names(alerts), losses[-1])
    step, fired, loss_at_alert = alert_at
    assert fired == ["actor_loss_divergence"]  # the first alert of the run
    assert loss_at_alert / g.early_level < 1000 and max_grad < GuardConfig().grad_norm_warning
    assert losses[-1] / g.early_level > 1000  # a real divergence, not a blip


def test_an_update_with_non_finite_values_is_never_applied():
    ag, g = agent(policy_freq=1), Guard(GuardConfig())
    ag.update(batch(0))
    before = {k: v.clone() for k, v in ag.critic.state_dict().items()}
    actor_before = {k: v.clone() for k, v in ag.actor.state_dict().items()}
    b = batch(1)
    reward = torch.zeros(B)
    reward[3] = math.nan  # one poisoned transition poisons the critic loss
    telemetry = ag.update(b._replace(reward=reward))
    (a,) = g.check(telemetry, 7)
    assert a.tag == tags.ALERT_NON_FINITE and a.stop and "not applied (1 skipped so far)" in a.message
    assert ag.skipped_updates == 1 and telemetry[tags.SKIPPED_UPDATES] == 1
    for k, v in ag.critic.state_dict().items():
        assert torch.equal(v, before[k]), k
    # The actor's loss on the same batch was finite: its step was applied (independently checked).
    assert any(not torch.equal(v, actor_before[k]) for k, v in ag.actor.state_dict().items())
    assert all(torch.isfinite(p).all() for p in ag.critic.parameters())


def test_guard_state_round_trips():
    cfg = GuardConfig(actor_loss_window=3)
    g = Guard(cfg)
    for v in (-5.0, -6.0, -7.0, -8.0):
        g.check({tags.ACTOR_LOSS: v, tags.Q1: 2e4}, 1)
    h = Guard(cfg)
    h.load_state_dict(g.state_dict())
    assert h.early_level == g.early_level == 6 and list(h.recent) == list(g.recent)
    assert h.counts == g.counts and h.first_alert_step == 1


def test_a_learning_agents_slow_rise_in_q_is_not_a_divergence():
    """What a CarRacing agent that learns to drive logs: |actor loss| = |Q(s, pi(s))| from ~0.05 to ~20
    over 7,000 actor updates, noisy batch to batch. 400x its early level, but 1.02x per 50 updates."""
    g = Guard(GuardConfig())
    rng = np.random.default_rng(0)
    level = np.geomspace(0.05, 20, 7000) * (1 + 0.3 * rng.standard_normal(7000))
    fired = [a for i, v in enumerate(level) for a in g.check({tags.ACTOR_LOSS: -float(v)}, i)]
    assert fired == []
    # The same agent with its loss multiplying 4% per update from there on is caught within ~100 updates.
    for k in range(1, 200):
        if g.check({tags.ACTOR_LOSS: -20.0 * 1.04**k}, 7000 + k):
            break
    assert k < 100
