"""Collection on Ray actors: chunks complete and in order per actor, n-step targets that never cross actor
streams or a lost episode, a killed actor replaced while the run finishes, and a Ctrl-C that ends everything."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from td3drive.agent.replay import VectorReplay
from td3drive.analysis.events import read_run
from td3drive.collect_ray import CollectionActor, store_chunk
from td3drive.config import build_config
from td3drive.core import tags
from td3drive.core.seeding import episode_seed
from td3drive.envs import make_env

K = 3  # LaneKeep's vector length


def _cfg(tiny_sets, *extra):
    return build_config(sets=[*tiny_sets, "training.actors=2", "training.actor_chunk_steps=20", *extra])


def test_an_actors_chunks_are_its_env_rollout_complete_and_in_order(tiny_sets):
    cfg = _cfg(tiny_sets)  # random actions (learning_starts 64 > the global step given): episodes end off the lane
    actor = CollectionActor(cfg.to_dict(), index=1, vector_dim=K)
    chunks = [actor.collect(30, None, 0, global_step=0) for _ in range(3)]
    frames = np.concatenate([c["frames"] for c in chunks])
    actions = np.concatenate([c["actions"] for c in chunks])
    ends = [30 * j + t for j, c in enumerate(chunks) for _, _, _, t in c["ended"]]
    starts = [30 * j + t for j, c in enumerate(chunks) for t in sorted(c["starts"])]
    assert len(ends) >= 2 and starts == [0] + [e + 1 for e in ends if e + 1 < 90]  # each end starts the next
    assert [length for c in chunks for _, length, _, _ in c["ended"]] == list(np.diff([-1] + ends))
    # Replayed in a fresh env from the seeds actor 1 of 2 uses (its episode j: seed episode_seed(seed, 1 + 2 j)),
    # the same actions give the same frames, step by step, across the chunks' seams.
    env = make_env(cfg.env, training=True)
    expected = []
    for j, (lo, hi) in enumerate(zip(starts, starts[1:] + [90])):
        first, _ = env.reset(seed=episode_seed(cfg.training.seed, 1 + 2 * j))
        assert np.array_equal(first["image"], chunks[lo // 30]["starts"][lo % 30]["image"])
        expected += [env.step(actions[t])[0]["image"][-1] for t in range(lo, hi)]
    assert np.array_equal(frames, np.stack(expected))
    assert frames.dtype == np.uint8 and frames.shape == (90, 84, 84)  # one frame per transition, as stored


def _chunk(rewards, start=None, ended_at=None, frame=0):
    """A synthetic chunk of len(rewards) transitions; ``start``: the first observation at step 0."""
    n = len(rewards)
    term = np.zeros(n, bool)
    if ended_at is not None:
        term[ended_at] = True
    starts = {} if start is None else {0: {"image": np.full((4, 84, 84), frame, np.uint8),
                                           "vector": np.zeros(K, np.float32)}}
    return {"frames": np.full((n, 84, 84), frame, np.uint8), "vectors": np.zeros((n, K), np.float32),
            "actions": np.zeros((n, 2), np.float32), "rewards": np.asarray(rewards, float), "terminated": term,
            "truncated": np.zeros(n, bool), "starts": starts, "ended": [], "sim_frames": n, "version": 0}


def test_n_step_targets_never_cross_actor_streams_or_a_lost_episode():
    replay = VectorReplay(2, 1000, K, seed=0, n_step=3, gamma=1.0)
    for _ in range(4):  # interleaved arrival, as the learner receives them
        store_chunk(replay, 0, _chunk([1.0] * 10, start=not len(replay.buffers[0])))
        store_chunk(replay, 1, _chunk([100.0] * 10, start=not len(replay.buffers[1])))
    # Actor 0 dies mid-episode: the learner cuts its stream; the fresh actor's episode (rewards 10) starts anew.
    replay.cut(0)
    store_chunk(replay, 0, _chunk([10.0] * 10, start=True))
    for b, allowed in zip(replay.buffers, ({3.0, 2.0, 1.0, 30.0, 20.0, 10.0}, {300.0, 200.0, 100.0})):
        idx = np.flatnonzero(b.is_transition[:b.filled])
        sums, _, _ = b.n_step_targets(idx)
        # No 21, 12, 201: nothing mixed (a running episode's newest transitions stop short).
        assert set(np.round(sums, 3)) <= allowed, set(sums)
    lost = replay.buffers[0]
    idx = np.flatnonzero(lost.is_transition[:lost.filled])
    sums, discount, _ = lost.n_step_targets(idx)
    assert list(sums[38:42]) == [2.0, 1.0, 30.0, 30.0]  # the lost episode's last two stop short, bootstrapping
    assert list(discount[38:40]) == [1.0, 1.0]  # (truncated, not terminated: gamma^m = 1 here)
    assert len(replay) == 90


ray = pytest.importorskip("ray")


def _no_actor_processes() -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return not any("CollectionActor" in line or "raylet" in line for line in out.splitlines())


def test_a_killed_actor_is_replaced_and_the_run_finishes(tiny_sets, tmp_path):
    from td3drive.train import Trainer

    lines = []
    cfg = _cfg(tiny_sets, "training.max_timesteps=400")
    trainer = Trainer(cfg, tmp_path / "run", log=lines.append)
    col = trainer.collector
    pid = ray.get(col.actors[0].pid.remote())
    for _ in range(3):
        trainer.step()
    os.kill(pid, signal.SIGKILL)  # its simulator crashed
    result = trainer.train()
    assert result.exit_code == 0 and result.steps >= 400
    assert any("collection actor 0 died" in line for line in lines), lines
    restarts = read_run(tmp_path / "run").series[tags.ACTOR_RESTARTS].values
    assert restarts[-1] == 1 and read_run(tmp_path / "run").series[tags.DROPPED_EPISODES].values[-1] == 1
    assert _no_actor_processes()


def test_sigint_to_the_process_group_stops_every_actor_with_a_checkpoint_and_a_report(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "td3drive.cli", "train", "--env", "lanekeep", "--run-dir", str(run),
           "--max-timesteps", "200000", "--eval-freq", "0", "--checkpoint-freq", "0",
           "--set", "training.actors=2", "--set", "training.learning_starts=100", "--set", "logging.progress=false",
           "--set", "logging.log_freq=20", "--set", "agent.features_dim=64"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(run.glob("events.out.tfevents.*")) or not read_run(run).series.get(tags.POLICY_LAG):
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start collecting"
            time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    # ~6 s on a quiet 2-core machine (the chunk in flight, the checkpoint, stopping Ray), 12 s with a training run
    # beside it.
    assert time.monotonic() - sent < 30 and "Traceback" not in out, out
    assert (run / "checkpoints" / "latest.pt").exists()
    assert json.loads((run / "report.json").read_text())["schema"] == "td3drive.report/1"
    time.sleep(2)  # Ray's processes exit right after the driver's
    assert _no_actor_processes()
