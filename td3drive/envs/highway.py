"""highway-env backends: ``highway`` (multi-lane traffic, scenarios 0/1/2) and ``racetrack`` (lane keeping).

Image: highway-env's own GrayscaleObservation, 84x84, 4 frames stacked, drawn offscreen.
Action: the contract's ``[steer, throttle_brake]`` is passed to highway-env's ContinuousAction as
``[acceleration, steering]`` (both in [-1, 1], mapped by highway-env to +-5 m/s^2 and to
+-``env.max_steer_deg``: 5 deg on the highway, 15 on the racetrack by default; steer + = right, as in
the contract).

Ego vector, k = 13 (lane geometry from highway-env's road network, y axis of the ego frame to the left):

- forward speed along the vehicle heading (m/s / 30)
- signed lateral offset from the lane centre (lane half-widths, + = left of centre)
- heading error to the lane direction (rad, + = nose left of the lane)
- the lane centre 5, 10, 15, 20, 25 m ahead along the lane (following the lane into the next road
  segment), as (x forward, y left) in the ego frame, in units of 10 m

Reward (weights in the ``env:`` config; each term is returned in ``info["reward_terms"]`` and the
trainer logs its episode sum as ``env/reward_<term>``)::

    progress  = w_progress  * v_along_lane / target_speed   (driving along the lane, not spinning)
    centering = -w_centering * |lateral offset| (lane half-widths, capped at 1)
    speed     = w_speed * (1 - |v - target_speed| / target_speed)   (capped below at -1)
    time      = -time_penalty   per agent step
    collision = -collision_penalty  on a crash (terminates)
    offroad   = -offroad_penalty    when the vehicle leaves the road (terminates)

Traffic speed: highway-env spawns every other vehicle ahead of the ego at 21-24 m/s (0.7-0.8 of the
road's 30 m/s limit), faster than the ego's 20 m/s target: the traffic pulls away, and an ego that holds
its lane at the target speed never meets it, camera or not. ``env.traffic_speed_mps`` sets the other
vehicles' speed (each one's initial and IDM target speed drawn uniformly within
``env.traffic_speed_spread_mps`` of it, from the episode's seed): below the target speed the ego catches
up with the traffic in its lane and has to see it to brake or change lanes, which is what the camera
ablation can then measure.

Speed and the route: the progress term summed over a route of fixed length is the same at any speed
(``route_length_m / (target_speed * dt)``), and so is the speed term (fewer steps at a higher one), so
without ``env.time_penalty`` a crawl earns what driving at the target does, and an ego that never looks
can crawl behind all traffic. The penalty per step makes the slower route cost
``time_penalty * route_length_m / (v * dt)`` more.

Route: an episode succeeds (terminates with ``is_success``) once the car has driven
``env.route_length_m`` metres along its lanes. Each step's ``info`` carries the driving-metric keys
of ``td3drive.metrics`` (distance, collision, lane invasion = a change of lane, speed).

Road types checked with ContinuousAction (highway-env 1.12): highway-fast-v0 and racetrack-v1 work
and are exposed; exit-v0 and u-turn-v0 run but are not exposed (no traffic knob / fixed script);
merge-v0 and roundabout-v0 raise at reset, two-way-v0 and lane-keeping-v0 raise at step, and
intersection-v0 draws a near-uniform 84x84 frame at this scale.

highway-env draws nothing when ``SDL_VIDEODRIVER=dummy`` (its viewer disables itself); the
blank-frame check then stops training with a message that says so.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from td3drive.core.errors import ConfigError
from td3drive.core.options import leaf, non_negative, opt, positive
from td3drive.envs.contract import FRAME_STACK, IMAGE_SIZE, BackendUnavailable, BlankFrameCheck, EgoDictObservation
from td3drive.envs.geometry import to_ego_frame, wrap_angle

if TYPE_CHECKING:
    from td3drive.envs import EnvConfig

VECTOR_DIM = 13
VECTOR_NAME = "lane geometry"  # speed, lane offset and heading, waypoints: no other vehicle
WAYPOINT_DISTANCES_M = (5.0, 10.0, 15.0, 20.0, 25.0)
SPEED_SCALE = 30.0  # m/s
WAYPOINT_SCALE = 10.0  # m

# --scenario: traffic on the highway road. vehicles_count: other vehicles spawned; vehicles_density:
# highway-env's spacing factor (higher = closer together).
TRAFFIC = {
    0: {"vehicles_count": 10, "vehicles_density": 0.7},  # light
    1: {"vehicles_count": 25, "vehicles_density": 1.0},  # medium
    2: {"vehicles_count": 50, "vehicles_density": 1.5},  # heavy
}
SCENARIOS = {"highway": tuple(TRAFFIC), "racetrack": (0,)}
TRAFFIC_SPREAD_MPS = 1.5  # env.traffic_speed_spread_mps's default: highway-env's own 21-24 m/s are 22.5 +- 1.5


@dataclass(frozen=True)
class HighwayOptions:
    """The ``env.*`` keys of highway and racetrack."""

    policy_frequency: int = leaf(5, positive(), "agent actions per simulated second")
    target_speed: float = leaf(20.0, positive(), "speed the reward aims for (m/s)")
    route_length_m: float = leaf(1000.0, positive(), "metres along the lanes that complete the route")
    max_steer_deg: float | None = leaf(None, opt(positive()),
                                       "steering angle at |steer| = 1 (null: 5 highway, 15 racetrack)")
    reward_progress: float = leaf(1.0, non_negative(), "weight of progress along the lane")
    reward_centering: float = leaf(0.3, non_negative(), "weight of the lane-centring penalty")
    reward_speed: float = leaf(0.3, non_negative(), "weight of the speed-near-target term")
    collision_penalty: float = leaf(10.0, non_negative(), "penalty on a crash (terminates)")
    offroad_penalty: float = leaf(10.0, non_negative(), "penalty for leaving the road (terminates)")
    traffic_speed_mps: float | None = leaf(
        None, opt(positive()),
        "highway only: the other vehicles' mean speed, each drawn within env.traffic_speed_spread_mps of it (m/s; "
        "null: highway-env's 21-24, faster than env.target_speed, so a blind ego never meets them)")
    traffic_speed_spread_mps: float = leaf(
        TRAFFIC_SPREAD_MPS, non_negative(),
        "highway only, with env.traffic_speed_mps: half-width of the uniform speed draw (m/s)")
    time_penalty: float = leaf(0.0, non_negative(), "reward subtracted per agent step: without it the route's "
                               "return is the same at any speed (the progress and speed terms are per step)")


OPTIONS = HighwayOptions
RGB_VIEW = True  # HighwayEgo.rgb_view: the colour frame
USES_ACTION_REPEAT = False  # the agent step is env.policy_frequency; env.action_repeat is ignored
# Steering angle at |steer| = 1 when env.max_steer_deg is null. highway-env's own +-45 deg takes a
# uniformly random policy off the highway in 2.5 steps on average (0.5 s; 5 deg: 20 steps), too short
# to explore; the racetrack's curves need ~12 deg (5 m wheelbase, ~25 m radius).
DEFAULT_MAX_STEER_DEG = {"highway": 5.0, "racetrack": 15.0}


def max_steer_deg(road: str, configured: float | None) -> float:
    """The steering range of ``road`` (degrees at |steer| = 1)."""
    return DEFAULT_MAX_STEER_DEG[road] if configured is None else configured

BLANK_HINT = (
    "highway-env draws nothing when SDL_VIDEODRIVER=dummy is set; unset it for highway-env "
    "(its frames are drawn offscreen and need no display)"
)


def lane_points_ahead(network: Any, lane_index: Any, s: float, distances: tuple[float, ...]) -> np.ndarray:
    """Lane-centre points ``distances`` metres ahead of longitudinal position ``s`` on ``lane_index``,
    following the lane into the next segment where it ends. Returns ``[len(distances), 2]``."""
    out = []
    for d in distances:
        index, lane, pos = lane_index, network.get_lane(lane_index), s + d
        for _ in range(8):  # a few segments at most within 25 m
            if pos <= lane.length:
                break
            pos -= lane.length
            index = network.next_lane(index, position=lane.position(lane.length, 0))
            lane = network.get_lane(index)
        out.append(lane.position(pos, 0.0))
    return np.array(out)


def driving_reward(v_along: float, speed: float, offset_hw: float, crashed: bool, offroad: bool,
                   w: dict[str, float]) -> dict[str, float]:
    """Reward terms of one step (see the module docstring); their sum is the reward."""
    target = w["target_speed"]
    return {
        "progress": w["reward_progress"] * v_along / target,
        "centering": -w["reward_centering"] * min(abs(offset_hw), 1.0),
        "speed": w["reward_speed"] * max(1.0 - abs(speed - target) / target, -1.0),
        "collision": -w["collision_penalty"] if crashed else 0.0,
        "offroad": -w["offroad_penalty"] if offroad else 0.0,
        "time": -w.get("time_penalty", 0.0),
    }


class HighwayEgo(gym.Wrapper):
    """A highway-env env with the contract's action order, the ego vector and the driving reward."""

    def __init__(self, env: gym.Env, weights: dict[str, float], route_length_m: float, policy_frequency: int,
                 traffic_speed_mps: float | None = None, traffic_spread_mps: float = TRAFFIC_SPREAD_MPS):
        super().__init__(env)
        self.traffic_speed_mps, self.traffic_spread_mps = traffic_speed_mps, traffic_spread_mps
        self.weights = weights
        self.route_length_m = route_length_m
        self.dt = 1.0 / policy_frequency
        self._distance = 0.0
        self._lane: Any = None
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(0, 255, (FRAME_STACK, IMAGE_SIZE, IMAGE_SIZE), np.uint8)

    def rgb_view(self) -> np.ndarray:
        """What a person watching sees: the colour frame highway-env drew for the current observation,
        before it was turned grey (``uint8[84, 84, 3]``)."""
        image = self.env.unwrapped.observation_type.viewer.get_image()  # [W, H, C], as highway-env reads it
        return np.ascontiguousarray(np.moveaxis(image, 0, 1)[..., :3]).astype(np.uint8)

    def _geometry(self) -> tuple[float, float, float, float]:
        """(forward speed m/s, speed along the lane m/s, lateral offset in half-widths + left, heading error)."""
        v = self.env.unwrapped.vehicle
        lane = v.road.network.get_lane(v.lane_index)
        s, r = lane.local_coordinates(v.position)
        error = wrap_angle(lane.heading_at(s) - v.heading)
        speed = float(v.speed)
        return speed, speed * math.cos(error), -r / (lane.width_at(s) / 2), error

    def ego_vector(self) -> np.ndarray:
        v = self.env.unwrapped.vehicle
        network = v.road.network
        lane = network.get_lane(v.lane_index)
        s, _ = lane.local_coordinates(v.position)
        speed, _, offset, error = self._geometry()
        ahead = to_ego_frame(lane_points_ahead(network, v.lane_index, s, WAYPOINT_DISTANCES_M), v.position, v.heading)
        return np.concatenate([[speed / SPEED_SCALE, offset, error], (ahead / WAYPOINT_SCALE).ravel()]).astype(
            np.float32
        )

    def set_traffic_speed(self) -> None:
        """Give every other vehicle an initial and IDM target speed drawn uniformly in ``traffic_speed_mps +-
        traffic_spread_mps`` (m/s) from the road's generator, which the episode's seed seeds."""
        road, ego = self.env.unwrapped.road, self.env.unwrapped.vehicle
        low, high = self.traffic_speed_mps - self.traffic_spread_mps, self.traffic_speed_mps + self.traffic_spread_mps
        for v in road.vehicles:
            if v is not ego:
                v.speed = v.target_speed = float(road.np_random.uniform(low, high))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if self.traffic_speed_mps is not None:
            self.set_traffic_speed()  # the frame shows positions only: the reset frame stays valid
        self._distance, self._lane = 0.0, self.env.unwrapped.vehicle.lane_index
        return np.asarray(obs, dtype=np.uint8), info

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        obs, _, terminated, truncated, info = self.env.step(np.array([a[1], a[0]], dtype=np.float32))
        vehicle = self.env.unwrapped.vehicle
        speed, v_along, offset, _ = self._geometry()
        crashed, offroad = bool(vehicle.crashed), not bool(vehicle.on_road)
        terms = driving_reward(v_along, speed, offset, crashed, offroad, self.weights)
        lane = vehicle.lane_index
        # A lane change within the same road crosses a marking; moving on to the next road segment does not.
        invasion = lane[:2] == self._lane[:2] and lane[2] != self._lane[2]
        self._lane = lane
        step_m = v_along * self.dt
        self._distance += step_m
        done = self._distance >= self.route_length_m and not crashed
        info = {**info, "reward_terms": terms, "distance_m": step_m, "route_length_m": self.route_length_m,
                "collision": crashed, "lane_invasion": invasion, "speed_mps": speed, "is_success": done}
        return np.asarray(obs, dtype=np.uint8), float(sum(terms.values())), \
            bool(terminated or crashed or offroad or done), bool(truncated), info


def highway_config(road: str, scenario: int, policy_frequency: int, max_steer_deg: float = 45.0) -> dict[str, Any]:
    """highway-env config for our image, action and traffic settings."""
    steer = math.radians(max_steer_deg)
    cfg: dict[str, Any] = {
        "action": {"type": "ContinuousAction", "longitudinal": True, "lateral": True,
                   "steering_range": [-steer, steer]},
        "observation": {"type": "GrayscaleObservation", "observation_shape": (IMAGE_SIZE, IMAGE_SIZE),
                        "stack_size": FRAME_STACK, "weights": [0.2989, 0.5870, 0.1140], "scaling": 1.75},
        "offscreen_rendering": True,
        "policy_frequency": policy_frequency,
        "duration": 10_000,  # seconds: our TimeLimit (env.max_episode_frames) ends episodes
    }
    if road == "highway":
        cfg.update(TRAFFIC[scenario], simulation_frequency=15, lanes_count=3, offroad_terminal=True)
    else:
        cfg.update(other_vehicles=0)
    return cfg


def make_highway(
    road: str, scenario: int, max_episode_frames: int, blank_frame_steps: int, weights: dict[str, float],
    policy_frequency: int = 5, route_length_m: float = 1000.0, steer_deg: float | None = None,
    traffic_speed_mps: float | None = None, traffic_spread_mps: float = TRAFFIC_SPREAD_MPS,
) -> gym.Env:
    """``road`` is ``highway`` or ``racetrack``; the result meets the contract of docs/ARCHITECTURE.md."""
    try:
        import highway_env  # noqa: F401  (registers the envs)
    except ImportError:
        raise BackendUnavailable(f"--env {road}: highway-env is not installed: pip install -e \".[highway]\"") from None

    # SDL's "offscreen" video driver draws without a display (and without the XDG_RUNTIME_DIR error
    # of a headless default); "dummy" would make highway-env draw nothing, which is left to the check below.
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    env_id = {"highway": "highway-fast-v0", "racetrack": "racetrack-v1"}[road]
    env = gym.make(env_id, config=highway_config(road, scenario, policy_frequency, max_steer_deg(road, steer_deg)))
    ego = HighwayEgo(env, weights, route_length_m, policy_frequency,
                     traffic_speed_mps if road == "highway" else None, traffic_spread_mps)
    wrapped: gym.Env = TimeLimit(ego, max_episode_frames)
    hint = BLANK_HINT if os.environ.get("SDL_VIDEODRIVER") == "dummy" else ""
    wrapped = BlankFrameCheck(wrapped, blank_frame_steps, hint)
    return EgoDictObservation(wrapped, VECTOR_DIM, ego.ego_vector)


def make(cfg: EnvConfig, training: bool = False) -> gym.Env:
    """The registry's constructor for ``highway`` and ``racetrack`` (``cfg``: the env config section).
    ``env.action_repeat`` does not apply: the agent step is ``env.policy_frequency``."""
    weights = {k: getattr(cfg, k) for k in ("target_speed", "reward_progress", "reward_centering", "reward_speed",
                                            "collision_penalty", "offroad_penalty", "time_penalty")}
    return make_highway(cfg.name, cfg.scenario, cfg.max_episode_frames, cfg.blank_frame_steps, weights,
                        policy_frequency=cfg.policy_frequency, route_length_m=cfg.route_length_m,
                        steer_deg=cfg.max_steer_deg, traffic_speed_mps=cfg.traffic_speed_mps,
                        traffic_spread_mps=cfg.traffic_speed_spread_mps)


def check_config(cfg: Any) -> None:
    """Checks across ``env.*`` keys (the registry's hook): the traffic's speed draw stays above 0."""
    e = cfg.env
    if e.traffic_speed_mps is not None and e.traffic_speed_mps - e.traffic_speed_spread_mps <= 0:
        raise ConfigError(f"config key 'env.traffic_speed_mps' = {e.traffic_speed_mps!r}: must exceed "
                          f"env.traffic_speed_spread_mps ({e.traffic_speed_spread_mps!r}), so that every speed is > 0")


# The classical baseline's vehicle (wheelbase m, max steer rad, max |acceleration| m/s^2): a bicycle model
# with the 5 m vehicle length as wheelbase, +-5 m/s^2, and highway-env's own 45 deg steering range.
BASELINE_VEHICLE = (5.0, math.pi / 4, 5.0)


def baseline_setup(cfg: EnvConfig) -> tuple[tuple[float, float, float], float, float]:
    """The baseline's vehicle, target speed (m/s) and control period (s) for ``cfg`` (the env config
    section): :data:`BASELINE_VEHICLE` with the steering range of ``env.max_steer_deg``."""
    vehicle = (BASELINE_VEHICLE[0], math.radians(max_steer_deg(cfg.name, cfg.max_steer_deg)), BASELINE_VEHICLE[2])
    return vehicle, cfg.target_speed, 1.0 / cfg.policy_frequency
