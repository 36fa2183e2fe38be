"""Networks: NatureCNN image encoder + vector MLP, a tanh actor head and twin critic heads.

Shapes: image ``uint8[B, 4, 84, 84]``, vector ``float32[B, k]``, action ``float32[B, 2]`` in [-1, 1].

Gradient groups (for per-group clipping and telemetry): ``*_cnn`` is the NatureCNN (convolutions
and its 512-wide projection); ``*_mlp`` is everything else (vector MLP and heads). In ``critic``
encoder mode there is one encoder, owned and trained by the critic; the actor reads its features
detached, so it has no ``actor_cnn`` group and its vector features come from the critic's MLP too.
"""

from __future__ import annotations

import torch
from torch import nn

from td3drive.core.spec import ACTION_DIM, FRAME_STACK, IMAGE_SIZE

VECTOR_FEATURES = 64


TRUNKS = ("relu", "layernorm")


def pixels(image: torch.Tensor) -> torch.Tensor:
    """``uint8[B, C, H, W]`` -> ``float32`` in [0, 1], channels-last: the convolutions' input. An update
    converts each batch once and hands it to every encoder that reads it (4 in ``separate`` mode); the
    layout change is most of the cost (~3 ms of 4 at batch 256 on 2 CPU threads)."""
    return image.to(torch.float32, memory_format=torch.channels_last).div_(255.0)


class NatureCNN(nn.Module):
    """Mnih et al. (2015): 32@8x8/4, 64@4x4/2, 64@3x3/1, then a linear layer to ``features_dim``.

    ``trunk`` is what follows that linear layer: ``relu`` (Nature DQN) or ``layernorm`` (LayerNorm,
    then tanh: DrQ-v2's trunk), which keeps every feature in [-1, 1] whatever the critic does to the
    convolutions, so the heads never read features that drift in scale.
    """

    def __init__(self, in_channels: int = FRAME_STACK, features_dim: int = 512, image_size: int = IMAGE_SIZE,
                 trunk: str = "relu"):
        super().__init__()
        # In-place ReLUs: each convolution's output is rectified where it lies (its backward needs its input,
        # not its output), one allocation and one pass fewer per layer.
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        if trunk not in TRUNKS:
            raise ValueError(f"trunk {trunk!r}: must be one of {TRUNKS}")
        norm = [nn.ReLU()] if trunk == "relu" else [nn.LayerNorm(features_dim), nn.Tanh()]
        self.fc = nn.Sequential(nn.Linear(n_flat, features_dim), *norm)
        # NHWC: oneDNN's (and cuDNN's) fast convolution layout. Measured on 2 CPU threads, batch 256:
        # forward 54 -> 31 ms, forward + backward 135 -> 92 ms (bench/update_throughput.py for the update).
        self.convs.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``uint8[B, C, H, W]`` (or :func:`pixels` of it) -> ``float32[B, features_dim]``."""
        return self.fc(self.convs(image if image.is_floating_point() else pixels(image)))


def mlp(in_dim: int, hidden: int, out_dim: int, n_hidden: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_hidden):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Image + vector -> fused features ``[B, features_dim + 64]``; with ``vector_dim`` 0 the image alone ->
    ``[B, features_dim]`` (the vector argument is then ignored: a pixels-only agent)."""

    def __init__(self, vector_dim: int, features_dim: int = 512, trunk: str = "relu"):
        super().__init__()
        self.cnn = NatureCNN(features_dim=features_dim, trunk=trunk)
        self.vector = nn.Sequential(nn.Linear(vector_dim, VECTOR_FEATURES), nn.ReLU()) if vector_dim > 0 else None
        self.out_dim = features_dim + (VECTOR_FEATURES if self.vector is not None else 0)

    def forward(self, image: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        if self.vector is None:
            return self.cnn(image)
        return torch.cat([self.cnn(image), self.vector(vector)], dim=1)

    def vector_parameters(self) -> list[nn.Parameter]:
        return list(self.vector.parameters()) if self.vector is not None else []


class Actor(nn.Module):
    """Deterministic policy ``a = tanh(head(features))``; owns an encoder only in ``separate`` mode."""

    def __init__(self, feature_dim: int, hidden_dim: int, action_dim: int = ACTION_DIM, encoder: Encoder | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = mlp(feature_dim, hidden_dim, action_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(features))


class Critic(nn.Module):
    """One encoder feeding twin Q heads (Fujimoto et al. 2018: clipped double Q)."""

    def __init__(self, encoder: Encoder, hidden_dim: int, action_dim: int = ACTION_DIM):
        super().__init__()
        self.encoder = encoder
        self.q1 = mlp(encoder.out_dim + action_dim, hidden_dim, 1)
        self.q2 = mlp(encoder.out_dim + action_dim, hidden_dim, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[B, F]`` and actions ``[B, 2]`` -> (Q1, Q2), each ``[B]``."""
        x = torch.cat([features, action], dim=1)
        return self.q1(x).squeeze(1), self.q2(x).squeeze(1)

    def q1_only(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.q1(torch.cat([features, action], dim=1)).squeeze(1)


def parameter_groups(actor: Actor, critic: Critic) -> dict[str, list[nn.Parameter]]:
    """The gradient groups of docs/ARCHITECTURE.md's telemetry; empty groups are left out."""
    groups = {
        "actor_cnn": list(actor.encoder.cnn.parameters()) if actor.encoder is not None else [],
        "actor_mlp": (actor.encoder.vector_parameters() if actor.encoder is not None else [])
        + list(actor.head.parameters()),
        "critic_cnn": list(critic.encoder.cnn.parameters()),
        "critic_mlp": critic.encoder.vector_parameters()
        + list(critic.q1.parameters())
        + list(critic.q2.parameters()),
    }
    return {name: params for name, params in groups.items() if params}
