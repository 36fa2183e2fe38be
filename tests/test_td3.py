import numpy as np
import pytest
import torch

from td3drive.agent.replay import Batch
from td3drive.agent.td3 import TD3, clipped_double_q_target, smoothed_target_action
from td3drive.config import AgentConfig
from td3drive.core import tags

B, K = 8, 3


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.randint(0, 256, (B, 4, 84, 84), dtype=torch.uint8, generator=g)
    return Batch(img(), torch.randn(B, K, generator=g), torch.rand(B, 2, generator=g) * 2 - 1,
                 torch.randn(B, generator=g), img(), torch.randn(B, K, generator=g), torch.full((B,), 0.99))


def agent(**kw):
    torch.manual_seed(0)
    cfg = dict(features_dim=32, hidden_dim=16, augment_pad=0)  # augmentation: tests/test_augment.py
    cfg.update(kw)
    return TD3(K, AgentConfig(**cfg))


def test_clipped_double_q_target_by_hand():
    r = torch.tensor([1.0, 1.0, -2.0])
    discount = torch.tensor([0.5, 0.0, 0.25])  # gamma 0.5: one step, a termination, two steps (n-step)
    q1 = torch.tensor([10.0, 10.0, 3.0])
    q2 = torch.tensor([4.0, 20.0, 5.0])
    y = clipped_double_q_target(r, discount, q1, q2)
    # min of twins (4, -, 3), discounted by gamma^m; the terminated row does not bootstrap
    assert y.tolist() == [3.0, 1.0, -1.25]


def test_target_smoothing_noise_is_clipped_then_action_clipped():
    torch.manual_seed(0)
    a = torch.zeros(10_000, 2)
    s = smoothed_target_action(a, policy_noise=10.0, noise_clip=0.5)
    assert s.abs().max().item() == pytest.approx(0.5)
    assert (s.abs() == 0.5).float().mean() > 0.9  # huge noise is clipped to +-0.5
    s = smoothed_target_action(torch.full((1000, 2), 0.9), 0.2, 0.5)
    assert s.max().item() == 1.0 and s.min().item() >= 0.4 - 1e-6


def test_actor_trains_exactly_every_policy_freq_th_update():
    ag = agent(policy_freq=3)
    trained = []
    for i in range(1, 10):
        before = [p.clone() for p in ag.actor.parameters()]
        tel = ag.update(batch(i))
        changed = any(not torch.equal(a, b) for a, b in zip(before, ag.actor.parameters()))
        assert changed == (tags.ACTOR_LOSS in tel)
        trained.append(changed)
    assert trained == [i % 3 == 0 for i in range(1, 10)]


def test_targets_move_by_polyak_only_on_actor_updates():
    ag = agent(tau=0.25, policy_freq=2)
    with torch.no_grad():
        for p in ag.critic_target.parameters():
            p.zero_()
    ag.update(batch(1))  # critic-only update: targets untouched
    assert all((p == 0).all() for p in ag.critic_target.parameters())
    ag.update(batch(2))
    for online, target in zip(ag.critic.parameters(), ag.critic_target.parameters()):
        torch.testing.assert_close(target, 0.25 * online)


def test_clipping_bounds_the_post_clip_norm_and_logs_both():
    ag = agent(max_grad_norm=1e-3, policy_freq=1)
    tel = ag.update(batch())
    for g in ("actor_mlp", "critic_cnn", "critic_mlp"):
        assert tel[tags.grad_norm(g)] > 1e-3
        assert tel[tags.grad_norm_clipped(g)] <= 1e-3 * (1 + 1e-4)
    off = agent(max_grad_norm=None, policy_freq=1).update(batch())
    for g in ("actor_mlp", "critic_cnn", "critic_mlp"):
        assert off[tags.grad_norm_clipped(g)] == pytest.approx(off[tags.grad_norm(g)])


def test_telemetry_matches_the_batch_and_q_pi_is_minus_actor_loss():
    ag = agent(policy_freq=1)
    b = batch()
    with torch.no_grad():
        q1, q2 = ag.critic(ag.critic.encoder(b.image, b.vector), b.action)
    tel = ag.update(b)
    assert tel[tags.Q1] == pytest.approx(q1.mean().item(), rel=1e-5)
    assert tel[tags.Q2] == pytest.approx(q2.mean().item(), rel=1e-5)
    assert tel[tags.Q_PI] == pytest.approx(-tel[tags.ACTOR_LOSS])
    assert tags.grad_norm("actor_cnn") not in tel  # critic mode: the actor has no CNN


def test_critic_mode_actor_step_never_moves_the_encoder():
    # A vanishing critic lr makes the critic step a no-op, isolating what the actor step changes.
    for mode, encoder_moves in (("critic", False), ("separate", True)):
        ag = agent(encoder=mode, critic_lr=1e-30, policy_freq=1)
        crit_before = [p.clone() for p in ag.critic.encoder.parameters()]
        actor_enc = ag.actor.encoder if mode == "separate" else ag.critic.encoder
        actor_before = [p.clone() for p in actor_enc.parameters()]
        tel = ag.update(batch())
        assert tags.ACTOR_LOSS in tel
        # Equal up to the critic's 1e-30-lr step (a denormal nudge to the LayerNorm's zero-initialised bias);
        # an actor step would move weights by ~lr = 3e-4.
        same = lambda a, b: torch.allclose(a, b, rtol=0.0, atol=1e-30)
        assert all(same(a, b) for a, b in zip(crit_before, ag.critic.encoder.parameters()))
        moved = any(not same(a, b) for a, b in zip(actor_before, actor_enc.parameters()))
        assert moved == encoder_moves, mode
        if mode == "separate":
            assert tel[tags.grad_norm("actor_cnn")] > 0


def test_act_single_and_batched_agree():
    ag = agent()
    b = batch()
    many = ag.act(b.image.numpy(), b.vector.numpy())
    one = ag.act(b.image[0].numpy(), b.vector[0].numpy())
    assert many.shape == (B, 2) and one.shape == (2,)
    np.testing.assert_allclose(many[0], one, atol=1e-6)


def test_bf16_runs_the_encoders_in_bfloat16_and_keeps_everything_else_fp32():
    seen = []
    fp32, bf16 = agent(), agent(precision="bf16")
    bf16.critic.load_state_dict(fp32.critic.state_dict())
    bf16.critic_target.load_state_dict(fp32.critic_target.state_dict())
    bf16.actor.load_state_dict(fp32.actor.state_dict())
    bf16.actor_target.load_state_dict(fp32.actor_target.state_dict())
    conv = bf16.critic.encoder.cnn.convs[0]
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    b = batch()
    torch.manual_seed(1)
    a = fp32.update(b)
    torch.manual_seed(1)  # the same target-smoothing noise
    c = bf16.update(b)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in bf16.critic.parameters())
    assert bf16.critic_optimizer.state[conv.weight]["exp_avg"].dtype == torch.float32
    # Same weights, same batch: bf16 (8 mantissa bits) moves Q by well under 5 % — and not by zero.
    for tag in (tags.Q1, tags.Q2, tags.CRITIC_LOSS):
        assert c[tag] == pytest.approx(a[tag], rel=0.05, abs=1e-3)
    assert c[tags.Q1] != a[tags.Q1]
    img = np.zeros((4, 84, 84), np.uint8)
    assert bf16.act(img, np.zeros(bf16.critic.encoder.vector[0].in_features, np.float32)).dtype == np.float32


@pytest.mark.parametrize("encoder", ["critic", "separate"])
def test_use_vector_false_gives_a_pixels_only_agent(encoder):
    ag = agent(use_vector=False, encoder=encoder)
    b = batch()
    a = ag.act(b.image.numpy(), b.vector.numpy())
    np.testing.assert_allclose(ag.act(b.image.numpy(), b.vector.numpy() * 100 + 7), a, atol=1e-6)
    assert ag.critic.encoder.vector is None and ag.critic.encoder.out_dim == 32
    before = {k: v.clone() for k, v in ag.critic.state_dict().items()}
    ag.update(b)
    ag.update(b)  # the second one trains the actor too (policy_freq 2)
    assert all(torch.isfinite(v).all() for v in ag.critic.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in ag.critic.state_dict().items())
    with_vector = agent(encoder=encoder)
    assert not np.allclose(with_vector.act(b.image.numpy(), b.vector.numpy() * 100 + 7),
                           with_vector.act(b.image.numpy(), b.vector.numpy()))
