"""Stable-Baselines3 TD3 `CnnPolicy` on CarRacing-v3 at td3drive's settings: the peer of train_5k.py.

Same env pipeline as td3drive (4x84x84 grayscale stack, [steer, throttle_brake] actions, time limit
1000), image only (CnnPolicy), learning_starts 1000, train_freq 50, gradient_steps 1, batch 256,
buffer capped to the run length, policy_delay 2, Gaussian exploration noise 0.1, evaluation of
10 deterministic episodes every eval_freq steps, a checkpoint at the end.

    python bench/sb3_td3.py --max-timesteps 5000 --eval-freq 3000 --out /tmp/sb3
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np


class ImageOnly(gym.ObservationWrapper):
    def __init__(self, env):
        super().__init__(env)
        self.observation_space = env.observation_space["image"]

    def observation(self, obs):
        return obs["image"]


def make(seed: int, stock_render: bool):
    from td3drive.config import EnvConfig
    from td3drive.envs import make_env

    env = ImageOnly(make_env(EnvConfig(name="carracing", fast_render=not stock_render)))
    env.reset(seed=seed)
    return env


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--max-timesteps", type=int, default=5000)
    p.add_argument("--eval-freq", type=int, default=3000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--out", default="/tmp/sb3_td3")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stock-render", action="store_true", help="CarRacing's own renderer (what an SB3 user runs)")
    a = p.parse_args()
    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    t0 = time.perf_counter()
    env = Monitor(make(a.seed, a.stock_render))
    model = TD3(
        "CnnPolicy", env, learning_starts=1000, train_freq=50, gradient_steps=1, batch_size=256,
        buffer_size=min(1_000_000, a.max_timesteps), policy_delay=2, tau=0.005, gamma=0.99, learning_rate=3e-4,
        action_noise=NormalActionNoise(np.zeros(2), 0.1 * np.ones(2)), seed=a.seed, device="cpu",
        tensorboard_log=a.out, verbose=0,
    )
    callbacks = []
    if a.eval_freq:
        callbacks.append(EvalCallback(Monitor(make(a.seed + 1, a.stock_render)), eval_freq=a.eval_freq,
                                      n_eval_episodes=a.eval_episodes, deterministic=True, verbose=0, log_path=a.out))
    model.learn(total_timesteps=a.max_timesteps, callback=callbacks)
    model.save(f"{a.out}/final")
    print(f"sb3 wall_s {time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
