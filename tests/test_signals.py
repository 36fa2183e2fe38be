"""Signals belong to the trainer: a Ctrl-C (SIGINT to the whole process group) or a group-wide SIGTERM
at any moment ends a real ``td3drive train`` with a checkpoint, a report and exit code 130 / 143,
within seconds, and leaves no process behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from td3drive.core.signals import STOP_SIGNALS, catch_stop_signals, restore_handlers, shielded


def _blocked(pid: int) -> set[int]:
    """Signals blocked in process ``pid`` (Linux /proc)."""
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("SigBlk:"))
    mask = int(line.split()[1], 16)
    return {s for s in range(1, 65) if mask >> (s - 1) & 1}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal masks from /proc (Linux)")
def test_workers_started_in_shielded_block_stop_signals_and_the_parent_does_not():
    import gymnasium as gym

    with shielded():
        envs = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2, context="spawn")
    try:
        for p in envs.processes:
            assert set(STOP_SIGNALS) <= _blocked(p.pid)
        assert not set(STOP_SIGNALS) & _blocked(os.getpid())
    finally:
        envs.close()


def test_catch_and_restore_handlers():
    seen = []
    old = catch_stop_signals(lambda signum, frame: seen.append(signum))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    finally:
        restore_handlers(old)
    assert seen == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is old[signal.SIGTERM]


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of group ``pgid`` remains (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


# Moments after start (seconds): while the interpreter imports, while the env and evaluation workers
# start, during training with evaluations running or queued: one seeded draw in each of these spans.
_rng = np.random.default_rng(13)
MOMENTS = [round(float(_rng.uniform(lo, hi)), 2) for lo, hi in ((0.2, 1.5), (1.5, 4.0), (4.0, 6.5), (6.5, 9.0))]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after_s", MOMENTS)
def test_signal_to_the_process_group_ends_with_checkpoint_report_and_its_exit_code(tmp_path, sig, after_s):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "td3drive.cli", "train", "--env", "lanekeep", "--run-dir", str(run),
           "--max-timesteps", "200000", "--eval-freq", "150", "--checkpoint-freq", "0",
           "--set", "training.num_envs=2", "--set", "training.eval_workers=2", "--set", "training.num_eval_episodes=4",
           "--set", "training.learning_starts=100", "--set", "logging.progress=false"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(after_s)
    os.killpg(proc.pid, sig)
    sent = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    took = time.monotonic() - sent
    if not (run / "config.yaml").exists():
        # The signal came before the trainer existed (the interpreter was still importing): the process
        # ends by the signal and nothing was written, which is not a half-written run either.
        assert proc.returncode in (-sig, 128 + sig), out
        assert not run.exists() or not any(run.iterdir())
        return
    assert proc.returncode == 128 + sig, out
    assert "Traceback" not in out, out
    assert took < 20, f"took {took:.1f} s to stop"
    latest = run / "checkpoints" / "latest.pt"
    assert latest.exists(), out
    report = json.loads((run / "report.json").read_text())
    assert report["schema"] == "td3drive.report/1"
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "worker processes outlived the trainer"
