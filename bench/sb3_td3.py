"""Stable-Baselines3 TD3 `CnnPolicy` on CarRacing-v3 through td3drive's env pipeline: the peer run.

Same observations as td3drive (4x84x84 grayscale stack; image only, CnnPolicy), the same
[steer, throttle_brake] actions, action repeat and 1,000-frame episodes (``EnvConfig`` defaults), and
the same evaluation protocol (deterministic episodes with the stock rules). Two settings:

- ``--defaults``: SB3's own TD3 defaults (learning_starts 100, train_freq 1, gradient_steps 1,
  batch 256, policy_delay 2, tau 0.005, gamma 0.99, learning rate 1e-3, separate actor/critic CNNs)
  plus Gaussian exploration noise 0.1 (SB3's default is no noise at all, which does not explore) and a
  replay of at most 100,000 transitions (SB3 stores obs and next_obs stacks: 1M would need 56 GB).
- without it: td3drive's former (reference-system) schedule: learning_starts 1000, train_freq 50,
  gradient_steps 1, batch 256, learning rate 3e-4 (bench/train_5k.py's peer).

Writes ``curve.csv`` after every evaluation, so an interrupted run keeps its curve: steps, frames,
wall_s (seconds of training before the evaluated snapshot, evaluations excluded), return, and the epoch
seconds at which the evaluation started and ended (``eval_start``, ``eval_end``: bench/learning.py
subtracts a SIGSTOP pause outside evaluations from ``wall_s`` with them); and ``evaluations.npz`` (SB3's
EvalCallback).

    python bench/sb3_td3.py --defaults --max-timesteps 20000 --eval-freq 2500 --out /tmp/sb3
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
    p.add_argument("--defaults", action="store_true", help="SB3's own TD3 defaults (see the module docstring)")
    p.add_argument("--stock-render", action="store_true", help="CarRacing's own renderer (what an SB3 user runs)")
    a = p.parse_args()
    import signal
    from pathlib import Path

    # A process started in the background of a non-interactive shell inherits SIGINT as ignored; bench/learning.py
    # ends runs with SIGINT, so take it back (td3drive's trainer installs its own handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from stable_baselines3 import TD3
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    from td3drive.config import EnvConfig

    t0 = time.perf_counter()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    repeat = EnvConfig().action_repeat
    env = Monitor(make(a.seed, a.stock_render))
    noise = NormalActionNoise(np.zeros(2), 0.1 * np.ones(2))
    if a.defaults:
        settings = dict(buffer_size=min(100_000, a.max_timesteps))
    else:
        settings = dict(learning_starts=1000, train_freq=50, gradient_steps=1, batch_size=256, learning_rate=3e-4,
                        buffer_size=min(1_000_000, a.max_timesteps), policy_delay=2, tau=0.005, gamma=0.99)
    model = TD3("CnnPolicy", env, action_noise=noise, seed=a.seed, device="cpu", tensorboard_log=a.out, verbose=0,
                **settings)
    (out / "curve.csv").write_text("steps,frames,wall_s,return,eval_start,eval_end\n")

    class Stamp(BaseCallback):
        """Runs before EvalCallback on every step: the wall-clock of the snapshot an evaluation will judge
        (as for td3drive, whose evaluations run beside training, evaluation time is not counted)."""

        at = 0.0
        epoch = 0.0

        def _on_step(self) -> bool:
            Stamp.at, Stamp.epoch = time.perf_counter() - t0 - eval_s[0], time.time()
            return True

    eval_s = [0.0]  # seconds spent evaluating so far

    class WriteCurve(BaseCallback):
        """After each evaluation: one line of curve.csv (frames = agent steps x action repeat)."""

        def _on_step(self) -> bool:
            ev = self.parent
            eval_s[0] = time.perf_counter() - t0 - Stamp.at
            with open(out / "curve.csv", "a") as f:
                f.write(f"{ev.num_timesteps},{ev.num_timesteps * repeat},{Stamp.at:.1f},{ev.last_mean_reward:.3f},"
                        f"{Stamp.epoch:.1f},{time.time():.1f}\n")
            return True

    callbacks: list = [Stamp()]
    if a.eval_freq:
        callbacks.append(EvalCallback(Monitor(make(a.seed + 1, a.stock_render)), eval_freq=a.eval_freq,
                                      n_eval_episodes=a.eval_episodes, deterministic=True, verbose=0, log_path=a.out,
                                      callback_after_eval=WriteCurve()))
    try:
        model.learn(total_timesteps=a.max_timesteps, callback=callbacks)
    except KeyboardInterrupt:  # bench/learning.py ends a run at its wall-clock budget with SIGINT
        pass
    model.save(f"{a.out}/final")
    print(f"sb3 wall_s {time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
