"""CarRacing-v3 (gymnasium, Box2D) under the common contract; no server needed.

Ego vector, k = 14, computed from the simulator's own state (not from pixels):

=====  ============================================  ===========================================
index  quantity                                      unit
=====  ============================================  ===========================================
0      forward speed (velocity along the car's nose) world units/s / 50 (about 1 at full speed)
1      yaw rate                                      rad/s
2      signed lateral offset from the track centre   track half-widths (6.67 units); + = left
3      heading error: car heading - track direction  rad in [-pi, pi); + = nose left of track
4-13   next 5 waypoints (every 2nd centre-line point,  track half-widths, ego frame:
       about 7 units apart), as (x, y) pairs         x forward, y left
=====  ============================================  ===========================================

Actions: ``steer`` in [-1, 1] (+ = right, CarRacing's convention), ``throttle_brake`` in [-1, 1]
(+ gas, - brake). ``terminated``: lap done or off the playfield (CarRacing's own rules);
``truncated``: the time limit (``env.max_episode_steps`` agent steps).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d.car_racing import TRACK_WIDTH, CarRacing

from td3drive.envs.contract import ThrottleBrakeAction, apply_contract

VECTOR_DIM = 14
N_WAYPOINTS = 5
WAYPOINT_STRIDE = 2
SPEED_SCALE = 50.0


def _wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def ego_state(
    position: np.ndarray,
    car_angle: float,
    velocity: np.ndarray,
    yaw_rate: float,
    track: np.ndarray,
    half_width: float = TRACK_WIDTH,
) -> np.ndarray:
    """Ego vector (see the module docstring) from plain state; ``track`` is ``[n, 2]`` centre-line points.

    ``car_angle`` is Box2D's body angle: the car's nose points along its local +y axis.
    """
    forward = np.array([-math.sin(car_angle), math.cos(car_angle)])
    left = np.array([-forward[1], forward[0]])
    n = len(track)
    i = int(np.argmin(((track - position) ** 2).sum(axis=1)))
    seg = track[(i + 1) % n] - track[i]
    seg /= max(float(np.hypot(*seg)), 1e-9)
    rel = position - track[i]
    lateral = (seg[0] * rel[1] - seg[1] * rel[0]) / half_width
    heading_error = _wrap_angle(math.atan2(forward[1], forward[0]) - math.atan2(seg[1], seg[0]))
    ahead = track[(i + WAYPOINT_STRIDE * np.arange(1, N_WAYPOINTS + 1)) % n] - position
    waypoints = np.stack([ahead @ forward, ahead @ left], axis=1) / half_width
    head = [float(velocity @ forward) / SPEED_SCALE, yaw_rate, lateral, heading_error]
    return np.concatenate([head, waypoints.ravel()]).astype(np.float32)


class CarRacingEgo(gym.Wrapper):
    """Exposes :meth:`ego_vector` computed from CarRacing's Box2D state."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._track = np.zeros((1, 2))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._track = np.array([(t[2], t[3]) for t in self.env.unwrapped.track], dtype=np.float64)
        return obs, info

    def ego_vector(self) -> np.ndarray:
        hull = self.env.unwrapped.car.hull
        return ego_state(
            np.array(hull.position, dtype=np.float64),
            float(hull.angle),
            np.array(hull.linearVelocity, dtype=np.float64),
            float(hull.angularVelocity),
            self._track,
        )


def make_carracing(action_repeat: int, max_episode_steps: int, blank_frame_steps: int) -> gym.Env:
    """CarRacing-v3 under the contract (no time limit of its own: ours counts agent steps)."""
    ego = CarRacingEgo(CarRacing(render_mode=None))
    env = ThrottleBrakeAction(ego)
    return apply_contract(
        env,
        vector_dim=VECTOR_DIM,
        ego_vector=ego.ego_vector,
        action_repeat=action_repeat,
        max_episode_steps=max_episode_steps,
        blank_frame_steps=blank_frame_steps,
        blank_hint="CarRacing renders with pygame; check that pygame can create an offscreen surface",
    )
