"""The training loop: collect -> store -> update -> log -> evaluate -> checkpoint.

Resume is exact: every episode is reset with its own seed (``evaluate.episode_seed``) and the
checkpoint keeps the actions taken so far in the current episode, so a resumed run rebuilds the
simulator state by replaying them, then restores networks, optimizers, counters and every RNG.
With ``training.save_replay`` the replay contents are saved too and the continuation is
bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import signal
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from td3drive import checkpoint, schedule, tags
from td3drive.agent.replay import ReplayBuffer, VectorReplay
from td3drive.agent.td3 import TD3
from td3drive.config import Config, save_yaml
from td3drive.envs import SINGLE_PROCESS, make_env, vector_dim
from td3drive.evaluate import AsyncEvaluator, EvalResult, SyncEvaluator, episode_seed, eval_workers
from td3drive.guard import Alert, Guard
from td3drive.signals import catch_stop_signals, restore_handlers, shielded, take_early_stop_signal

EXIT_OK = 0
EXIT_NO_GO = 1  # the report says NO-GO, or the guard stopped the run
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

console = Console(stderr=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (allowed here: auto, cpu)")
    return torch.device(name)


def default_run_dir(cfg: Config, root: str | Path = "runs", prefix: str = "") -> Path:
    """``runs/<prefix><env>-s<scenario>-seed<seed>-<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{prefix}{cfg.env.name}-s{cfg.env.scenario}-seed{cfg.training.seed}-{stamp}"


def obs_checksum(obs: dict[str, np.ndarray]) -> int:
    return zlib.crc32(obs["vector"].tobytes(), zlib.crc32(obs["image"].tobytes()))


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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

    def add_terms(self, info: dict) -> None:
        add_reward_terms(self.episode_terms, info)


def add_reward_terms(totals: dict[str, float], info: dict, env: int | None = None) -> None:
    """Add a step's ``info["reward_terms"]`` to ``totals`` (``env``: index into a vector env's batched info)."""
    for term, value in info.get("reward_terms", {}).items():
        if not term.startswith("_"):  # gymnasium's per-env presence masks in batched infos
            totals[term] = totals.get(term, 0.0) + float(value if env is None else value[env])


@dataclass
class TrainResult:
    run_dir: Path
    exit_code: int
    steps: int
    episodes: int
    last_eval: dict[str, float] | None
    verdict: str | None = None  # of report.json; None if no report could be written
    guard_stop: str | None = None  # the alert message that stopped the run


class Trainer:
    """Owns one run directory: its env, agent, replay buffer, event file and checkpoints."""

    def __init__(
        self,
        cfg: Config,
        run_dir: str | Path,
        resume: bool = False,
        log: Callable[[str], None] | None = None,
        criteria_file: str | Path | None = None,
        stage: str | None = None,
        replay_at_end: bool = False,
        on_eval: Callable[[int, dict[str, float]], None] | None = None,
    ):
        """``criteria_file``/``stage`` select the thresholds of the end-of-run report; ``replay_at_end``
        saves the replay contents with the final checkpoint (``validate`` continues from it); ``on_eval``
        is called with (env step, eval/* values) after each evaluation (``sweep`` reports them to Ray Tune)."""
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.log = log or (lambda msg: console.print(msg))
        self.criteria_file, self.stage, self.replay_at_end = criteria_file, stage, replay_at_end
        self.on_eval = on_eval
        # Signals are caught from the first moment: one that arrives while the workers start still ends
        # the run with a checkpoint and a report (train() checks the flag before its first step).
        self._old_handlers = catch_stop_signals(self._handle_signal)
        self._stop_signal: int | None = take_early_stop_signal()  # one that came while modules imported
        try:
            self._build(cfg, resume)
        except BaseException:
            restore_handlers(self._old_handlers)
            raise

    def _build(self, cfg: Config, resume: bool) -> None:
        """Allocate the replay, start the envs and the evaluator, then restore or reset (see __init__)."""
        self.device = resolve_device(cfg.training.device)
        t = cfg.training
        seed_everything(t.seed)
        self.vector_dim = vector_dim(cfg.env.name)
        capacity = min(t.buffer_size, t.max_timesteps)
        self.num_envs = t.num_envs
        if resume and self.num_envs > 1:
            raise checkpoint.CheckpointError("--resume with training.num_envs > 1 is not supported yet")
        # Allocate the buffer first: it is the one thing that may not fit, and nothing is written yet.
        n_step = dict(n_step=cfg.agent.n_step, gamma=cfg.agent.gamma)
        if self.num_envs == 1:
            self.buffer: ReplayBuffer | VectorReplay = ReplayBuffer(capacity, self.vector_dim, seed=t.seed, **n_step)
            self.env = make_env(cfg.env, training=True)
        else:
            self.buffer = VectorReplay(self.num_envs, capacity, self.vector_dim, seed=t.seed, **n_step)
            with shielded():  # the env processes leave SIGINT/SIGTERM to the trainer
                self.env = gym.vector.AsyncVectorEnv([partial(make_env, cfg.env, training=True)] * self.num_envs,
                                                     context="spawn",
                                                     autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
            self._tallies = np.zeros((self.num_envs, 2))  # per env: return, length of the running episode
            self._terms: list[dict[str, float]] = [{} for _ in range(self.num_envs)]  # per env: reward terms
        self.agent = TD3(self.vector_dim, cfg.agent, self.device)
        self.rng = np.random.default_rng(np.random.SeedSequence([t.seed, 7]))
        self.c = Counters()
        self.guard = Guard(cfg.guard) if cfg.guard.enabled else None
        self._kept_last_good = False
        # A checkpoint is good once an update after it raised no alert (that update's telemetry measured
        # the weights it holds), or when no update preceded it. The newest good one is kept at the first alert.
        self._ckpt_good: Path | None = None
        self._ckpt_unverified: Path | None = None
        self.last_eval: dict[str, float] | None = None
        self._pending: dict[str, float] = {}
        self._frames_at_eval: dict[int, int] = {}  # agent step -> simulator frames, of submitted evaluations
        self._evals_skipped = 0
        self._checkpoint_step = -1
        self._last_values: dict[str, float] = {}
        self._updates_at_log = 0
        self._time_at_log = time.perf_counter()
        self._step_at_log = 0
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A run restarted from step 0 (killed before its first checkpoint) drops what it logged before.
        purge_step = 0 if any(self.run_dir.glob("events.out.tfevents.*")) else None
        if resume:
            purge_step = self._checkpoint_step = self._restore()
        elif self.num_envs == 1:
            self.obs, _ = self.env.reset(seed=episode_seed(t.seed, 0))
        else:
            self.obs, _ = self.env.reset(seed=[episode_seed(t.seed, i) for i in range(self.num_envs)])
        save_yaml(cfg, self.run_dir / "config.yaml")
        from torch.utils.tensorboard import SummaryWriter

        # purge_step makes TensorBoard (and our analyzer) drop scalars an interrupted run logged
        # after its last checkpoint, so a resumed run has no duplicated steps.
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step, flush_secs=10)
        # Last, so that nothing above can fail and leave an evaluation process behind.
        self.evaluator: SyncEvaluator | AsyncEvaluator | None = None
        if t.eval_freq > 0:
            if cfg.env.name in SINGLE_PROCESS:
                # In-process: the evaluation env ticks the same server as the training env.
                self.evaluator = SyncEvaluator(partial(make_env, cfg.env), eval_workers(t, cfg.env.name), t.seed,
                                               t.num_eval_episodes)
            elif t.eval_async:
                # The trainer keeps every core: the evaluator idles between evaluations, and an update on
                # 1 of 2 threads runs at 0.42x the speed of 2 (CarRacing, batch 128: 5.9 vs 13.9 updates/s).
                self.evaluator = AsyncEvaluator(cfg.to_dict(), self.vector_dim, eval_workers(t))
            else:
                self.evaluator = SyncEvaluator(partial(make_env, cfg.env), eval_workers(t), t.seed, t.num_eval_episodes)

    # ---- checkpoints -------------------------------------------------------------------------
    def _state(self) -> dict:
        c = self.c
        actions = np.stack(c.episode_actions) if c.episode_actions else np.zeros((0, 2), np.float32)
        return {
            "format": 1,
            "config": self.cfg.to_dict(),
            "agent": self.agent.state_dict(),
            # Plain Python numbers: with vectorised collection they come from numpy arrays, and a numpy
            # scalar is not loadable with weights_only (found by bench/fault_injection.py).
            "counters": {
                "step": int(c.step),
                "frames": int(c.frames),
                "episode": int(c.episode),
                "episode_return": float(c.episode_return),
                "episode_length": int(c.episode_length),
                "last_episode_return": float(c.last_episode_return),
            },
            "episode_actions": torch.from_numpy(actions.astype(np.float32)),
            "obs_checksum": obs_checksum(self.obs),
            "rng": {**checkpoint.capture_rng(), "trainer": self.rng.bit_generator.state},
            "replay_rng": self.buffer.rng_state(),
            "replay_saved": self.cfg.training.save_replay or self.replay_at_end,
            "guard": self.guard.state_dict() if self.guard is not None else None,
        }

    def save_checkpoint(self, with_replay: bool = False) -> Path:
        replay = self.buffer.state_dict() if self.cfg.training.save_replay or with_replay else None
        path = checkpoint.save_step(self.run_dir, self.c.step, self._state(), replay)
        checkpoint.prune(path.parent, self.cfg.training.keep_checkpoints)
        self._checkpoint_step = self.c.step
        self._note_checkpoint(path)
        self.log(f"checkpoint: {path} (step {self.c.step})")
        return path

    def _note_checkpoint(self, path: Path) -> None:
        if self.agent.total_it == 0:
            self._ckpt_good, self._ckpt_unverified = path, None
        else:
            self._ckpt_unverified = path

    def _restore(self) -> int:
        path, state, refused = checkpoint.load_newest_intact(self.run_dir, map_location=self.device)
        for bad, why in refused:
            self.log(f"[yellow]{why}; set aside as {checkpoint.set_aside(bad).name}[/]")
        if refused:
            self.log(f"[yellow]resuming from the newest intact checkpoint instead: {path.resolve().name}[/]")
            checkpoint.point_latest(path.parent, path.resolve())
        try:
            return self._restore_from(path, state)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            # Right keys, wrong contents (a hand-made or foreign file): one line, not a traceback.
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise checkpoint.CheckpointError(
                f"checkpoint '{path}': its contents do not fit this run ({type(e).__name__}: {first})") from None

    def _restore_from(self, path: Path, state: dict) -> int:
        self.agent.load_state_dict(state["agent"])
        k = state["counters"]
        c = self.c
        c.step, c.episode = k["step"], k["episode"]
        c.frames = k.get("frames", c.step * self.cfg.env.action_repeat)  # older checkpoints: estimated
        c.episode_return, c.episode_length = k["episode_return"], k["episode_length"]
        c.last_episode_return = k["last_episode_return"]
        actions = state["episode_actions"].numpy()
        # Rebuild the simulator mid-episode by replaying this episode's actions from its seed.
        self.obs, _ = self.env.reset(seed=episode_seed(self.cfg.training.seed, c.episode))
        for a in actions:
            self.obs, _, _, _, info = self.env.step(a)
            c.add_terms(info)
        c.episode_actions = list(actions)
        if obs_checksum(self.obs) != state["obs_checksum"]:
            self.log("[yellow]warning: the environment did not replay to the checkpointed state; starting a new episode[/]")
            c.episode += 1
            c.episode_return, c.episode_length, c.episode_actions, c.episode_terms = 0.0, 0, [], {}
            self.obs, _ = self.env.reset(seed=episode_seed(self.cfg.training.seed, c.episode))
        replay_file = path.parent / checkpoint.replay_name(c.step)
        if state["replay_saved"] and replay_file.is_file():
            self.buffer.load_state_dict(checkpoint.load_replay(replay_file))
            replay_note = f"replay restored ({len(self.buffer):,} transitions)"
        else:
            self.buffer.set_rng_state(state["replay_rng"])
            replay_note = (
                "replay contents were not saved (use --save-replay to keep them); updates resume once "
                f"the buffer holds {self.cfg.training.batch_size} new transitions"
            )
        if self.guard is not None and state.get("guard"):
            self.guard.load_state_dict(state["guard"])
            self._kept_last_good = self.guard.first_alert_step is not None
        checkpoint.restore_rng(state["rng"])
        self.rng.bit_generator.state = state["rng"]["trainer"]
        self._note_checkpoint(path.resolve())
        self.log(f"resumed from {path.resolve().name} at step {c.step}; {replay_note}")
        self._step_at_log = c.step
        self._updates_at_log = self.agent.total_it
        return c.step

    # ---- one run ----------------------------------------------------------------------------
    def _behaviour_actions(self, shape: tuple[int, ...]) -> np.ndarray:
        return schedule.exploration_actions(self.rng, self.c.step, self.cfg.agent, self.cfg.training,
                                            lambda: self.agent.act(self.obs["image"], self.obs["vector"]), shape)

    def _write(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def _log_point(self) -> None:
        now = time.perf_counter()
        dt = max(now - self._time_at_log, 1e-9)
        values = dict(self._pending)
        values[tags.ENV_STEPS_PER_S] = (self.c.step - self._step_at_log) / dt
        values[tags.UPDATES_PER_S] = (self.agent.total_it - self._updates_at_log) / dt
        values[tags.BUFFER_SIZE] = float(len(self.buffer))
        values[tags.FRAMES] = float(self.c.frames)
        values[tags.EXPLORATION_STD] = schedule.exploration_std(self.c.step, self.cfg.agent, self.cfg.training.learning_starts)
        if self.guard is not None:
            values.update(self.guard.log_values())
        self._write(values, self.c.step)
        self._pending.clear()
        self._time_at_log, self._step_at_log, self._updates_at_log = now, self.c.step, self.agent.total_it
        self._last_values = values

    def _policy_state(self) -> dict:
        """What acting needs (actor, and the critic whose encoder it may read), on the CPU."""
        cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}
        return {"actor": cpu(self.agent.actor), "critic": cpu(self.agent.critic)}

    def _record_evaluations(self, results: list[tuple[int, EvalResult | None]]) -> None:
        for step, result in results:
            if result is None:  # the async evaluator was busy and a newer snapshot replaced this one
                self._frames_at_eval.pop(step, None)
                self._evals_skipped += 1
                self._write({tags.EVALS_SKIPPED: float(self._evals_skipped)}, self.c.step)
                self.log(f"[yellow]evaluation at step {step} skipped: the evaluator was still busy when a newer "
                         f"snapshot arrived ({self._evals_skipped} skipped so far)[/]")
                continue
            self.last_eval = {
                tags.EVAL_MEAN_REWARD: result.mean_reward,
                tags.EVAL_MEAN_LENGTH: result.mean_length,
                tags.EVAL_SUCCESS_RATE: result.success_rate,
                **(result.driving or {}),
            }
            self._write(self.last_eval, step)
            frames = self._frames_at_eval.pop(step, None)
            self.log(
                f"eval at step {step}{f' ({frames:,} frames)' if frames is not None else ''}: "
                f"return {result.mean_reward:.1f} ± {result.returns.std():.1f}, "
                f"length {result.mean_length:.0f}, success {result.success_rate:.0%}"
            )
            if self.on_eval is not None:
                self.on_eval(step, dict(self.last_eval))

    def _on_alerts(self, alerts: list[Alert]) -> None:
        assert self.guard is not None
        if not alerts:
            if self._ckpt_unverified is not None:
                self._ckpt_good, self._ckpt_unverified = self._ckpt_unverified, None
            return
        for a in alerts:
            if self.guard.counts[a.tag] == 1:  # the first of its kind; later ones are counted, not printed
                self.log(f"[bold red]alert[/] {a.message}" + (" [bold](policy: stop)[/]" if a.stop else ""))
        if not self._kept_last_good:
            self._kept_last_good = True
            if self._ckpt_good is None:
                self.log(f"[yellow]no good checkpoint before the first alert (step {self.c.step}): none was written "
                         "before it, or the updates after the last one alerted; a checkpoint_freq below "
                         "learning_starts gives one before the first update[/]")
            else:
                checkpoint.keep_last_good(self.run_dir, self._ckpt_good)
                self.log(f"last good state: {self._ckpt_good.name} kept as checkpoints/{checkpoint.LAST_GOOD}")

    def _guard_stopped(self) -> bool:
        return self.guard is not None and self.guard.stop is not None

    def _finish_guard_stop(self) -> str:
        """Log the stop; point latest.pt at the last good checkpoint so that --resume starts from it."""
        assert self.guard is not None and self.guard.stop is not None
        ckpt_dir = self.run_dir / checkpoint.CHECKPOINT_DIR
        good = ckpt_dir / checkpoint.LAST_GOOD
        message = f"guard stopped the run: {self.guard.stop.message}"
        self.log(f"[bold red]{message}[/]")
        if good.exists():
            step_file = ckpt_dir / f"step_{checkpoint.load(good)['counters']['step']}.pt"
            if step_file.exists():
                checkpoint.point_latest(ckpt_dir, step_file)
            self.log(f"last good state: {good} ({step_file.name}); latest.pt points at it, so "
                     f"`td3drive train --resume {self.run_dir}` continues from there")
        else:
            self.log("no checkpoint was written before the first alert: there is no good state to keep")
        return message

    def _handle_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def step(self) -> None:
        """One env step (``num_envs`` with vectorised collection), its storage, and whatever updates,
        logging, evaluation and checkpoint fall on it."""
        prev = self.c.step
        if self.num_envs == 1:
            self._collect_one()
        else:
            self._collect_vector()
        self._schedule(prev)

    def _collect_one(self) -> None:
        t, c = self.cfg.training, self.c
        action = self._behaviour_actions((2,))
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        c.add_terms(info)
        c.frames += int(info.get("frames", 1))
        self.buffer.add(self.obs, action, reward, next_obs, terminated, truncated)
        c.episode_actions.append(action)
        c.episode_return += float(reward)
        c.episode_length += 1
        c.step += 1
        if terminated or truncated:
            self._end_episode(c.episode_return, c.episode_length, c.episode_terms, c.step)
            c.episode_return, c.episode_length, c.episode_actions, c.episode_terms = 0.0, 0, [], {}
            self.obs, _ = self.env.reset(seed=episode_seed(t.seed, c.episode))
        else:
            self.obs = next_obs

    def _collect_vector(self) -> None:
        """One step of every env, actions from one batched forward pass. With SAME_STEP autoreset a
        finished env returns its next episode's first observation and the final one in ``info``."""
        c, n = self.c, self.num_envs
        actions = self._behaviour_actions((n, 2))
        next_obs, rewards, terminated, truncated, info = self.env.step(actions)
        c.frames += int(np.sum(info["frames"])) if "frames" in info else n
        for i in range(n):
            done = bool(terminated[i] or truncated[i])
            final = info["final_obs"][i] if done else None
            stored_next = final if done else {k: v[i] for k, v in next_obs.items()}
            self.buffer.add(i, {k: v[i] for k, v in self.obs.items()}, actions[i], float(rewards[i]), stored_next,
                            bool(terminated[i]), bool(truncated[i]))
            self._tallies[i] += (float(rewards[i]), 1)
            add_reward_terms(self._terms[i], info, i)
            if done:
                ret, length = self._tallies[i]
                self._end_episode(ret, int(length), self._terms[i], c.step + i + 1)
                self._tallies[i], self._terms[i] = 0, {}
        c.step += n
        self.obs = next_obs

    def _end_episode(self, ret: float, length: int, terms: dict[str, float], step: int) -> None:
        """Log a finished episode (return, length, reward terms) at env step ``step`` and count it."""
        self._write({tags.EPISODE_REWARD: ret, tags.EPISODE_LENGTH: length,
                     **{tags.env_reward(k): v for k, v in terms.items()}}, step)
        self.c.last_episode_return = ret
        self.c.episode += 1

    def _schedule(self, prev: int) -> None:
        """Updates, log point, evaluation and checkpoint for the env steps ``(prev, c.step]``: each falls
        on every multiple of its frequency crossed (with one env, exactly ``step % freq == 0``)."""
        t, c = self.cfg.training, self.c
        crossed = partial(schedule.crossed, prev, c.step)
        if len(self.buffer) >= t.batch_size:
            for _ in range(schedule.updates_due(prev, c.step, t)):
                telemetry = self.agent.update(self.buffer.sample(t.batch_size, self.device))
                self._pending.update(telemetry)
                if self.guard is not None:
                    self._on_alerts(self.guard.check(telemetry, c.step))
                    if self.guard.stop is not None:
                        # Log the stopping update's alerts now; no evaluation or checkpoint of this state.
                        self._log_point()
                        return
        if crossed(self.cfg.logging.log_freq):
            self._log_point()
        if self.evaluator is not None:
            if crossed(t.eval_freq):
                self._frames_at_eval[c.step] = c.frames
                self.evaluator.submit(c.step, self.agent.act, self._policy_state)
            self._record_evaluations(self.evaluator.poll())
        if crossed(t.checkpoint_freq):
            self.save_checkpoint()

    def train(self) -> TrainResult:
        """Train until ``max_timesteps`` or a signal; always ends with a checkpoint and a closed event file."""
        t = self.cfg.training
        progress = Progress(
            TextColumn("[bold]train[/] agent steps"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), console=console, disable=not self.cfg.logging.progress, transient=False,
        )
        try:
            if self.evaluator is not None and t.eval_at_start and self.c.step == 0:
                self.evaluator.submit(0, self.agent.act, self._policy_state)  # the untrained policy's level
            with progress:
                task = progress.add_task("train", total=t.max_timesteps, completed=self.c.step, info="")
                while self.c.step < t.max_timesteps and self._stop_signal is None and not self._guard_stopped():
                    prev = self.c.step
                    self.step()
                    if schedule.crossed(prev, self.c.step, self.cfg.logging.log_freq):
                        progress.update(task, completed=self.c.step, info=self._progress_info())
            if self._guard_stopped():
                guard_stop = self._finish_guard_stop()
            else:
                guard_stop = None
                if self._checkpoint_step != self.c.step or self.replay_at_end:
                    self.save_checkpoint(with_replay=self.replay_at_end)
                if self.evaluator is not None and self._stop_signal is None:
                    self._record_evaluations(self.evaluator.drain())
        finally:
            restore_handlers(self._old_handlers)
            self.writer.close()
            self.env.close()
            if self.evaluator is not None:
                if self._stop_signal is not None and self.evaluator.pending:
                    self.log(f"{self.evaluator.pending} pending evaluation(s) abandoned (stopped by a signal)")
                # A running evaluation is abandoned at its next env step; the process then closes its envs.
                self.evaluator.close()
        code = EXIT_OK
        if self._stop_signal is not None:
            code = EXIT_SIGINT if self._stop_signal == signal.SIGINT else EXIT_SIGTERM
            self.log(f"stopped by signal {signal.Signals(self._stop_signal).name} at step {self.c.step}")
        if self.guard is not None and self.guard.summary():
            self.log(f"alerts: {self.guard.summary()}")
        verdict = self._write_report()
        if code == EXIT_OK and (guard_stop is not None or verdict == "NO-GO"):
            code = EXIT_NO_GO
        return TrainResult(self.run_dir, code, self.c.step, self.c.episode, self.last_eval, verdict, guard_stop)

    def _write_report(self) -> str | None:
        """report.md and report.json from the run's event files (the analyzer sees what anyone would)."""
        from td3drive.analysis import report
        from td3drive.analysis.criteria import CriteriaError
        from td3drive.analysis.events import EventReadError

        try:
            r = report.analyze(self.run_dir, self.criteria_file, stage=self.stage)
        except (EventReadError, CriteriaError) as e:
            self.log(f"[yellow]report not written: {e}[/]")
            return None
        report.write_report(r, self.run_dir)
        counts = r.to_dict()["counts"]
        self.log(f"verdict: [bold]{r.verdict}[/] ({counts['critical']} critical, {counts['warning']} warnings) "
                 f"- {self.run_dir / 'report.md'}")
        return r.verdict

    def _progress_info(self) -> str:
        v = self._last_values
        parts = [f"{self.c.frames:,} frames", f"{v.get(tags.ENV_STEPS_PER_S, 0.0):5.1f} steps/s",
                 f"{v.get(tags.UPDATES_PER_S, 0.0):5.1f} upd/s", f"ep return {self.c.last_episode_return:8.1f}"]
        if tags.Q1 in v:
            parts.append(f"Q {v[tags.Q1]:8.2f}")
        if self.guard is not None and self.guard.summary():
            parts.append(f"[red]alerts: {self.guard.summary()}[/]")
        return "  ".join(parts)


def train(cfg: Config, run_dir: str | Path, resume: bool = False, **kwargs) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (or continue it); the function the CLI and tests call.

    ``kwargs`` go to :class:`Trainer` (``criteria_file``, ``stage``, ``replay_at_end``, ``log``).
    """
    return Trainer(cfg, run_dir, resume=resume, **kwargs).train()
