"""Classical baseline for route backends: PID speed control + pure-pursuit steering on the vector's waypoints.

It reads only the contract's ``vector`` (route backends share its layout: forward speed / 30 m/s,
lateral offset, heading error, then 5 lane-centre points ahead as (x forward, y left) / 10 m) and
returns contract actions ``[steer, throttle_brake]``, so it runs through the same evaluation as the agent.

Pure pursuit (Coulter, 1992): aim at the waypoint nearest to the look-ahead distance
``l_d = clip(lookahead_time * v, 5, 25)`` m; with alpha the angle to it, the bicycle-model steering
angle is ``delta = atan(2 * wheelbase * sin(alpha) / l_d)``, scaled by the backend's maximum steering
angle and negated (contract: steer + = right, the ego frame's y is to the left).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from td3drive.config import Config, EnvConfig

SPEED_SCALE = 30.0  # m/s per unit of vector[0]
WAYPOINT_SCALE = 10.0  # m per unit of the waypoint coordinates
FIRST_WAYPOINT = 3  # index of the first waypoint's x in the vector


@dataclass(frozen=True)
class VehicleModel:
    wheelbase_m: float
    max_steer_rad: float
    max_accel_mps2: float  # |acceleration| at throttle_brake = +-1


def route_backends() -> list[str]:
    """The backends the baseline can drive: those whose module exports ``baseline_setup`` (route backends)."""
    from td3drive.envs import BACKENDS, backend

    return [name for name in BACKENDS if hasattr(backend(name), "baseline_setup")]


def setup(env_cfg: EnvConfig) -> tuple[VehicleModel, float, float]:
    """(vehicle, target speed m/s, control period s) of the baseline on the backend of ``env_cfg``."""
    from td3drive.envs import backend

    vehicle, speed, dt = backend(env_cfg.name).baseline_setup(env_cfg)
    return VehicleModel(*vehicle), speed, dt


def __getattr__(name: str):
    if name == "VEHICLES":  # backend -> its nominal vehicle (each route backend module declares it)
        from td3drive.envs import backend

        return {b: VehicleModel(*backend(b).BASELINE_VEHICLE) for b in route_backends()}
    raise AttributeError(f"module 'td3drive.baseline' has no attribute {name!r}")


class PIDPurePursuit:
    """A batched controller: ``policy(image [N,4,84,84], vector [N,k]) -> actions [N,2]``."""

    def __init__(self, vehicle: VehicleModel, target_speed: float, dt: float, kp: float = 0.5, ki: float = 0.05,
                 kd: float = 0.0, lookahead_time: float = 0.8):
        self.vehicle, self.target, self.dt = vehicle, target_speed, dt
        self.kp, self.ki, self.kd, self.lookahead_time = kp, ki, kd, lookahead_time
        self._integral: np.ndarray | None = None
        self._previous: np.ndarray | None = None

    def steer(self, vector: np.ndarray) -> np.ndarray:
        """Steering actions ``[N]`` in [-1, 1] from the waypoints in ``vector [N, k]``."""
        speed = vector[:, 0] * SPEED_SCALE
        points = vector[:, FIRST_WAYPOINT : FIRST_WAYPOINT + 10].reshape(-1, 5, 2) * WAYPOINT_SCALE
        lookahead = np.clip(self.lookahead_time * speed, 5.0, 25.0)
        dist = np.linalg.norm(points, axis=2)
        pick = np.abs(dist - lookahead[:, None]).argmin(axis=1)
        target = points[np.arange(len(points)), pick]
        alpha = np.arctan2(target[:, 1], target[:, 0])
        ld = np.maximum(np.linalg.norm(target, axis=1), 1e-3)
        delta = np.arctan(2.0 * self.vehicle.wheelbase_m * np.sin(alpha) / ld)
        return np.clip(-delta / self.vehicle.max_steer_rad, -1.0, 1.0)

    def throttle(self, vector: np.ndarray) -> np.ndarray:
        """throttle_brake ``[N]`` in [-1, 1]: PID on the speed error (m/s) -> acceleration / max."""
        error = self.target - vector[:, 0] * SPEED_SCALE
        if self._integral is None or len(self._integral) != len(error):
            self._integral, self._previous = np.zeros_like(error), error.copy()
        limit = self.vehicle.max_accel_mps2 / max(self.ki, 1e-9)  # anti-windup: the I term alone saturates
        self._integral = np.clip(self._integral + error * self.dt, -limit, limit)
        derivative = (error - self._previous) / self.dt
        self._previous = error.copy()
        accel = self.kp * error + self.ki * self._integral + self.kd * derivative
        return np.clip(accel / self.vehicle.max_accel_mps2, -1.0, 1.0)

    def __call__(self, image: np.ndarray, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float64)
        single = vector.ndim == 1
        v = vector[None] if single else vector
        action = np.stack([self.steer(v), self.throttle(v)], axis=1).astype(np.float32)
        return action[0] if single else action


def controller_for(cfg: Config) -> PIDPurePursuit:
    """The baseline for ``cfg.env`` (a route backend)."""
    if cfg.env.name not in route_backends():
        raise ValueError(f"--env {cfg.env.name}: the baseline needs a route backend ({', '.join(route_backends())})")
    return PIDPurePursuit(*setup(cfg.env))


def run_baseline(cfg, run_dir: str | Path, episodes: int, workers: int):
    """Evaluate the baseline like an agent; write ``run_dir`` (config.yaml + eval/* scalars at step 0)
    so that ``td3drive compare AGENT_RUN BASELINE_RUN`` puts them side by side."""
    from functools import partial

    from torch.utils.tensorboard import SummaryWriter

    from td3drive.config import save_yaml
    from td3drive.core import tags
    from td3drive.envs import make_env
    from td3drive.evaluate import evaluate, make_eval_envs

    policy = controller_for(cfg)
    envs = make_eval_envs(partial(make_env, cfg.env), workers)
    try:
        result = evaluate(envs, policy, cfg.training.seed, episodes)
    finally:
        envs.close()
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run / "config.yaml")
    writer = SummaryWriter(str(run))
    for tag, value in {tags.EVAL_MEAN_REWARD: result.mean_reward, tags.EVAL_MEAN_LENGTH: result.mean_length,
                       tags.EVAL_SUCCESS_RATE: result.success_rate, **(result.driving or {})}.items():
        writer.add_scalar(tag, value, 0)
    writer.close()
    return result
