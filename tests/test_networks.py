import torch

from td3drive.agent.networks import Actor, Critic, Encoder, NatureCNN, parameter_groups


def test_nature_cnn_shapes_and_layers():
    cnn = NatureCNN()
    convs = [m for m in cnn.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
    assert cnn.fc[0].in_features == 64 * 7 * 7
    out = cnn(torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8))
    assert out.shape == (3, 512) and (out >= 0).all()


def test_actor_is_tanh_bounded_and_critic_returns_twins():
    torch.manual_seed(0)
    enc = Encoder(5)
    actor = Actor(enc.out_dim, 32)
    with torch.no_grad():
        for p in actor.parameters():
            p.mul_(1000.0)
    feats = enc(torch.randint(0, 256, (8, 4, 84, 84), dtype=torch.uint8), torch.randn(8, 5) * 100)
    a = actor(feats)
    assert a.shape == (8, 2) and a.abs().max() <= 1.0
    q1, q2 = Critic(enc, 32)(feats, a)
    assert q1.shape == q2.shape == (8,) and not torch.equal(q1, q2)


def test_parameter_groups_by_encoder_mode():
    critic = Critic(Encoder(5), 32)
    shared = parameter_groups(Actor(critic.encoder.out_dim, 32), critic)
    assert set(shared) == {"actor_mlp", "critic_cnn", "critic_mlp"}
    separate = parameter_groups(Actor(critic.encoder.out_dim, 32, encoder=Encoder(5)), critic)
    assert set(separate) == {"actor_cnn", "actor_mlp", "critic_cnn", "critic_mlp"}
    # Groups partition each network's parameters.
    n = lambda ps: sum(p.numel() for p in ps)
    assert n(separate["critic_cnn"]) + n(separate["critic_mlp"]) == n(critic.parameters())


def test_an_encoder_without_a_vector_reads_the_image_only():
    torch.manual_seed(0)
    enc = Encoder(0, features_dim=50, trunk="layernorm")
    image = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    out = enc(image, torch.randn(3, 14))
    assert enc.out_dim == 50 and out.shape == (3, 50)
    torch.testing.assert_close(out, enc(image, torch.randn(3, 14) * 100))  # the vector changes nothing
    critic = Critic(enc, 32)
    groups = parameter_groups(Actor(enc.out_dim, 32), critic)
    n = lambda ps: sum(p.numel() for p in ps)
    assert n(groups["critic_cnn"]) + n(groups["critic_mlp"]) == n(critic.parameters())
    assert n(groups["critic_mlp"]) == n(critic.q1.parameters()) + n(critic.q2.parameters())
