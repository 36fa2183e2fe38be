"""The corpus of real runs from other libraries behind the analysis tests (tests/data/corpus/).

Pendulum-v1, one seed, CPU; 12,000 env steps for the healthy runs (they improve clearly by then, and
each update is the cost here), 20,000 for the reference schedule (its updates are few), 10,000 for
the wrecked runs (wrecked within a few thousand updates):

- SB3 TD3 (``MlpPolicy``), three settings: its defaults with Gaussian action noise 0.1 (healthy);
  the reference system's schedule ``train_freq=50, gradient_steps=1`` (0.02 updates per step: not
  learning); learning rate 0.5 (the networks are wrecked). SB3 logs ``rollout/ep_rew_mean``,
  ``train/actor_loss``, ``train/critic_loss`` and ``train/n_updates`` (no Q values).
- A CleanRL-style TD3: the algorithm and event layout of CleanRL's ``td3_continuous_action.py``
  (``charts/episodic_return``, ``charts/episodic_length``, ``losses/qf1_values``, ``losses/qf2_values``,
  ``losses/qf1_loss``, ``losses/qf2_loss``, ``losses/qf_loss``, ``losses/actor_loss``, ``charts/SPS``,
  losses every 100 steps), written here (CleanRL is a single-file script, not a library), with the
  same three settings: learning rate 3e-4 and an update every step (healthy); an update every 50 steps
  (not learning); learning rate 0.5 (wrecked).

    pip install -e ".[bench]"
    python bench/make_corpus.py --out tests/data/corpus      # about 15 minutes on one core

Each run directory holds its event file and nothing else (no config.yaml: what a user of those
libraries has). The tests pin each run's verdict and main finding (tests/test_corpus.py).

One of our own runs joins them, thinned to stay small (every ``--every``-th log point of the train,
gradient and progress scalars; evaluations, episodes and alerts in full; its config.yaml as is):

    python bench/make_corpus.py --thin-run bench/out/learning/default-seed0 --out tests/data/corpus/td3drive_carracing
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SETTINGS = {  # name -> (learning rate, updates every N steps, env steps)
    "healthy": (3e-4, 1, 12_000),
    "not_learning": (3e-4, 50, 20_000),
    "diverging": (0.5, 1, 10_000),
}


def sb3_run(setting: str, out: Path, seed: int) -> None:
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    lr, every, steps = SETTINGS[setting]
    env = gym.make("Pendulum-v1")
    # train_freq 1 (gradient_steps 1) is SB3's default; the reference schedule updates every 50 steps.
    model = TD3("MlpPolicy", env, action_noise=NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)), seed=seed,
                device="cpu", tensorboard_log=str(out), verbose=0, learning_rate=lr, train_freq=every)
    model.learn(total_timesteps=steps, tb_log_name="tb")


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 1))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], 1))


class Policy(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, scale: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, act_dim), nn.Tanh())
        self.scale = scale

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs) * self.scale


def cleanrl_style_run(setting: str, out: Path, seed: int) -> None:
    """TD3 as CleanRL's td3_continuous_action.py runs it (batch 256, gamma 0.99, tau 0.005, policy noise
    0.2, noise clip 0.5, exploration noise 0.1, policy delay 2), learning_starts 1000, logging its tags."""
    from torch.utils.tensorboard import SummaryWriter

    lr, every, steps = SETTINGS[setting]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("Pendulum-v1"))
    od, ad = env.observation_space.shape[0], env.action_space.shape[0]
    high = float(env.action_space.high[0])
    q1, q2, pi = QNetwork(od, ad), QNetwork(od, ad), Policy(od, ad, high)
    q1_t, q2_t, pi_t = QNetwork(od, ad), QNetwork(od, ad), Policy(od, ad, high)
    for t, s in ((q1_t, q1), (q2_t, q2), (pi_t, pi)):
        t.load_state_dict(s.state_dict())
    q_opt = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=lr)
    pi_opt = torch.optim.Adam(pi.parameters(), lr=lr)
    buf_o, buf_a = np.zeros((steps, od), np.float32), np.zeros((steps, ad), np.float32)
    buf_r, buf_o2, buf_d = np.zeros(steps, np.float32), np.zeros((steps, od), np.float32), np.zeros(steps, np.float32)
    writer = SummaryWriter(str(out / "tb"))
    obs, _ = env.reset(seed=seed)
    start, updates, actor_loss = time.time(), 0, None
    for step in range(steps):
        if step < 1000:
            action = env.action_space.sample()
        else:
            with torch.no_grad():
                action = pi(torch.as_tensor(obs[None])).numpy()[0]
            action = np.clip(action + rng.normal(0, 0.1 * high, ad), -high, high).astype(np.float32)
        obs2, reward, term, trunc, info = env.step(action)
        if "episode" in info:
            writer.add_scalar("charts/episodic_return", float(info["episode"]["r"]), step)
            writer.add_scalar("charts/episodic_length", float(info["episode"]["l"]), step)
        buf_o[step], buf_a[step], buf_r[step], buf_o2[step], buf_d[step] = obs, action, reward, obs2, float(term)
        obs = obs2
        if term or trunc:
            obs, _ = env.reset()
        if step < 1000 or step % every:
            continue
        idx = rng.integers(0, step + 1, 256)
        o, a, r, o2, d = (torch.as_tensor(x[idx]) for x in (buf_o, buf_a, buf_r, buf_o2, buf_d))
        with torch.no_grad():
            noise = (torch.randn_like(a) * 0.2).clamp(-0.5, 0.5) * high
            a2 = (pi_t(o2) + noise).clamp(-high, high)
            target = r + 0.99 * (1 - d) * torch.min(q1_t(o2, a2), q2_t(o2, a2)).view(-1)
        qa, qb = q1(o, a).view(-1), q2(o, a).view(-1)
        l1, l2 = F.mse_loss(qa, target), F.mse_loss(qb, target)
        q_opt.zero_grad()
        (l1 + l2).backward()
        q_opt.step()
        updates += 1
        if updates % 2 == 0:
            loss = -q1(o, pi(o)).mean()
            pi_opt.zero_grad()
            loss.backward()
            pi_opt.step()
            actor_loss = float(loss)
            with torch.no_grad():
                for t, s in ((q1_t, q1), (q2_t, q2), (pi_t, pi)):
                    torch._foreach_lerp_(list(t.parameters()), list(s.parameters()), 0.005)
        if step % 100 == 0:
            for tag, v in (("losses/qf1_values", qa.mean()), ("losses/qf2_values", qb.mean()), ("losses/qf1_loss", l1),
                           ("losses/qf2_loss", l2), ("losses/qf_loss", (l1 + l2) / 2)):
                writer.add_scalar(tag, float(v), step)
            if actor_loss is not None:  # the latest actor update's loss, as CleanRL logs it
                writer.add_scalar("losses/actor_loss", actor_loss, step)
            writer.add_scalar("charts/SPS", int(step / (time.time() - start)), step)
    writer.close()


def thin_run(src: Path, dest: Path, every: int) -> None:
    """Copy a td3drive run's scalars (see the module docstring) and config.yaml into ``dest``."""
    from torch.utils.tensorboard import SummaryWriter

    from td3drive.analysis.events import read_run

    series = read_run(src).series
    shutil.rmtree(dest, ignore_errors=True)
    writer = SummaryWriter(str(dest))
    for tag, s in series.items():
        keep = (
            slice(None)
            if tag.split("/")[0] in ("eval", "alerts") or tag.startswith("train/episode")
            else slice(None, None, every)
        )
        for step, wall, value in zip(s.steps[keep], s.wall_times[keep], s.values[keep]):
            writer.add_scalar(tag, float(value), int(step), walltime=float(wall))
    writer.close()
    shutil.copy(src / "config.yaml", dest / "config.yaml")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--thin-run", type=Path, help="a td3drive run directory to thin into --out (see above)")
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--out", default="tests/data/corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated run names (e.g. sb3_healthy); default all")
    args = p.parse_args()
    if args.thin_run:
        thin_run(args.thin_run, Path(args.out), args.every)
        return
    torch.set_num_threads(1)
    runs = {f"{lib}_{s}": (fn, s) for lib, fn in (("sb3", sb3_run), ("cleanrl", cleanrl_style_run)) for s in SETTINGS}
    for name, (fn, setting) in runs.items():
        if args.only and name not in args.only.split(","):
            continue
        tmp = Path(args.out) / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        fn(setting, tmp, args.seed)
        # Keep only the event file, directly in the run directory.
        dest = Path(args.out) / name
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in tmp.rglob("events.out.tfevents.*"):
            shutil.move(str(f), dest / f.name)
        shutil.rmtree(tmp)
        print(f"{name}: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
