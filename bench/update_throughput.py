"""Update throughput: td3drive's TD3 update (the default recipe) vs Stable-Baselines3 TD3 ``train()``.

    python bench/update_throughput.py --updates 40 --repeats 3 [--batch 128] [--device cpu|cuda]

Both on 4x84x84 uint8 frame stacks, the same random transitions, Adam at 3e-4, policy delay 2,
Polyak targets; a replay of 5,000 transitions is filled first and each update samples its batch from
it (sampling is part of an update in both; td3drive's as its trainer does: n-step targets of the
default config, reused host arrays). td3drive: the default ``AgentConfig`` (``critic`` encoder, 50
LayerNorm features, random shift, 3-step returns), the same with ``separate`` encoders, and with
``agent.precision: bf16`` (encoders under bfloat16 autocast); at ``--batch`` (default 128, the recipe's);
SB3: ``CnnPolicy`` (image only, actor and critic each with their own NatureCNN, which is SB3's TD3
default). Reported: updates/s, median of ``--repeats`` timed blocks of ``--updates`` updates after 3
warm-up updates, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

FILL, K = 5000, 14


def td3drive_runner(encoder: str, device: str, batch: int, precision: str = "fp32"):
    from td3drive.agent.replay import ReplayBuffer
    from td3drive.agent.td3 import TD3
    from td3drive.config import AgentConfig

    rng = np.random.default_rng(0)
    cfg = AgentConfig(encoder=encoder, precision=precision)
    buffer = ReplayBuffer(FILL, K, seed=0, n_step=cfg.n_step, gamma=cfg.gamma)
    obs = {
        "image": rng.integers(0, 256, (4, 84, 84), dtype=np.uint8),
        "vector": rng.standard_normal(K).astype(np.float32),
    }
    for i in range(FILL):
        nxt = {"image": np.concatenate([obs["image"][1:], rng.integers(0, 256, (1, 84, 84), dtype=np.uint8)]),
               "vector": rng.standard_normal(K).astype(np.float32)}
        buffer.add(
            obs, rng.uniform(-1, 1, 2).astype(np.float32), float(rng.standard_normal()), nxt, False, (i + 1) % 1000 == 0
        )
        obs = nxt
    agent = TD3(K, cfg, device)
    return lambda: agent.update(buffer.sample(batch, torch.device(device), reuse=True))


def sb3_runner(device: str, batch: int):
    from stable_baselines3 import TD3

    class Dummy(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
        action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    model = TD3("CnnPolicy", Dummy(), buffer_size=FILL, batch_size=batch, policy_delay=2, learning_rate=3e-4,
                device=device, seed=0, verbose=0)
    rng = np.random.default_rng(0)
    for _ in range(FILL):
        o = rng.integers(0, 256, (1, 4, 84, 84), dtype=np.uint8)
        model.replay_buffer.add(o, o, rng.uniform(-1, 1, (1, 2)), rng.standard_normal(1), np.zeros(1), [{}])
    model._logger = __import__("stable_baselines3.common.logger", fromlist=["configure"]).configure(None, [""])
    return lambda: model.train(gradient_steps=1, batch_size=batch)


def timed(step, n: int, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--updates", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    d, b = args.device, args.batch
    runners = {
        "td3drive TD3, default recipe (encoder: critic)": td3drive_runner("critic", d, b),
        "td3drive TD3, default recipe with encoder: separate": td3drive_runner("separate", d, b),
        "td3drive TD3, default recipe with precision: bf16": td3drive_runner("critic", d, b, "bf16"),
        "SB3 TD3 CnnPolicy train()": sb3_runner(d, b),
    }
    for step in runners.values():
        for _ in range(3):
            step()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, step in runners.items():
            rates[name].append(timed(step, args.updates, args.device))
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sb3 = statistics.median(rates["SB3 TD3 CnnPolicy train()"])
    print(f"\nbatch {b}, {device}, median of {args.repeats} x {args.updates} updates\n")
    print("| implementation | updates/s | vs SB3 |")
    print("|---|---|---|")
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"| {name} | {med:.2f} | {med / sb3:.2f}x |")


if __name__ == "__main__":
    main()
