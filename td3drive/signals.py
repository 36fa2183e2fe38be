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
from multiprocessing import resource_tracker
from contextlib import contextmanager
from typing import Iterator

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
