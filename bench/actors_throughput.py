"""Collection on Ray actors against a slow simulator: agent steps collected per second with N actors
(td3drive/collect_ray.py) on one local Ray, next to today's single in-process collector, and the learner's own
bound (updates per second of the default update; at the default one update per env step it is the rate a
training run can consume).

    python bench/actors_throughput.py --actors 1,2,4,8,16 --latency-ms 50 --seconds 40

The env is CarRacing-v3 under the default config (camera + proprio vector, action repeat 4) with
``env.step_latency_ms`` added to every env step (50 ms: CARLA at 20 Hz; the process sleeps, as one waiting on a
simulator server does). Every actor acts with the default (untrained) policy plus the exploration noise of step
``learning_starts`` (a forward pass per step, as in training); no updates run here, so that the collection rate is
what is measured. Each configuration is timed after every actor has delivered its first chunk (Ray start-up and
the actors' imports are excluded and reported apart). Results go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _cfg(actors: int, latency_ms: float):
    from td3drive.config import build_config

    return build_config(sets=[f"training.actors={actors}", f"env.step_latency_ms={latency_ms}",
                              "training.learning_starts=0"])


def ray_rate(actors: int, latency_ms: float, seconds: float) -> tuple[float, float]:
    """(agent steps/s over ``seconds``, start-up seconds until every actor delivered a chunk)."""
    from td3drive.agent.td3 import TD3
    from td3drive.collect import Counters
    from td3drive.collect_ray import RayCollector
    from td3drive.envs import vector_dim

    cfg, c = _cfg(actors, latency_ms), Counters()
    t0 = time.perf_counter()
    col = RayCollector(cfg, c, 50_000, vector_dim(cfg), log=lambda m: None)
    col.bind(TD3(vector_dim(cfg), cfg.agent, "cpu"))
    try:
        col.reset()
        seen: set[int] = set()
        while len(seen) < actors:
            col.send()
            seen.add(col.last_actor)
            col.receive()
        startup = time.perf_counter() - t0
        start_step, start = c.step, time.perf_counter()
        while time.perf_counter() - start < seconds:
            col.send()
            col.receive()
        return (c.step - start_step) / (time.perf_counter() - start), startup
    finally:
        col.close()


def in_process_rate(latency_ms: float, seconds: float) -> float:
    """Today's single in-process collector (training.num_envs=1) on the same env, acting with the same policy."""
    import torch

    from td3drive import schedule
    from td3drive.agent.td3 import TD3
    from td3drive.collect import Collector, Counters
    from td3drive.envs import vector_dim

    cfg, c = _cfg(0, latency_ms), Counters()
    col = Collector(cfg, c, 50_000, vector_dim(cfg))
    agent, rng = TD3(vector_dim(cfg), cfg.agent, "cpu"), np.random.default_rng(0)
    torch.set_num_threads(1)  # as the actors (the learner's threads would be busy with updates)
    col.reset()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs = col.obs
        col.step(schedule.exploration_actions(rng, 0, cfg.agent, cfg.training,
                                              lambda: agent.act(obs["image"], obs["vector"]), (2,)))
    rate = c.step / (time.perf_counter() - start)
    col.close()
    return rate


def learner_rate(updates: int = 30) -> float:
    """Default updates per second on this machine (batch 128, all cores), after 3 warm-up updates."""
    import torch

    from td3drive.agent.replay import ReplayBuffer
    from td3drive.agent.td3 import TD3
    from td3drive.config import AgentConfig

    torch.set_num_threads(os.cpu_count() or 1)
    k, rng = 7, np.random.default_rng(0)
    buf = ReplayBuffer(3000, k, seed=0, n_step=3)
    obs = {"image": rng.integers(0, 255, (4, 84, 84), dtype=np.uint8), "vector": np.zeros(k, np.float32)}
    for i in range(2000):
        nxt = {"image": rng.integers(0, 255, (4, 84, 84), dtype=np.uint8), "vector": rng.normal(size=k).astype("f4")}
        buf.add(obs, rng.uniform(-1, 1, 2).astype("f4"), float(rng.normal()), nxt, False, i % 250 == 249)
        obs = nxt
    agent = TD3(k, AgentConfig(), "cpu")
    for _ in range(3):
        agent.update(buf.sample(128))
    start = time.perf_counter()
    for _ in range(updates):
        agent.update(buf.sample(128))
    return updates / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--actors", default="1,2,4,8,16")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=40.0)
    args = p.parse_args()
    import ray

    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        rows = []
        single = in_process_rate(args.latency_ms, args.seconds)
        print(f"in-process collector (num_envs=1): {single:.1f} agent steps/s", flush=True)
        base = None
        for n in [int(x) for x in args.actors.split(",")]:
            rate, startup = ray_rate(n, args.latency_ms, args.seconds)
            base = base or rate / n
            rows.append((n, rate, startup, rate / (n * base)))
            print(f"{n:3d} actors: {rate:7.1f} agent steps/s ({rate / (n * base):.2f} x N x one actor's rate; "
                  f"start-up {startup:.1f} s)", flush=True)
    finally:
        ray.shutdown()
    updates = learner_rate()
    print(f"learner: {updates:.1f} default updates/s (batch 128, {os.cpu_count()} threads): at one update per env "
          f"step a training run consumes at most {updates:.1f} agent steps/s on this machine")
    print("\n| collector | agent steps/s | x one actor | per actor vs one actor | start-up s |\n|---|---|---|---|---|")
    print(f"| in-process (num_envs=1) | {single:.1f} | | | |")
    for n, rate, startup, eff in rows:
        print(f"| {n} Ray actor(s) | {rate:.1f} | {rate / rows[0][1]:.2f} | {eff:.2f} | {startup:.1f} |")


if __name__ == "__main__":
    main()
