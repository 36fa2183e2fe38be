"""The evaluation process: policy snapshots evaluated in a separate process while training goes on
(:class:`AsyncEvaluator`), with its pipe protocol: the trainer sends ``step (8 bytes) | ablate (1 byte) |
torch.save(policy_state)``, the process answers ``(step, EvalResult)``, or ``(step, None)`` for a snapshot a
newer one replaced before it was evaluated; ``b""`` ends it."""

from __future__ import annotations

from typing import Callable

import numpy as np

from td3drive.ablation import evaluate_for_training
from td3drive.core.signals import shielded
from td3drive.evaluate import EvalResult, PolicySource, make_eval_envs


class EvaluationError(RuntimeError):
    """The evaluation process failed."""


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

    def submit(self, step: int, agent: PolicySource, ablate: bool = False) -> None:
        """Send a snapshot of ``agent``'s policy to the evaluation process; ``ablate``: also the input ablations."""
        import io

        import torch

        # Serialise to bytes now: multiprocessing would otherwise share tensor storage with the
        # live parameters, and the worker could evaluate weights that training has since changed.
        buf = io.BytesIO()
        torch.save(agent.policy_state(), buf)
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
