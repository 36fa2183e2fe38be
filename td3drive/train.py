"""The training loop: collect -> store -> update -> log -> evaluate -> checkpoint.

Resume is exact: every episode is reset with its own seed (``core.seeding.episode_seed``) and the
checkpoint keeps the actions taken so far in the current episode, so a resumed run rebuilds the
simulator state by replaying them (``collect.Collector.restore``), then restores networks, optimizers,
counters and every RNG. With ``training.save_replay`` the replay contents are saved too and the
continuation is bit-identical to an uninterrupted run; a run a signal ends saves them beside its final
checkpoint (``training.replay_on_stop``), so stopping a run and resuming it later costs nothing.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from td3drive import checkpoint, run_state, schedule
from td3drive.agent.td3 import TD3
from td3drive.collect import Counters
from td3drive.collectors import make_collector
from td3drive.config import Config, save_yaml
from td3drive.core import seeding, tags, verdicts
from td3drive.core.device import resolve_device
from td3drive.core.signals import catch_stop_signals, restore_handlers, take_early_stop_signal
from td3drive.envs import vector_dim
from td3drive.evaluator import make_evaluator
from td3drive.guard import Guard
from td3drive.last_good import LastGood
from td3drive.run_log import RunLog
from td3drive.timing import PhaseClock, summary_line
from td3drive.update_thread import InlineUpdates, UpdateThread

# soft_wrap: a line is never broken at the terminal's width, which for a log file (no terminal) rich takes as
# 80 columns and so split evaluation lines mid-text (`grep 'eval at'` then missed their end).
console = Console(stderr=True, soft_wrap=True)


def default_run_dir(cfg: Config, root: str | Path = "runs", prefix: str = "") -> Path:
    """``runs/<prefix><env>-s<scenario>-seed<seed>-<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{prefix}{cfg.env.name}-s{cfg.env.scenario}-seed{cfg.training.seed}-{stamp}"


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    """Owns one run directory: its env, agent, replay buffer, event file and checkpoints.

    ``criteria_file``/``stage`` select the thresholds of the end-of-run report; ``replay_at_end`` saves
    the replay contents with the final checkpoint (``validate`` continues from it); ``on_eval`` is called
    with (env step, eval/* values) after each evaluation (``sweep`` reports them to Ray Tune).
    """

    def __init__(self, cfg: Config, run_dir: str | Path, resume: bool = False,
                 log: Callable[[str], None] | None = None, criteria_file: str | Path | None = None,
                 stage: str | None = None, replay_at_end: bool = False,
                 on_eval: Callable[[int, dict[str, float]], None] | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.log = log or console.print
        self.criteria_file, self.stage, self.replay_at_end, self.on_eval = criteria_file, stage, replay_at_end, on_eval
        # Signals are caught from the first moment: one that arrives while the workers start still ends
        # the run with a checkpoint and a report (train() checks the flag before its first step).
        self._old_handlers = catch_stop_signals(self._handle_signal)
        self.clock = PhaseClock()  # where the wall-clock time goes (timing.json); the start-up counts from here
        self._stop_signal: int | None = take_early_stop_signal()  # one that came while modules imported
        try:
            self._build(resume)
        except BaseException:
            restore_handlers(self._old_handlers)
            raise

    def _build(self, resume: bool) -> None:
        cfg, t = self.cfg, self.cfg.training
        if resume and t.num_envs > 1:
            raise checkpoint.CheckpointError("--resume with training.num_envs > 1 is not supported yet")
        self.device = resolve_device(t.device)
        seed_everything(t.seed)
        self.c, k = Counters(), vector_dim(cfg.env)
        # The collector allocates the replay first: the one thing that may not fit, before anything is written.
        self.collector = make_collector(cfg, self.c, min(t.buffer_size, t.max_timesteps), k, self.log)
        self.buffer = self.collector.buffer
        self.agent = TD3(k, cfg.agent, self.device)
        if self.collector.acts_itself:  # Ray actors act with snapshots of this agent's policy
            self.collector.bind(self.agent)
        # The trainer's exploration noise has its own seed stream (7), apart from torch's and the replay's.
        self.rng = seeding.rng(t.seed, seeding.EXPLORATION)
        self.guard = Guard(cfg.guard) if cfg.guard.enabled else None
        self.last_good = LastGood(self.run_dir, self.log)
        self._checkpoint_step = -1
        self._ablated_at = 0  # agent step of the last evaluation that ran the input ablations
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A run restarted from step 0 (killed before its first checkpoint) drops what it logged before.
        purge_step = 0 if any(self.run_dir.glob("events.out.tfevents.*")) else None
        if resume:
            purge_step = self._checkpoint_step = run_state.restore(self)
        else:
            self.collector.reset()
        self.updates = UpdateThread(self.agent) if t.overlap_updates else InlineUpdates(self.agent)  # post-restore
        save_yaml(cfg, self.run_dir / "config.yaml")
        self.run_log = RunLog(self.run_dir, self.log, purge_step)
        self.run_log.start_rates_at(self.c.step, self.agent.total_it)
        self.every_log, self.every_eval = schedule.Every(cfg.logging.log_freq), schedule.Every(t.eval_freq)
        self.every_checkpoint = schedule.Every(t.checkpoint_freq)
        # Last, so that nothing above can fail and leave an evaluation process behind.
        self.evaluator = make_evaluator(cfg, k)

    @property
    def obs(self) -> dict[str, np.ndarray]:
        return self.collector.obs

    @property
    def last_eval(self) -> dict[str, float] | None:
        return self.run_log.last_eval

    def save_checkpoint(self, with_replay: bool = False) -> Path:
        """Write ``checkpoints/step_<N>.pt`` (and the replay with ``with_replay`` or ``training.save_replay``)."""
        path = run_state.save_checkpoint(self, with_replay)
        self._checkpoint_step = self.c.step
        return path

    def _behaviour_actions(self, shape: tuple[int, ...]) -> np.ndarray:
        policy = self.updates.policy  # with overlapped updates, a snapshot no update writes to
        return schedule.exploration_actions(self.rng, self.c.step, self.cfg.agent, self.cfg.training,
                                            lambda: policy.act(self.obs["image"], self.obs["vector"]), shape)

    def _log_point(self) -> None:
        extra = {tags.BUFFER_SIZE: float(len(self.buffer)), **self.collector.log_values(),
                 tags.EXPLORATION_STD: schedule.exploration_std(self.c.step, self.cfg.agent,
                                                                self.cfg.training.learning_starts)}
        self.run_log.point(self.c.step, self.c.frames, self.agent.total_it,
                           {**extra, **(self.guard.log_values() if self.guard is not None else {})})

    def _record_evaluations(self, results: list) -> None:
        for step, values in self.run_log.evaluations(results, self.c.step):
            if self.on_eval is not None:
                self.on_eval(step, values)

    def _handle_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def _guard_stopped(self) -> bool:
        return self.guard is not None and self.guard.stop is not None

    def step(self) -> None:
        """One env step (``num_envs`` with vectorised collection), its storage, and whatever updates,
        logging, evaluation and checkpoint fall on it (each on every multiple of its frequency crossed)."""
        prev, t, clock = self.c.step, self.cfg.training, self.clock
        t0 = time.perf_counter()
        actions = None if self.collector.acts_itself else self._behaviour_actions(self.collector.action_shape)
        t0 = clock.add("act", t0)
        self.collector.send(actions)
        t0 = clock.add("env", t0)
        # Env processes (num_envs > 1) step while this process runs the updates owed for the step, on the
        # transitions stored up to the previous step (on a GPU a third of the time was the wait: BENCHMARKS 12b).
        due = schedule.updates_due(prev, self.c.step, t) if len(self.buffer) >= t.batch_size else 0
        stopped = bool(due) and not self.updates.run(
            lambda reuse: self.buffer.sample(t.batch_size, self.device, reuse=reuse), due, self._checked)
        t0 = clock.add("update", t0)
        for end in self.collector.receive():
            self.run_log.episode(end)
            self.c.last_episode_return = end.ret
        t0 = clock.add("env", t0)
        if stopped:
            self._log_point()  # the stopping update's alerts; no evaluation or checkpoint of this state
            clock.add("log", t0)
            return
        if self.every_log(prev, self.c.step):
            self._log_point()
        t0 = clock.add("log", t0)
        # An evaluation and a checkpoint read the agent: updates in flight land first (a stop skips both, as above).
        if self.every_eval(prev, self.c.step) or self.every_checkpoint(prev, self.c.step):
            if not self.updates.settle(self._checked):
                return self._log_point()
            t0 = clock.add("update", t0)
        if self.evaluator is not None:
            if self.every_eval(prev, self.c.step):
                self.run_log.frames_at_eval[self.c.step] = self.c.frames
                self.evaluator.submit(self.c.step, self.agent, self._ablation_due())
            self._record_evaluations(self.evaluator.poll())
            t0 = clock.add("evaluate", t0)
        if self.every_checkpoint(prev, self.c.step):
            self.save_checkpoint()
            clock.add("checkpoint", t0)

    def _ablation_due(self) -> bool:
        """This evaluation also runs the input ablations: the first one at or after each ablation_freq steps."""
        freq = self.cfg.training.ablation_freq
        if freq <= 0 or self.c.step // freq <= self._ablated_at // freq:
            return False
        self._ablated_at = self.c.step
        return True

    def _checked(self, telemetry: dict[str, float]) -> bool:
        """Record one update's telemetry and run the guard on it; False when the guard asks to stop."""
        self.run_log.pending.update(telemetry)
        if self.guard is None:
            return True
        alerts = self.guard.check(telemetry, self.c.step)
        for a in alerts:
            if self.guard.counts[a.tag] == 1:  # the first of its kind; later ones are counted, not printed
                self.log(f"[bold red]alert[/] {a.message}" + (" [bold](policy: stop)[/]" if a.stop else ""))
        self.last_good.after_update(alerts, self.c.step)
        return self.guard.stop is None

    def train(self) -> TrainResult:
        """Train until ``max_timesteps`` or a signal; always ends with a checkpoint and a closed event file."""
        t = self.cfg.training
        progress = Progress(TextColumn("[bold]train[/] agent steps"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                            disable=not self.cfg.logging.progress, transient=False)
        guard_stop = None
        try:
            if self.evaluator is not None and t.eval_at_start and self.c.step == 0:
                self.evaluator.submit(0, self.agent)  # the untrained policy's level
            with progress:
                task = progress.add_task("train", total=t.max_timesteps, completed=self.c.step, info="")
                self.clock.first_step()  # the start-up ends here
                while self.c.step < t.max_timesteps and self._stop_signal is None and not self._guard_stopped():
                    prev = self.c.step
                    self.step()
                    if self.every_log(prev, self.c.step):
                        alerts = self.guard.summary() if self.guard is not None else ""
                        progress.update(task, completed=self.c.step, info=self.run_log.progress_info(self.c, alerts))
                self.updates.settle(self._checked)  # the last updates land before the final checkpoint
            self.clock.last_step()
            if self._guard_stopped():
                guard_stop = self.last_good.guard_stop(self.guard)
            else:
                if self._checkpoint_step != self.c.step or self.replay_at_end:
                    self.save_checkpoint(with_replay=self.replay_at_end)
                if self._stop_signal is not None and t.replay_on_stop and not (t.save_replay or self.replay_at_end):
                    run_state.save_replay_for_resume(self)
                if self.evaluator is not None and self._stop_signal is None:
                    self._record_evaluations(self.evaluator.drain())
        finally:
            self._close()
        result = self._finish(guard_stop)
        self.log(summary_line(self.clock.finish(self.run_dir, self.c.step, self.agent.total_it)))
        return result

    def _close(self) -> None:
        restore_handlers(self._old_handlers)
        self.run_log.close()
        self.collector.close()
        if self.evaluator is not None:
            if self._stop_signal is not None and self.evaluator.pending:
                self.log(f"{self.evaluator.pending} pending evaluation(s) abandoned (stopped by a signal)")
            # A running evaluation is abandoned at its next env step; the process then closes its envs.
            self.evaluator.close()

    def _finish(self, guard_stop: str | None) -> TrainResult:
        """The exit code and the end-of-run report, once everything is closed."""
        code = verdicts.EXIT_OK
        if self._stop_signal is not None:
            code = verdicts.EXIT_SIGINT if self._stop_signal == signal.SIGINT else verdicts.EXIT_SIGTERM
            self.log(f"stopped by signal {signal.Signals(self._stop_signal).name} at step {self.c.step}")
        if self.guard is not None and self.guard.summary():
            self.log(f"alerts: {self.guard.summary()}")
        from td3drive.analysis.report import write_run_report

        verdict = write_run_report(self.run_dir, self.criteria_file, self.stage, self.log)
        if code == verdicts.EXIT_OK and (guard_stop is not None or verdict == verdicts.NO_GO):
            code = verdicts.EXIT_NO_GO
        return TrainResult(self.run_dir, code, self.c.step, self.c.episode, self.last_eval, verdict, guard_stop)


def train(cfg: Config, run_dir: str | Path, resume: bool = False, **kwargs) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (or continue it); the function the CLI and tests call.

    ``kwargs`` go to :class:`Trainer` (``criteria_file``, ``stage``, ``replay_at_end``, ``log``).
    """
    return Trainer(cfg, run_dir, resume=resume, **kwargs).train()
