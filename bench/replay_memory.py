"""Replay memory at scale: bytes per transition of td3drive's buffer when it holds N transitions.

    python bench/replay_memory.py --transitions 1000000

Allocates a ReplayBuffer for N transitions of 4x84x84 uint8 frame stacks + a 14-d vector, fills it
with N transitions in 1,000-step episodes (random frames, so every page is touched), and reports the
resident memory the process gained, per transition, next to what obs + next_obs stacks would need
(SB3's layout: 2 x 28,224 bytes of frames per transition, 28 KB with optimize_memory_usage).
Then times ``sample`` (median of 50, one torch thread) at batch 128 and 256, into fresh arrays and reused
ones, with ``--n-step`` returns:
the host work each update waits for, which bounds the update rate on a GPU.

    python bench/replay_memory.py --transitions 20000 --episode 250
    python bench/replay_memory.py --transitions 20000 --episode 250 --streams 3   # VectorReplay, 3 envs

``--streams S`` fills a ``VectorReplay`` of S per-env streams (what ``training.num_envs`` S collects into)
evenly and times its ``sample``, which gathers from every stream into one batch.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--episode", type=int, default=1000)
    p.add_argument("--n-step", type=int, default=3, help="the default recipe's n-step returns")
    p.add_argument("--streams", type=int, default=1, help="> 1: a VectorReplay of this many per-env streams")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from td3drive.agent.replay import ReplayBuffer, VectorReplay

    k, n = 14, args.transitions
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (64, 84, 84), dtype=np.uint8)  # reused content, distinct per slot copy
    base = rss_bytes()
    t = time.perf_counter()
    if args.streams > 1:
        vector = VectorReplay(args.streams, n, k, seed=0, n_step=args.n_step, gamma=0.99)
        buffer = vector.buffers[0]  # filled below; the others get copies of its contents
    else:
        buffer = ReplayBuffer(n, k, seed=0, n_step=args.n_step, gamma=0.99)
    stack = np.stack([frames[0]] * 4)
    obs = {"image": stack, "vector": np.zeros(k, np.float32)}
    action = np.zeros(2, np.float32)
    for i in range(n):
        nxt = {"image": np.concatenate([obs["image"][1:], frames[i % 64][None]]), "vector": np.zeros(k, np.float32)}
        truncated = (i + 1) % args.episode == 0
        buffer.add(obs, action, 0.0, nxt, False, truncated)
        obs = (
            nxt if not truncated else {"image": np.stack([frames[(i + 1) % 64]] * 4), "vector": np.zeros(k, np.float32)}
        )
    if args.streams > 1:
        for other in vector.buffers[1:]:
            other.load_state_dict(buffer.state_dict())
        buffer = vector
    fill_s = time.perf_counter() - t
    grown = rss_bytes() - base
    print(
        "| transitions stored | resident memory gained | bytes per transition | obs+next_obs stacks would need "
        "| fill time |"
    )
    print("|---|---|---|---|---|")
    print(f"| {len(buffer):,} | {grown / 2**30:.2f} GiB | {grown / len(buffer):,.0f} | "
          f"{len(buffer) * 2 * 4 * 84 * 84 / 2**30:.1f} GiB | {fill_s:.0f} s |")
    for batch in (128, 256):
        for reuse in (False, True):  # True: the trainer's way, one set of host arrays for every batch
            times = []
            for _ in range(50):
                t = time.perf_counter()
                buffer.sample(batch, reuse=reuse)
                times.append(time.perf_counter() - t)
            ms = 1000 * np.median(times)
            print(f"sample({batch}, reuse={reuse}), {args.n_step}-step targets: median {ms:.1f} ms")


if __name__ == "__main__":
    main()
