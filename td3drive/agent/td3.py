"""TD3 (Fujimoto, van Hoof and Meger, 2018) on image + vector observations.

Twin critics with the clipped double-Q target, target policy smoothing, delayed actor and target
updates, Polyak-averaged targets; per-group gradient clipping with the norm logged before and after.
An optimizer step whose loss or gradient is not finite is skipped and counted: one NaN applied to
the weights would poison every later update, and the guard needs the run's state intact to stop.
``update(batch)`` performs one critic update (and, every ``policy_freq``-th call, one actor update
and one target update) and returns its telemetry keyed by the tag names of ``td3drive.core.tags``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import clip_grad_norm_, get_total_norm

from td3drive.agent.augment import random_shift
from td3drive.agent.networks import Actor, Critic, Encoder, parameter_groups, pixels
from td3drive.agent.replay import Batch
from td3drive.config import AgentConfig
from td3drive.core import tags
from td3drive.core.spec import ACTION_DIM


def smoothed_target_action(target_action: torch.Tensor, policy_noise: float, noise_clip: float) -> torch.Tensor:
    """Target policy smoothing: ``clip(a' + clip(N(0, policy_noise), -c, c), -1, 1)``, shape ``[B, 2]``."""
    noise = (torch.randn_like(target_action) * policy_noise).clamp(-noise_clip, noise_clip)
    return (target_action + noise).clamp(-1.0, 1.0)


def clipped_double_q_target(
    reward: torch.Tensor, discount: torch.Tensor, target_q1: torch.Tensor, target_q2: torch.Tensor
) -> torch.Tensor:
    """``y = R + discount * min(Q1', Q2')``, all ``[B]``.

    ``R`` is the (n-step) discounted reward sum and ``discount`` is ``gamma^m`` for the m steps it
    covers, 0 after a termination: bootstrapping stops at a termination only; a time-limit
    truncation is bootstrapped (``td3drive.agent.replay``).
    """
    return reward + discount * torch.min(target_q1, target_q2)


def adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam (PyTorch's defaults: betas 0.9/0.999, eps 1e-8), as one fused kernel over all parameters on the
    CPU and CUDA: the same update rule as the loop over tensors, without a kernel launch per tensor and
    operation (what a GPU pays most for); on 2 CPU threads the update's rate is the same within noise."""
    return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda") or None)


class TD3:
    """The agent: networks, targets, optimizers and the update rule. Knows nothing about envs."""

    def __init__(self, vector_dim: int, cfg: AgentConfig, device: torch.device | str = "cpu",
                 action_dim: int = ACTION_DIM):
        self.cfg = cfg
        self.device = torch.device(device)
        self.separate = cfg.encoder == "separate"
        # bf16: the encoders' convolutions and linear layers run under autocast (fp32 weights, Adam state,
        # heads, losses and gradient norms); their features are cast back to fp32 before the heads.
        self.bf16 = cfg.precision == "bf16"
        encoded_dim = vector_dim if cfg.use_vector else 0  # 0: the encoders read the camera frames only
        critic_encoder = Encoder(encoded_dim, cfg.features_dim, cfg.trunk)
        actor_encoder = Encoder(encoded_dim, cfg.features_dim, cfg.trunk) if self.separate else None
        self.critic = Critic(critic_encoder, cfg.hidden_dim, action_dim).to(self.device)
        self.actor = Actor(critic_encoder.out_dim, cfg.hidden_dim, action_dim, actor_encoder).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        # In `critic` mode the actor's parameters are its head only: the actor loss cannot reach the CNN.
        self.actor_optimizer = adam(self.actor.parameters(), cfg.actor_lr, self.device)
        self.critic_optimizer = adam(self.critic.parameters(), cfg.critic_lr, self.device)
        groups = parameter_groups(self.actor, self.critic)
        self.actor_groups = {k: v for k, v in groups.items() if k.startswith("actor")}
        self.critic_groups = {k: v for k, v in groups.items() if k.startswith("critic")}
        self.total_it = 0
        self.skipped_updates = 0  # optimizer steps not applied because a loss or gradient was non-finite

    def _encode(self, encoder: torch.nn.Module, image: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """``encoder(image, vector)`` -> fp32 features ``[B, out_dim]``, under bf16 autocast when configured."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            features = encoder(image, vector)
        return features.float()

    def _actor_features(self, image: torch.Tensor, vector: torch.Tensor,
                                   critic_features: torch.Tensor | None = None) -> torch.Tensor:
        """The features the actor reads: its own CNN's (``separate``), else the critic's, detached (DrQ-v2,
        SAC-AE, CURL): the one place the encoder mode is decided. ``critic_features`` saves a second pass."""
        if self.separate:
            return self._encode(self.actor.encoder, image, vector)
        if critic_features is None:
            critic_features = self._encode(self.critic.encoder, image, vector)
        return critic_features.detach()

    def act(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Deterministic action(s). ``image`` uint8 ``[4,84,84]`` or ``[N,4,84,84]`` -> ``[2]`` or ``[N,2]``."""
        return self.act_with(self.actor, self.actor.encoder if self.separate else self.critic.encoder, image, vector)

    @torch.inference_mode()
    def act_with(self, actor: Actor, encoder: Encoder, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """:meth:`act` with these modules (this agent's, or a :class:`PolicySnapshot`'s copies of them):
        ``actor(encoder(image, vector))``, as the update's actor step computes it."""
        single = image.ndim == 3
        img = torch.as_tensor(image, device=self.device)
        vec = torch.as_tensor(vector, device=self.device, dtype=torch.float32)
        if single:
            img, vec = img.unsqueeze(0), vec.unsqueeze(0)
        action = actor(self._encode(encoder, img, vec)).cpu().numpy()
        return action[0] if single else action

    def _clip(self, groups: dict[str, list[torch.nn.Parameter]], out: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Clip each group to ``max_grad_norm``, record its norm before and after (measured, not assumed).

        Returns the pre-clip norms (0-d tensors).
        """
        pre_norms = []
        for name, params in groups.items():
            grads = [p.grad for p in params if p.grad is not None]
            if self.cfg.max_grad_norm is None:
                pre = get_total_norm(grads)
            else:
                pre = clip_grad_norm_(params, self.cfg.max_grad_norm)
            out[tags.grad_norm(name)] = pre
            out[tags.grad_norm_clipped(name)] = get_total_norm(grads)
            pre_norms.append(pre)
        return pre_norms

    def _optimize(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                  groups: dict[str, list[torch.nn.Parameter]], out: dict[str, torch.Tensor]) -> None:
        """backward, clip, and step unless the loss or any gradient norm is non-finite (then count a skip)."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        pre_norms = self._clip(groups, out)
        if bool(torch.isfinite(torch.stack([loss.detach(), *pre_norms])).all()):
            optimizer.step()
        else:
            self.skipped_updates += 1

    def update(self, batch: Batch) -> dict[str, float]:
        """One TD3 iteration on ``batch``: a critic step, and every ``policy_freq``-th call an actor step
        and a target update. Returns telemetry (actor tags only on actor updates)."""
        self.total_it += 1
        out: dict[str, torch.Tensor] = {}
        # DrQ: image and next_image get independent shifts (as DrQ-v2's update does), so the target is
        # itself a sample over shifts rather than tied to the exact crop the critic sees.
        image = pixels(random_shift(batch.image, self.cfg.augment_pad))  # shifted as uint8: a quarter of the bytes
        next_image = pixels(random_shift(batch.next_image, self.cfg.augment_pad))
        features = self.update_critic(batch, image, next_image, out)
        if self.total_it % self.cfg.policy_freq == 0:
            self.update_actor(batch, image, features, out)
            self.soft_update()
        out[tags.SKIPPED_UPDATES] = torch.tensor(float(self.skipped_updates), device=self.device)
        # One device-to-host transfer per update for all telemetry (each .item() would synchronise).
        keys = list(out)
        return dict(zip(keys, torch.stack([out[k].float() for k in keys]).tolist()))

    def update_critic(self, b: Batch, image: torch.Tensor, next_image: torch.Tensor,
                      out: dict[str, torch.Tensor]) -> torch.Tensor:
        """Clipped double-Q regression of both critics (and the CNN) on the smoothed target; returns the
        critic's features of ``image`` ``[B, out_dim]`` for the actor step."""
        cfg = self.cfg
        with torch.no_grad():
            next_features = self._encode(self.critic_target.encoder, next_image, b.next_vector)
            next_actor_features = (
                self._encode(self.actor_target.encoder, next_image, b.next_vector) if self.separate else next_features
            )
            next_action = smoothed_target_action(
                self.actor_target(next_actor_features), cfg.policy_noise, cfg.noise_clip
            )
            target_q1, target_q2 = self.critic_target(next_features, next_action)
            target_q = clipped_double_q_target(b.reward, b.discount, target_q1, target_q2)

        features = self._encode(self.critic.encoder, image, b.vector)
        q1, q2 = self.critic(features, b.action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self._optimize(self.critic_optimizer, critic_loss, self.critic_groups, out)
        out[tags.CRITIC_LOSS] = critic_loss.detach()
        out[tags.Q1] = q1.detach().mean()
        out[tags.Q2] = q2.detach().mean()
        out[tags.TARGET_Q] = target_q.mean()
        out[tags.TD_ERROR] = (q1.detach() - target_q).abs().mean()
        return features

    def update_actor(self, b: Batch, image: torch.Tensor, critic_features: torch.Tensor,
                     out: dict[str, torch.Tensor]) -> None:
        """Deterministic policy gradient: maximise Q1(s, pi(s)). The critic's features are detached, so the
        actor loss moves the actor only (in ``critic`` mode the CNN is trained by the critic alone)."""
        actor_features = self._actor_features(image, b.vector, critic_features)
        q_pi = self.critic.q1_only(critic_features.detach(), self.actor(actor_features)).mean()
        actor_loss = -q_pi
        self._optimize(self.actor_optimizer, actor_loss, self.actor_groups, out)
        out[tags.ACTOR_LOSS] = actor_loss.detach()
        out[tags.Q_PI] = q_pi.detach()

    @torch.no_grad()
    def soft_update(self) -> None:
        """Polyak: ``target <- tau * online + (1 - tau) * target`` for actor and critic (encoders included)."""
        for online, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
            # lerp(target, online, tau) = target + tau * (online - target): the Polyak average, as one fused
            # multi-tensor kernel for all parameters instead of a Python loop of small ops per tensor.
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), self.cfg.tau)

    def snapshot(self) -> PolicySnapshot:
        """A copy of the acting part of the policy, for acting while an update changes this agent's weights
        on another thread (:mod:`td3drive.update_thread`)."""
        return PolicySnapshot(self)

    def policy_state(self) -> dict:
        """What acting needs (actor, and the critic whose encoder it may read), on the CPU: an evaluation
        snapshot."""
        return {name: {k: v.detach().cpu() for k, v in getattr(self, name).state_dict().items()}
                for name in ("actor", "critic")}

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "total_it": self.total_it,
            "skipped_updates": self.skipped_updates,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        # The optimizer state carries its learning rate; the config's wins, so that a run resumed with
        # a corrected learning rate (after a guard stop, say) really uses it.
        for optimizer, lr in ((self.actor_optimizer, self.cfg.actor_lr), (self.critic_optimizer, self.cfg.critic_lr)):
            for group in optimizer.param_groups:
                group["lr"] = lr
        self.total_it = state["total_it"]
        self.skipped_updates = state.get("skipped_updates", 0)


class PolicySnapshot:
    """What acting reads (the actor; in ``critic`` mode also the critic's encoder), copied from a :class:`TD3`
    and refreshed from it on :meth:`refresh`: acting with it reads weights no update is writing. Its actions
    are those of :meth:`TD3.act` at the last refresh."""

    def __init__(self, agent: TD3):
        self.agent = agent
        self.actor = copy.deepcopy(agent.actor).requires_grad_(False)
        critic_encoder = None if agent.separate else copy.deepcopy(agent.critic.encoder).requires_grad_(False)
        self.encoder = self.actor.encoder if agent.separate else critic_encoder
        # The tensors to copy, paired once: optimizers and load_state_dict change the agent's in place.
        theirs = [agent.actor] + ([] if agent.separate else [agent.critic.encoder])
        mine = [self.actor] + ([] if agent.separate else [critic_encoder])
        self._state = [t for m in mine for t in (*m.parameters(), *m.buffers())]
        self._source = [t for m in theirs for t in (*m.parameters(), *m.buffers())]

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the agent's current acting weights (one fused copy over all tensors)."""
        torch._foreach_copy_(self._state, self._source)

    def act(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """As :meth:`TD3.act`, with the snapshot's weights."""
        return self.agent.act_with(self.actor, self.encoder, image, vector)
