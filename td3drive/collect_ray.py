"""Collection on Ray actors: ``training.actors`` simulators, each owned by one Ray actor, feeding this process's
learner (Ape-X's actors; RLlib's env runners).

Each :class:`CollectionActor` steps its own env with the newest policy weights it was given (broadcast through
Ray's object store every ``training.actor_weights_every`` updates, only to actors that lack them) and returns
``training.actor_chunk_steps`` transitions per request as one chunk: the newest uint8 frame and the vector of each
next observation (the replay stores each frame once, so nothing more is shipped), the full frame stack only where
an episode starts, actions, rewards, flags, the episodes that ended and the weights' version.

:class:`RayCollector` has the in-process collectors' interface (``send`` / ``receive``, ``buffer``, ``close``)
so that the trainer's loop, schedule, evaluation, guard, checkpoints and report are unchanged: ``send`` waits for
the next chunk of any actor (the learner waits when collection lags, and ``collect/learner_wait_fraction`` says
how long), asks that actor for its next chunk at once, and advances the step count by the chunk's length; the
trainer then runs the updates the configured update-to-data ratio owes for those steps, and ``receive`` stores
the chunk in the actor's own replay stream, so n-step targets never cross actors or episodes. Exactly one chunk
per actor is in flight: actors never run more than a chunk ahead of the learner.

An actor that dies (its simulator crashed) is replaced by a fresh one with a fresh env; its chunk in flight and
its open episode are lost (counted in ``collect/dropped_episodes``), its stream is cut so that nothing chains
onto the lost episode. Actors run no torch thread pool of their own (one thread each) and ask Ray for no CPU
(they mostly wait on their simulator); they are spread over the cluster's nodes.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from td3drive import schedule
from td3drive.agent.replay import VectorReplay
from td3drive.collect import Counters, EpisodeEnd, add_reward_terms
from td3drive.config import Config, ConfigError
from td3drive.core import seeding, tags
from td3drive.core.seeding import episode_seed
from td3drive.core.signals import shielded
from td3drive.core.spec import ACTION_DIM

MAX_FAILURES = 3  # an actor that dies this many times in a row without delivering a chunk ends the run
LAG_NOTE_EVERY_S = 60.0  # at most one "collection lags" line per minute


class CollectionActor:
    """One env and a CPU copy of the policy, in a Ray actor process. ``config``: :meth:`Config.to_dict`."""

    def __init__(self, config: dict, index: int, vector_dim: int):
        import torch

        from td3drive.agent.td3 import TD3
        from td3drive.config import from_dict
        from td3drive.envs import actor_env, make_env

        torch.set_num_threads(1)  # many actors share the node's cores with the learner
        self.cfg, self.index = from_dict(config), index
        self.env = make_env(actor_env(self.cfg.env, index, self.cfg.training.actors), training=True)
        self.agent = TD3(vector_dim, self.cfg.agent, "cpu")
        self.rng = seeding.rng(self.cfg.training.seed, seeding.ACTOR_NOISE, index)
        self.version, self.episodes = -1, 0
        self.obs: dict[str, np.ndarray] | None = None

    def _reset(self) -> None:
        # Episode j of actor i has seed episode_seed(seed, i + actors * j): distinct over actors and episodes.
        n = self.cfg.training.actors
        self.obs, _ = self.env.reset(seed=episode_seed(self.cfg.training.seed, self.index + n * self.episodes))
        self.ret, self.length, self.terms, self.fresh = 0.0, 0, {}, True

    def collect(self, steps: int, weights: dict | None, version: int, global_step: int) -> dict[str, Any]:
        """``steps`` transitions with the policy of ``weights`` (None: keep the current ones) as of learner update
        ``version``; exploration as the trainer's at agent step ``global_step``."""
        if weights is not None:
            self.agent.actor.load_state_dict(weights["actor"])
            self.agent.critic.load_state_dict(weights["critic"])
            self.version = version
        if self.obs is None:
            self._reset()
        t_cfg, a_cfg = self.cfg.training, self.cfg.agent
        frames, vectors, actions, rewards, terminated, truncated = [], [], [], [], [], []
        starts: dict[int, dict[str, np.ndarray]] = {}
        ended: list[tuple[float, int, dict[str, float], int]] = []
        sim_frames = 0
        for t in range(steps):
            obs = self.obs
            if self.fresh:
                starts[t], self.fresh = obs, False
            action = schedule.exploration_actions(self.rng, global_step, a_cfg, t_cfg,
                                                  lambda: self.agent.act(obs["image"], obs["vector"]), (ACTION_DIM,))
            next_obs, reward, term, trunc, info = self.env.step(action)
            sim_frames += int(info.get("frames", 1))
            add_reward_terms(self.terms, info)
            self.ret, self.length = self.ret + float(reward), self.length + 1
            frames.append(next_obs["image"][-1])
            vectors.append(next_obs["vector"])
            actions.append(action)
            rewards.append(float(reward))
            terminated.append(bool(term))
            truncated.append(bool(trunc))
            if term or trunc:
                ended.append((self.ret, self.length, self.terms, t))
                self.episodes += 1
                self._reset()
            else:
                self.obs = next_obs
        return {"frames": np.stack(frames), "vectors": np.stack(vectors), "actions": np.stack(actions),
                "rewards": np.array(rewards), "terminated": np.array(terminated), "truncated": np.array(truncated),
                "starts": starts, "ended": ended, "sim_frames": sim_frames, "version": self.version}

    def pid(self) -> int:
        import os

        return os.getpid()


def store_chunk(buffer: VectorReplay, actor: int, chunk: dict[str, Any]) -> None:
    """Append ``chunk`` (:meth:`CollectionActor.collect`'s) to ``actor``'s stream of ``buffer``, in order."""
    for t in range(len(chunk["actions"])):
        start = chunk["starts"].get(t)
        if start is not None:
            buffer.cut(actor)  # a new episode (or a fresh actor): never chain onto the stream's last one
        next_obs = {"image": chunk["frames"][t][None], "vector": chunk["vectors"][t]}
        buffer.add(actor, start if start is not None else {}, chunk["actions"][t], float(chunk["rewards"][t]),
                   next_obs, bool(chunk["terminated"][t]), bool(chunk["truncated"][t]))


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("config key 'training.actors' > 0 needs Ray: pip install 'td3drive[sweep]'") from None
    return ray


class RayCollector:
    """``training.actors`` collection actors on Ray (see the module docstring); :meth:`bind` the agent first."""

    acts_itself = True  # the actors choose the actions: the trainer's send() passes none

    def __init__(self, cfg: Config, counters: Counters, capacity: int, vector_dim: int,
                 log: Callable[[str], None] = print):
        ray = self.ray = _ray()
        t = cfg.training
        self.cfg, self.c, self.n, self.k, self.log = cfg, counters, t.actors, vector_dim, log
        self.action_shape = (self.n, ACTION_DIM)
        self.buffer = VectorReplay(self.n, capacity, vector_dim, seed=t.seed, n_step=cfg.agent.n_step,
                                   gamma=cfg.agent.gamma)
        # No env state lives here: the checksum a checkpoint keeps is of an empty observation (resume starts new
        # episodes on every actor).
        self.obs = {"image": np.zeros(0, np.uint8), "vector": np.zeros(0, np.float32)}
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            try:
                with shielded():  # Ray's processes leave SIGINT/SIGTERM to the trainer
                    ray.init(address=t.ray_address, include_dashboard=False, logging_level="WARNING",
                             log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"config key 'training.ray_address' = {t.ray_address!r}: cannot start or reach "
                                  f"Ray ({str(e).splitlines()[0]})") from None
        self._remote = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(CollectionActor)
        self._config = cfg.to_dict()
        self.actors = [self._start(i) for i in range(self.n)]
        self.agent: Any = None
        self.inflight: dict[Any, int] = {}
        self.sent_version = [-2] * self.n  # the weights' version each actor holds (-2: none)
        self.weights, self.version = None, -1
        self.failures = [0] * self.n
        self.restarts = self.dropped = 0
        self._chunk: tuple[int, dict, int] | None = None  # (actor, chunk, agent step before it)
        self._lags: list[int] = []
        self._wait_s, self._since = 0.0, time.perf_counter()
        self._noted = -LAG_NOTE_EVERY_S

    def _start(self, i: int):
        with shielded():
            return self._remote.remote(self._config, i, self.k)

    def bind(self, agent) -> None:
        """The learner's agent: its update count and policy snapshots are what the actors receive."""
        self.agent = agent

    def _request(self, i: int) -> None:
        """Ask actor ``i`` for its next chunk, with the newest weights if it lacks them."""
        if self.weights is None or self.agent.total_it - self.version >= self.cfg.training.actor_weights_every:
            self.weights, self.version = self.ray.put(self.agent.policy_state()), self.agent.total_it
        fresh = self.sent_version[i] != self.version
        ref = self.actors[i].collect.remote(self.cfg.training.actor_chunk_steps, self.weights if fresh else None,
                                            self.version, self.c.step)
        self.sent_version[i] = self.version
        self.inflight[ref] = i

    def reset(self) -> None:
        for i in range(self.n):
            self._request(i)

    def restore(self, actions: np.ndarray, checksum: int) -> bool:
        """A resumed distributed run starts a new episode on every actor (the simulators' states are not saved)."""
        self.log("distributed run: every actor starts a new episode (simulator states are not restored)")
        self.reset()
        return True

    def _replace(self, i: int, error: Exception) -> None:
        """Actor ``i`` died: count it, cut its stream, start a fresh actor (its env is new) and ask it for a chunk."""
        self.failures[i] += 1
        if self.failures[i] >= MAX_FAILURES:
            raise RuntimeError(f"collection actor {i} died {MAX_FAILURES} times in a row without delivering a chunk: "
                               f"{str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__}")
        self.restarts += 1
        self.dropped += 1  # the episode it was driving
        self.buffer.cut(i)
        self.log(f"[yellow]collection actor {i} died ({type(error).__name__}); restarted with a fresh env, its open "
                 f"episode dropped ({self.restarts} restart(s) so far)[/]")
        self.ray.kill(self.actors[i], no_restart=True)
        self.actors[i], self.sent_version[i] = self._start(i), -2
        self._request(i)

    def send(self, actions: np.ndarray | None = None) -> None:
        """Wait for the next chunk of any actor, ask that actor for its next one, advance the agent-step count."""
        ray, start = self.ray, time.perf_counter()
        while True:
            ready, _ = ray.wait(list(self.inflight), num_returns=1)
            i = self.inflight.pop(ready[0])
            try:
                chunk = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                self._replace(i, e)
                continue
            break
        self._wait_s += time.perf_counter() - start
        self.failures[i] = 0
        self._request(i)  # it collects its next chunk while this one is learned on
        self._lags.append(self.agent.total_it - chunk["version"])
        self._chunk = (i, chunk, self.c.step)
        self.c.step += len(chunk["actions"])

    @property
    def last_actor(self) -> int | None:
        """The actor whose chunk the last :meth:`send` took (None before the first)."""
        return None if self._chunk is None else self._chunk[0]

    def receive(self) -> list[EpisodeEnd]:
        """Store the chunk :meth:`send` took in its actor's stream; return the episodes it ended."""
        i, chunk, first = self._chunk
        self.c.frames += chunk["sim_frames"]
        store_chunk(self.buffer, i, chunk)
        self.c.episode += len(chunk["ended"])
        return [EpisodeEnd(float(ret), int(length), terms, first + t + 1) for ret, length, terms, t in chunk["ended"]]

    def log_values(self) -> dict[str, float]:
        """The collect/* tags since the last call; says so in the log when the learner mostly waited."""
        now = time.perf_counter()
        wait = self._wait_s / max(now - self._since, 1e-9)
        out = {tags.LEARNER_WAIT: wait, tags.ACTOR_RESTARTS: float(self.restarts),
               tags.DROPPED_EPISODES: float(self.dropped)}
        if self._lags:
            out[tags.POLICY_LAG] = float(np.mean(self._lags))
        if wait > 0.5 and now - self._noted >= LAG_NOTE_EVERY_S:
            self.log(f"collection lags: the learner waited {wait:.0%} of the last {now - self._since:.1f} s for "
                     f"chunks from {self.n} actor(s)")
            self._noted = now
        self._lags, self._wait_s, self._since = [], 0.0, now
        return out

    def close(self) -> None:
        """Stop every actor (on a cluster this run joined, only its own), then the local Ray this run started."""
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - an actor already gone is what we want
                pass
        self.actors, self.inflight = [], {}
        if self.started_ray:
            self.ray.shutdown()
