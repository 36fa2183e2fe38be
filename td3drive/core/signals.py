"""Signals belong to the trainer, not to its worker processes.

A Ctrl-C in a terminal sends SIGINT to the whole foreground process group, and Slurm or systemd send
SIGTERM to the whole group: the env workers and the evaluation process get the signal at the same
moment as the trainer. A worker that dies of it takes the run down with it ("the evaluation process
died", no final checkpoint, no report). Workers started inside :func:`shielded` inherit SIGINT and
SIGTERM *blocked* (the mask survives fork and exec, and Python never unblocks it), so they keep
working until the trainer, which handles the signal, closes them; they also end when the trainer
dies, as their pipes to it close. Blocking (not ignoring) in the parent loses nothing: a signal that
arrives while workers start stays pending and is delivered to the trainer once the block ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from multiprocessing import resource_tracker
from typing import Callable, Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def shielded() -> Iterator[None]:
    """Start worker processes inside this block so that SIGINT and SIGTERM never reach them."""
    # multiprocessing's resource tracker, started with the first semaphore or shared memory, UNBLOCKS
    # SIGINT and SIGTERM in the caller after launching itself: start it before blocking.
    resource_tracker.ensure_running()
    # The mask is per thread and children inherit the starting thread's: this works in any thread
    # (a Ray Tune trial runs the trainer in one).
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


Handler = Callable[[int, object], None]


def catch_stop_signals(handler: Handler) -> dict[int, object]:
    """Install ``handler`` for SIGINT and SIGTERM; returns the previous handlers for :func:`restore_handlers`.

    Only the main thread may install handlers; elsewhere (a Ray Tune trial runs its function in a
    thread) the host process owns the signals, nothing is installed and ``{}`` is returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in sorted(STOP_SIGNALS)}


def restore_handlers(old: dict[int, object]) -> None:
    """Put back what :func:`catch_stop_signals` replaced."""
    for s, handler in old.items():
        signal.signal(s, handler)


_early: list[int] = []


def record_early_stop_signals() -> None:
    """Remember a SIGINT/SIGTERM that arrives before a Trainer exists (``td3drive train`` calls this first).

    While torch and the simulators import, a Ctrl-C would otherwise raise KeyboardInterrupt inside
    some library's import, where a bare ``except`` may swallow it: the run then trained on as if no
    signal had come (seen in tests/test_signals.py). The Trainer takes the remembered signal and stops
    at once, with a checkpoint and a report.
    """
    catch_stop_signals(lambda signum, frame: _early.append(signum))


def take_early_stop_signal() -> int | None:
    """The first signal :func:`record_early_stop_signals` remembered since the last call, or None."""
    signum = _early[0] if _early else None
    _early.clear()
    return signum
