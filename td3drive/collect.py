"""Experience collection: step the training env(s) with given actions, store the transitions, count.

``Collector`` drives one env in the training process; ``VectorCollector`` drives ``num_envs`` env
processes (gymnasium ``AsyncVectorEnv``, same-step autoreset). Both share one interface: ``send(actions)``
starts a step and advances the agent-step count, ``receive()`` stores every transition, counts the frames
and returns the episodes that ended, for the trainer to log (``step`` is both). Between the two the
trainer runs its updates: the env processes step meanwhile (for the single in-process env, ``send`` does
the whole step, so nothing changes there). Every episode is reset with its own seed (``core.seeding.episode_seed``),
which is what makes a resumed run exact: :meth:`Collector.restore` rebuilds the simulator mid-episode by
replaying the episode's actions from that seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from td3drive.agent.replay import ReplayBuffer, VectorReplay
from td3drive.config import Config
from td3drive.core.seeding import episode_seed
from td3drive.core.signals import shielded
from td3drive.core.spec import ACTION_DIM
from td3drive.envs import make_env


def obs_checksum(obs: dict[str, np.ndarray]) -> int:
    """CRC32 of an observation's image and vector: tells whether a replayed episode reached the saved state."""
    return zlib.crc32(obs["vector"].tobytes(), zlib.crc32(obs["image"].tobytes()))


def add_reward_terms(totals: dict[str, float], info: dict, env: int | None = None) -> None:
    """Add a step's ``info["reward_terms"]`` to ``totals`` (``env``: index into a vector env's batched info)."""
    for term, value in info.get("reward_terms", {}).items():
        if not term.startswith("_"):  # gymnasium's per-env presence masks in batched infos
            totals[term] = totals.get(term, 0.0) + float(value if env is None else value[env])


class EpisodeEnd(NamedTuple):
    """A finished training episode: its return, length (agent steps), summed reward terms, and the env
    step at which it ended."""

    ret: float
    length: int
    terms: dict[str, float]
    step: int


@dataclass
class Counters:
    """Everything besides networks and RNGs that a resumed run needs."""

    step: int = 0  # agent steps (env.step calls; each is env.action_repeat simulator frames)
    frames: int = 0  # simulator frames
    episode: int = 0
    episode_return: float = 0.0
    episode_length: int = 0
    last_episode_return: float = float("nan")
    episode_actions: list[np.ndarray] = field(default_factory=list)
    episode_terms: dict[str, float] = field(default_factory=dict)  # reward terms summed this episode

    def new_episode(self) -> None:
        self.episode_return, self.episode_length, self.episode_actions, self.episode_terms = 0.0, 0, [], {}

    def state_dict(self) -> dict:
        # Plain Python numbers: with vectorised collection they come from numpy arrays, and a numpy scalar
        # is not loadable with weights_only.
        return {"step": int(self.step), "frames": int(self.frames), "episode": int(self.episode),
                "episode_return": float(self.episode_return), "episode_length": int(self.episode_length),
                "last_episode_return": float(self.last_episode_return)}

    def load_state_dict(self, k: dict) -> None:
        """Counters of a checkpoint (an old one's frame count is filled in by td3drive.checkpoint.upgrade)."""
        self.step, self.episode, self.frames = k["step"], k["episode"], k["frames"]
        self.episode_return, self.episode_length = k["episode_return"], k["episode_length"]
        self.last_episode_return = k["last_episode_return"]

    def episode_actions_tensor(self) -> torch.Tensor:
        """The actions taken so far in the running episode, float32 ``[length, 2]``."""
        actions = np.stack(self.episode_actions) if self.episode_actions else np.zeros((0, ACTION_DIM), np.float32)
        return torch.from_numpy(actions.astype(np.float32))


class Collector:
    """One training env in this process. ``action_shape`` is ``(2,)``."""

    acts_itself = False  # the trainer passes the actions to send()

    def __init__(self, cfg: Config, counters: Counters, capacity: int, vector_dim: int):
        t = cfg.training
        self.seed, self.c = t.seed, counters
        self.action_shape: tuple[int, ...] = (ACTION_DIM,)
        # The buffer first: it is the one thing that may not fit, and nothing is started yet.
        self.buffer = ReplayBuffer(capacity, vector_dim, seed=t.seed, n_step=cfg.agent.n_step, gamma=cfg.agent.gamma)
        self.env = make_env(cfg.env, training=True)
        self.obs: dict[str, np.ndarray] = {}
        self._ended: list[EpisodeEnd] = []  # the episodes the last send() ended

    def reset(self) -> None:
        self.obs, _ = self.env.reset(seed=episode_seed(self.seed, self.c.episode))

    def step(self, action: np.ndarray) -> list[EpisodeEnd]:
        self.send(action)
        return self.receive()

    def send(self, action: np.ndarray) -> None:
        """Step the env with ``action`` and store the transition (in-process: there is nothing to overlap)."""
        c = self.c
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        add_reward_terms(c.episode_terms, info)
        c.frames += int(info.get("frames", 1))
        self.buffer.add(self.obs, action, reward, next_obs, terminated, truncated)
        c.episode_actions.append(action)
        c.episode_return += float(reward)
        c.episode_length += 1
        c.step += 1
        self._ended = []
        if not (terminated or truncated):
            self.obs = next_obs
            return
        self._ended = [EpisodeEnd(c.episode_return, c.episode_length, c.episode_terms, c.step)]
        c.episode += 1
        c.new_episode()
        self.reset()

    def receive(self) -> list[EpisodeEnd]:
        """The episodes that the last :meth:`send` ended."""
        return self._ended

    def restore(self, actions: np.ndarray, checksum: int) -> bool:
        """Rebuild the simulator mid-episode by replaying this episode's ``actions`` from its seed. False
        (and a fresh next episode) when it did not reach the observation whose checksum was saved."""
        c = self.c
        self.reset()
        for a in actions:
            self.obs, _, _, _, info = self.env.step(a)
            add_reward_terms(c.episode_terms, info)
        c.episode_actions = list(actions)
        if obs_checksum(self.obs) == checksum:
            return True
        c.episode += 1
        c.new_episode()
        self.reset()
        return False

    def log_values(self) -> dict[str, float]:
        return {}  # nothing of its own to log (the Ray collector logs its lag and restarts)

    def close(self) -> None:
        self.env.close()


class VectorCollector:
    """``num_envs`` env processes stepped together; actions ``[num_envs, 2]`` from one batched forward pass.
    With same-step autoreset a finished env returns its next episode's first observation and the final one
    in ``info["final_obs"]``. Resume is not supported (the per-env simulator states are not replayable)."""

    acts_itself = False

    def __init__(self, cfg: Config, counters: Counters, capacity: int, vector_dim: int):
        t = cfg.training
        self.seed, self.c, self.n = t.seed, counters, t.num_envs
        self.action_shape = (self.n, ACTION_DIM)
        self.buffer = VectorReplay(self.n, capacity, vector_dim, seed=t.seed, n_step=cfg.agent.n_step,
                                   gamma=cfg.agent.gamma)
        with shielded():  # the env processes leave SIGINT/SIGTERM to the trainer
            self.env = gym.vector.AsyncVectorEnv([partial(make_env, cfg.env, training=True)] * self.n,
                                                 context="spawn", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self._tallies = np.zeros((self.n, 2))  # per env: return, length of the running episode
        self._terms: list[dict[str, float]] = [{} for _ in range(self.n)]  # per env: reward terms
        self.obs: dict[str, np.ndarray] = {}
        self._actions = np.zeros(self.action_shape, np.float32)  # those of the step in flight

    def reset(self) -> None:
        self.obs, _ = self.env.reset(seed=[episode_seed(self.seed, i) for i in range(self.n)])

    def step(self, actions: np.ndarray) -> list[EpisodeEnd]:
        self.send(actions)
        return self.receive()

    def send(self, actions: np.ndarray) -> None:
        """Start a step of every env with ``actions`` ``[num_envs, 2]``; the env processes run it while this
        one goes on (with the updates). The agent-step count advances now, the rest in :meth:`receive`."""
        self.env.step_async(actions)
        self._actions = actions
        self.c.step += self.n

    def receive(self) -> list[EpisodeEnd]:
        """Wait for the step :meth:`send` started, store its transitions, return the episodes it ended."""
        c, ended, actions, first = self.c, [], self._actions, self.c.step - self.n
        next_obs, rewards, terminated, truncated, info = self.env.step_wait()
        c.frames += int(np.sum(info["frames"])) if "frames" in info else self.n
        for i in range(self.n):
            done = bool(terminated[i] or truncated[i])
            stored_next = info["final_obs"][i] if done else {k: v[i] for k, v in next_obs.items()}
            self.buffer.add(i, {k: v[i] for k, v in self.obs.items()}, actions[i], float(rewards[i]), stored_next,
                            bool(terminated[i]), bool(truncated[i]))
            self._tallies[i] += (float(rewards[i]), 1)
            add_reward_terms(self._terms[i], info, i)
            if done:
                ret, length = self._tallies[i]
                ended.append(EpisodeEnd(float(ret), int(length), self._terms[i], first + i + 1))
                c.episode += 1
                self._tallies[i], self._terms[i] = 0, {}
        self.obs = next_obs
        return ended

    log_values = Collector.log_values

    def close(self) -> None:
        self.env.close()
