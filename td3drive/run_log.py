"""What a training run writes to its event file and its console: log points (the newest update's
telemetry, throughput, buffer, frames, exploration std, guard flags), finished episodes, evaluation
results, and the one-line progress text. All tag names come from ``td3drive.core.tags``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from td3drive.ablation import Ablation
from td3drive.collect import Counters, EpisodeEnd
from td3drive.core import tags
from td3drive.evaluate import EvalResult


class RunLog:
    """The run's TensorBoard event file and the rates measured between two log points.

    ``purge_step`` makes TensorBoard (and our analyzer) drop scalars an interrupted run logged after its
    last checkpoint, so a resumed run has no duplicated steps.
    """

    def __init__(self, run_dir: Path, log: Callable[[str], None], purge_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step, flush_secs=10)
        self.log = log
        self.pending: dict[str, float] = {}  # the newest update's telemetry, written at the next log point
        self.last_values: dict[str, float] = {}  # of the previous log point (the progress line reads them)
        self.last_eval: dict[str, float] | None = None
        self.evals_skipped = 0
        self.frames_at_eval: dict[int, int] = {}  # agent step -> simulator frames, of submitted evaluations
        self._time, self._step, self._updates = time.perf_counter(), 0, 0

    def start_rates_at(self, step: int, updates: int) -> None:
        """Measure the next rates from here (a resumed run starts mid-way)."""
        self._time, self._step, self._updates = time.perf_counter(), step, updates

    def write(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def point(self, step: int, frames: int, updates: int, extra: dict[str, float]) -> None:
        """A log point at env step ``step``: pending telemetry, env steps and updates per second since the
        previous point, and ``extra`` (buffer size, exploration std, guard flags)."""
        now = time.perf_counter()
        dt = max(now - self._time, 1e-9)
        values = {**self.pending, tags.ENV_STEPS_PER_S: (step - self._step) / dt,
                  tags.UPDATES_PER_S: (updates - self._updates) / dt, tags.FRAMES: float(frames), **extra}
        self.write(values, step)
        self.pending.clear()
        self._time, self._step, self._updates = now, step, updates
        self.last_values = values

    def episode(self, end: EpisodeEnd) -> None:
        self.write({tags.EPISODE_REWARD: end.ret, tags.EPISODE_LENGTH: end.length,
                    **{tags.env_reward(k): v for k, v in end.terms.items()}}, end.step)

    def evaluations(self, results: list[tuple[int, EvalResult | None]], step: int) -> list[tuple[int, dict]]:
        """Write finished evaluations (``None``: skipped, the evaluator was busy); returns (step, eval/*
        values) of each one written."""
        written = []
        for eval_step, result in results:
            frames = self.frames_at_eval.pop(eval_step, None)
            if result is None:  # the async evaluator was busy and a newer snapshot replaced this one
                self.evals_skipped += 1
                self.write({tags.EVALS_SKIPPED: float(self.evals_skipped)}, step)
                self.log(f"[yellow]evaluation at step {eval_step} skipped: the evaluator was still busy when a "
                         f"newer snapshot arrived ({self.evals_skipped} skipped so far)[/]")
                continue
            self.last_eval = {tags.EVAL_MEAN_REWARD: result.mean_reward, tags.EVAL_MEAN_LENGTH: result.mean_length,
                              tags.EVAL_SUCCESS_RATE: result.success_rate, **(result.driving or {})}
            self.write(self.last_eval, eval_step)
            self.log(f"eval at step {eval_step}{f' ({frames:,} frames)' if frames is not None else ''}: "
                     f"return {result.mean_reward:.1f} ± {result.returns.std():.1f}, "
                     f"length {result.mean_length:.0f}, success {result.success_rate:.0%}")
            if result.ablated:
                ablation = Ablation(result, result.ablated)
                self.write(ablation.scalars(), eval_step)
                self.log(f"  ablation at step {eval_step}: {ablation.verdict()}")
            written.append((eval_step, dict(self.last_eval)))
        return written

    def progress_info(self, c: Counters, alerts: str) -> str:
        """The progress bar's text: frames, rates, last episode return, Q, alerts so far."""
        v = self.last_values
        parts = [f"{c.frames:,} frames", f"{v.get(tags.ENV_STEPS_PER_S, 0.0):5.1f} steps/s",
                 f"{v.get(tags.UPDATES_PER_S, 0.0):5.1f} upd/s", f"ep return {c.last_episode_return:8.1f}"]
        if tags.Q1 in v:
            parts.append(f"Q {v[tags.Q1]:8.2f}")
        if alerts:
            parts.append(f"[red]alerts: {alerts}[/]")
        return "  ".join(parts)

    def close(self) -> None:
        self.writer.close()
