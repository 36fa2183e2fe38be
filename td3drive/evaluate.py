"""Deterministic evaluation episodes and the per-episode seeds shared by training and evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import gymnasium as gym
import numpy as np

from td3drive import metrics
from td3drive.core.seeding import EVAL_EPISODES, episode_seed
from td3drive.core.signals import shielded

if TYPE_CHECKING:
    from td3drive.agent.td3 import TD3
    from td3drive.config import Config

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray  # float64 [episodes], undiscounted
    lengths: np.ndarray  # int64 [episodes], agent steps
    successes: np.ndarray  # bool [episodes]
    driving: dict[str, float] | None = None  # eval/* driving metrics of route backends (td3drive.metrics)
    frames: np.ndarray | None = None  # int64 [episodes], simulator frames (agent steps x action repeat)
    vector_mean: np.ndarray | None = None  # float64 [k], the ego vector's mean over every step the policy saw
    ablated: dict[str, "EvalResult"] | None = None  # td3drive.ablation's conditions, when this one ran them

    @property
    def mean_reward(self) -> float:
        return float(self.returns.mean())

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean())

    @property
    def success_rate(self) -> float:
        return float(self.successes.mean())


def eval_workers(training, env: str = "") -> int:
    """Resolve ``training.eval_workers``: 0 = one env process per CPU core, capped at the episode count;
    always 1 for a backend ``env`` whose envs live in one process (CARLA: one server, one env).

    Also with asynchronous evaluation: once training ends the evaluator has every core to itself,
    and measured on 2 cores, 2 env processes beat 1 (bench/train_5k.py: 74-79 s vs 85-88 s).
    """
    from td3drive.envs import single_process

    if env and single_process(env):
        return 1
    if training.eval_workers:
        return min(training.eval_workers, training.num_eval_episodes)
    return max(1, min(os.cpu_count() or 1, training.num_eval_episodes))


def make_eval_envs(make_fn: Callable[[], gym.Env], workers: int) -> gym.vector.VectorEnv:
    """``workers`` evaluation envs: subprocesses when more than one (the simulator is the bottleneck)."""
    if workers <= 1:
        return gym.vector.SyncVectorEnv([make_fn])
    with shielded():  # the env processes leave SIGINT/SIGTERM to the process that owns them
        return gym.vector.AsyncVectorEnv([make_fn] * workers, context="spawn")


def evaluate(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    seed: int,
    episodes: int,
    on_frame: Callable[[np.ndarray], None] | None = None,
    camera_frozen: bool = False,
    vector_fill: np.ndarray | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` (deterministic, batched over the envs) on fixed seeds.

    Episode ``i`` always uses the seed ``episode_seed(seed, i, EVAL_EPISODES)``, whatever the number of envs.
    ``on_frame`` receives the newest frame ``uint8[84, 84]`` of every step of episode 0. The input
    ablations of :mod:`td3drive.ablation`: ``camera_frozen`` shows the policy the reset's frames at every
    step; ``vector_fill`` ``[k]`` replaces every ego vector the policy reads.
    """
    n = envs.num_envs
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, np.int64)
    frames = np.zeros(episodes, np.int64)
    successes = np.zeros(episodes, bool)
    driving = [metrics.EpisodeDriving() for _ in range(episodes)]
    route = False
    vector_sum, vector_steps = 0.0, 0
    fill = None if vector_fill is None else np.broadcast_to(vector_fill, (n, len(vector_fill))).astype(np.float32)
    for first in range(0, episodes, n):
        ids = [first + i for i in range(n)]
        live = np.array([i < episodes for i in ids])
        obs, _ = envs.reset(seed=[episode_seed(seed, min(i, episodes - 1), EVAL_EPISODES) for i in ids])
        first_images = obs["image"].copy()
        while live.any():
            if on_frame is not None and first == 0 and live[0]:
                on_frame(obs["image"][0][-1])
            vector_sum = vector_sum + obs["vector"][live].astype(np.float64).sum(axis=0)
            vector_steps += int(live.sum())
            image = first_images if camera_frozen else obs["image"]
            obs, reward, terminated, truncated, info = envs.step(policy(image, obs["vector"] if fill is None else fill))
            route = route or metrics.has_driving_info(info)
            for j in np.flatnonzero(live):
                returns[ids[j]] += float(reward[j])
                lengths[ids[j]] += 1
                frames[ids[j]] += int(info["frames"][j]) if "frames" in info else 1
                if route:
                    driving[ids[j]].add(*(info[k][j] for k in metrics.INFO_KEYS))
                if terminated[j] or truncated[j]:
                    live[j] = False
                    successes[ids[j]] = _success_at(info, j)
    return EvalResult(returns, lengths, successes, metrics.summarize(driving) if route else None, frames,
                      np.asarray(vector_sum / max(vector_steps, 1), np.float64))


def _success_at(info: dict, j: int) -> bool:
    """Success flag of sub-env ``j`` from a vector env's batched info dict."""
    for key in ("is_success", "lap_finished"):
        if key in info and info.get("_" + key, np.ones(len(info[key]), bool))[j]:
            return bool(info[key][j])
    return False


class EvaluationError(RuntimeError):
    """The evaluation process failed."""


@dataclass
class CheckpointEval:
    """What ``td3drive eval`` reports: the result, and the checkpoint's step and config."""

    result: EvalResult
    step: int  # agent steps the checkpoint was trained for
    cfg: Config  # the checkpoint's config, with the evaluation's episode count
    frames: list[np.ndarray]  # video frames of episode 0 (empty unless asked for)
    has_view: bool  # the frames show the simulator's colour view


def load_agent(path: str | Path, device: str = "cpu") -> tuple[TD3, Config, int]:
    """(agent, config, step) of a checkpoint file or of a run directory's ``latest.pt``.

    Raises ``CheckpointError`` (one line) for a missing, damaged or foreign file, also for one with the
    right keys and contents that are not a td3drive agent.
    """
    from td3drive.agent.td3 import TD3
    from td3drive.checkpoint import CheckpointError, latest_path, load
    from td3drive.config import ConfigError, from_dict
    from td3drive.core.device import resolve_device
    from td3drive.envs import vector_dim

    path = Path(path)
    try:
        device = resolve_device(device)
        state = load(latest_path(path) if path.is_dir() else path, map_location=device)
        cfg = from_dict(state["config"])
        agent = TD3(vector_dim(cfg.env), cfg.agent, device)
        agent.load_state_dict(state["agent"])
        return agent, cfg, state["counters"]["step"]
    except CheckpointError:
        raise
    except (ConfigError, ValueError) as e:  # the config it holds is not valid here (or names no backend)
        raise CheckpointError(f"checkpoint '{path}': {e}") from None
    except (KeyError, TypeError, RuntimeError, AttributeError) as e:  # right keys, wrong contents
        raise CheckpointError(f"checkpoint '{path}': its contents are not a td3drive agent "
                              f"({type(e).__name__})") from None


def evaluate_checkpoint(path: str | Path, episodes: int, workers: int = 0, device: str = "cpu",
                        video: bool = False, ablate: bool = False) -> CheckpointEval:
    """Evaluate a checkpoint's deterministic policy for ``episodes`` episodes on the evaluation seeds
    (``workers`` env processes, 0: one per core); with ``video``, keep the frames of episode 0; with
    ``ablate``, also run :mod:`td3drive.ablation`'s conditions on the same seeds (``result.ablated``)."""
    from td3drive.envs import has_rgb_view, make_env
    from td3drive.video import video_frame

    agent, cfg, step = load_agent(path, device)
    cfg = cfg.replace(**{"training.num_eval_episodes": episodes, "training.eval_workers": workers,
                         "training.eval_async": False})
    envs = make_eval_envs(partial(make_env, cfg.env), eval_workers(cfg.training, cfg.env.name))
    has_view = has_rgb_view(cfg.env.name)  # asking another backend's vector env would end its workers
    frames: list[np.ndarray] = []

    def record(agent_input: np.ndarray) -> None:  # episode 0 runs in env 0
        frames.append(video_frame(agent_input, envs.call("rgb_view")[0] if has_view else None))

    try:
        result = evaluate(envs, agent.act, cfg.training.seed, episodes, record if video else None)
        if ablate:
            result = with_ablations(envs, agent.act, cfg, result)
    finally:
        envs.close()
    return CheckpointEval(result, step, cfg, frames, has_view)


def with_ablations(envs: gym.vector.VectorEnv, policy: Policy, cfg: Config, given: EvalResult) -> EvalResult:
    """``given`` (the normal evaluation of ``policy``) with :mod:`td3drive.ablation`'s conditions run on the
    same seeds and attached as ``ablated``."""
    from dataclasses import replace

    from td3drive.ablation import ablate

    a = ablate(envs, policy, cfg.training.seed, len(given.returns), cfg.agent.use_vector, given)
    return replace(given, ablated=a.ablated)


def evaluate_for_training(envs: gym.vector.VectorEnv, policy: Policy, cfg: Config, ablate: bool) -> EvalResult:
    """One training evaluation (``training.num_eval_episodes`` on the evaluation seeds), with the input ablations
    when ``ablate``: what both evaluators run."""
    result = evaluate(envs, policy, cfg.training.seed, cfg.training.num_eval_episodes)
    return with_ablations(envs, policy, cfg, result) if ablate else result


class SyncEvaluator:
    """Evaluates in the training process; results are ready as soon as ``submit`` returns."""

    pending = 0  # never anything to wait for

    def __init__(self, make_fn: Callable[[], gym.Env], workers: int, cfg: Config):
        self.envs = make_eval_envs(make_fn, workers)
        self.cfg = cfg
        self._done: list[tuple[int, EvalResult | None]] = []

    def submit(self, step: int, policy: Policy, policy_state: Callable[[], dict], ablate: bool = False) -> None:
        """Evaluate now; with ``ablate``, also on :mod:`td3drive.ablation`'s conditions."""
        self._done.append((step, evaluate_for_training(self.envs, policy, self.cfg, ablate)))

    def poll(self) -> list[tuple[int, EvalResult | None]]:
        done, self._done = self._done, []
        return done

    def drain(self) -> list[tuple[int, EvalResult | None]]:
        return self.poll()

    def close(self) -> None:
        self.envs.close()


class _Abandoned(Exception):
    """Raised inside an evaluation that the trainer no longer waits for."""


class _Inbox:
    """The evaluation process's queue of one: the newest policy snapshot wins.

    A receiver thread takes every snapshot off the pipe as soon as it arrives, so the trainer never
    blocks writing one; a snapshot still waiting when a newer one arrives is dropped (``put`` returns
    its step) and the trainer is told it was skipped.
    """

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition()
        self._item: tuple[int, bytes] | None = None  # (step, payload: the ablate flag byte, then the snapshot)
        self._closed = False

    def put(self, step: int, payload: bytes) -> int | None:
        with self._cond:
            replaced = None if self._item is None else self._item[0]
            self._item = (step, payload)
            self._cond.notify()
            return replaced

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self) -> tuple[int, bytes] | None:
        """The newest waiting snapshot; blocks until there is one; None once closed (pending ones dropped)."""
        with self._cond:
            while self._item is None and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            item, self._item = self._item, None
            return item


def _receiver(conn, inbox: _Inbox, send: Callable[[tuple], None]) -> None:
    """The evaluation process's receiver thread: every snapshot into the one-slot inbox at once (the
    trainer never waits on a busy evaluator); a replaced one is reported back as skipped."""
    try:
        while msg := conn.recv_bytes():
            replaced = inbox.put(int.from_bytes(msg[:8], "little"), msg[8:])
            if replaced is not None:
                send((replaced, None))
    except (EOFError, OSError):
        pass
    finally:
        inbox.close()


def _eval_worker(conn, config: dict, vector_dim: int, workers: int) -> None:
    """Body of the evaluation process: evaluate the newest submitted snapshot, send results back.

    Sends ``(step, EvalResult)`` per evaluation and ``(step, None)`` per snapshot skipped because a
    newer one replaced it while an evaluation ran. Ends when the trainer sends ``b""`` or its end of
    the pipe closes (the trainer died); SIGINT and SIGTERM are blocked (:mod:`td3drive.core.signals`).
    """
    import io
    import threading
    from functools import partial

    import torch

    from td3drive.agent.td3 import TD3
    from td3drive.config import from_dict
    from td3drive.envs import make_env

    torch.set_num_threads(1)  # the trainer owns the other cores
    cfg = from_dict(config)
    agent = TD3(vector_dim, cfg.agent, "cpu")
    inbox, send_lock = _Inbox(), threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            conn.send(msg)

    def policy(image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        if inbox.closed:  # told to stop (or the trainer is gone): abandon the running evaluation
            raise _Abandoned
        return agent.act(image, vector)

    threading.Thread(target=_receiver, args=(conn, inbox, send), daemon=True).start()
    envs = make_eval_envs(partial(make_env, cfg.env), workers)
    try:
        while (item := inbox.take()) is not None:
            step, payload = item
            ablate, payload = bool(payload[0]), payload[1:]
            # map_location: a CUDA trainer sends CUDA tensors; this process evaluates on the CPU and
            # must not open a CUDA context of its own.
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            agent.actor.load_state_dict(state["actor"])
            agent.critic.load_state_dict(state["critic"])
            send((step, evaluate_for_training(envs, policy, cfg, ablate)))
    except (_Abandoned, BrokenPipeError, EOFError, OSError):
        pass  # told to stop mid-evaluation, or the trainer is gone
    finally:
        envs.close()


class AsyncEvaluator:
    """Evaluates policy snapshots in a separate process while training goes on.

    The simulator dominates evaluation time, so on a multi-core machine evaluation overlaps with
    collection instead of pausing it. Results are identical to :class:`SyncEvaluator`'s (same
    snapshot, same seeds); they are logged at the step they were submitted for.
    """

    def __init__(self, config: dict, vector_dim: int, workers: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        # Not a daemon: it starts env subprocesses of its own. close() always ends it.
        self.proc = ctx.Process(target=_eval_worker, args=(child, config, vector_dim, workers))
        with shielded():  # it and its env processes leave SIGINT/SIGTERM to the trainer
            self.proc.start()
        child.close()
        self.pending = 0

    def submit(self, step: int, policy: Policy, policy_state: Callable[[], dict], ablate: bool = False) -> None:
        """Send a snapshot of the policy to the evaluation process; ``ablate`` also runs the input ablations."""
        import io

        import torch

        # Serialise to bytes now: multiprocessing would otherwise share tensor storage with the
        # live parameters, and the worker could evaluate weights that training has since changed.
        buf = io.BytesIO()
        torch.save(policy_state(), buf)
        try:
            # Never blocks for long: the worker's receiver thread reads every snapshot at once.
            self.conn.send_bytes(step.to_bytes(8, "little") + bytes([ablate]) + buf.getvalue())
        except OSError:
            raise EvaluationError(self._died()) from None
        self.pending += 1

    def poll(self) -> list[tuple[int, EvalResult | None]]:
        """Results that are ready: ``(step, EvalResult)``, or ``(step, None)`` for a skipped snapshot."""
        done = []
        while self.pending and self.conn.poll():
            done.append(self._recv())
        return done

    def drain(self) -> list[tuple[int, EvalResult | None]]:
        """Wait for every submitted snapshot's result (or skip notice)."""
        return [self._recv() for _ in range(self.pending)]

    def _recv(self) -> tuple[int, EvalResult | None]:
        try:
            result = self.conn.recv()
        except (EOFError, OSError):
            raise EvaluationError(self._died()) from None
        self.pending -= 1
        return result

    def _died(self) -> str:
        self.proc.join(timeout=5)
        return f"the evaluation process died (exit code {self.proc.exitcode}); see its traceback above"

    def close(self, wait_s: float = 10.0) -> None:
        """Stop the process: an evaluation still running is abandoned at its next env step, the process
        closes its envs and ends; after ``wait_s`` seconds it is killed (SIGKILL: it blocks SIGTERM)."""
        try:
            self.conn.send_bytes(b"")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=wait_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()


def make_evaluator(cfg: Config, vector_dim: int) -> SyncEvaluator | AsyncEvaluator | None:
    """The evaluator a training run of ``cfg`` uses; None when ``training.eval_freq`` is 0."""
    from functools import partial

    from td3drive.envs import make_env, single_process

    t = cfg.training
    if t.eval_freq <= 0:
        return None
    if single_process(cfg.env.name):
        # In-process: the evaluation env ticks the same server as the training env.
        return SyncEvaluator(partial(make_env, cfg.env), eval_workers(t, cfg.env.name), cfg)
    if t.eval_async:
        # The trainer keeps every core: the evaluator idles between evaluations, and an update on 1 of 2
        # threads runs at 0.42x the speed of 2 (CarRacing, batch 128: 5.9 vs 13.9 updates/s).
        return AsyncEvaluator(cfg.to_dict(), vector_dim, eval_workers(t))
    return SyncEvaluator(partial(make_env, cfg.env), eval_workers(t), cfg)
