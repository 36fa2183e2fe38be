"""CARLA backend (``--env carla``, extra ``carla`` = the carla 0.9.16 client): Town01, a route, NPC traffic.

Needs a CARLA server the user runs (``env.carla_host`` / ``env.carla_port``, default localhost:2000).
Synchronous mode at 20 Hz (fixed_delta_seconds 0.05, physics substeps of at most 0.01 s, 10 at
most: CARLA requires fixed_delta_seconds <= max_substep_delta_time * max_substeps), the Traffic
Manager synchronous and seeded, the ego vehicle at a fixed (``env.carla_spawn_point`` >= 0) or per
episode seeded spawn point, a route of ``env.route_length_m`` built with CARLA's GlobalRoutePlanner
(``agents`` from the server's PythonAPI, found through ``CARLA_ROOT``; without it the route follows
the ego lane with ``Waypoint.next``, and the log says so), and NPC traffic for ``--scenario`` 0/1/2 =
20/50/100 vehicles on autopilot.

Sensors: a front RGB camera (800x600, fov 90, x=2.0 m, z=1.5 m) converted to one 84x84 grayscale
frame per step (the contract wrappers stack 4), collision and lane-invasion sensors. Sensor data
arrive asynchronously and late, so every step reads the frames whose id equals the id
``world.tick()`` returned.

Reward terms (weights in the ``env:`` config, each logged as ``env/reward_<term>``), as in the
reference system: efficiency (speed toward ``env.carla_target_kmh``), lane keeping (lateral offset),
comfort (change of steering), safety (collision, lane invasion) and progress along the route.
An episode ends on a collision, leaving the road (lateral offset beyond ``OFFROAD_M`` from the
route), the route's end, or the time limit (1000 steps by default; truncation).

Every actor this backend spawns is destroyed on reset, close, error and Ctrl-C (the trainer closes
the env in a ``finally``), and the server's previous world settings are restored on close.

The pure parts (route progress, lateral offset and heading error, reward, observation assembly,
control mapping) are plain functions below, tested without a server.
"""

from __future__ import annotations

import math
import os
import queue
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import gymnasium as gym
import numpy as np
from gymnasium import spaces

from td3drive.core.options import at_least, leaf, non_negative, positive
from td3drive.envs.contract import IMAGE_SIZE, BackendUnavailable, throttle_brake_to_controls
from td3drive.envs.geometry import to_ego_frame, wrap_angle

if TYPE_CHECKING:
    from td3drive.envs import EnvConfig

VECTOR_DIM = 13
VECTOR_NAME = "route geometry"  # speed, offset and heading to the route, route points: no other vehicle, no light
NPC_VEHICLES = {0: 20, 1: 50, 2: 100}
SCENARIOS = {"carla": tuple(NPC_VEHICLES)}


@dataclass(frozen=True)
class CarlaOptions:
    """CARLA's own ``env.*`` keys (the server, the map, the route, the reward's weights)."""

    carla_host: str = leaf("localhost", None, "host of the CARLA server", flag=True)
    carla_port: int = leaf(2000, positive(), "RPC port of the CARLA server", flag=True)
    carla_servers: str | None = leaf(None, None, "with training.actors: the training servers, comma-separated "
                                     "host:port, one collection actor each (evaluation keeps env.carla_host:"
                                     "carla_port)")
    carla_timeout: float = leaf(10.0, positive(), "seconds to wait for the server")
    carla_town: str = leaf("Town01", None, "map")
    carla_spawn_point: int = leaf(-1, at_least(-1), "ego spawn point index (-1: drawn from each episode's seed)")
    carla_target_kmh: float = leaf(30.0, positive(), "speed the efficiency term aims for (km/h)")
    route_length_m: float = leaf(1000.0, positive(), "metres along the planned route that complete it")
    reward_efficiency: float = leaf(1.0, non_negative(), "weight of the efficiency (speed) term")
    reward_centering: float = leaf(0.3, non_negative(), "weight of the lane-keeping penalty")
    reward_comfort: float = leaf(0.1, non_negative(), "weight of the steering-change penalty")
    collision_penalty: float = leaf(10.0, non_negative(), "penalty on a collision")
    lane_invasion_penalty: float = leaf(1.0, non_negative(), "penalty per lane invasion")
    reward_progress: float = leaf(1.0, non_negative(), "weight of progress along the route")


OPTIONS = CarlaOptions
# Every CARLA env drives the one synchronous-mode server: envs live in the training process, one at a time.
SINGLE_PROCESS = True


def parse_servers(text: str) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` (``env.carla_servers``) as (host, port) pairs; ValueError naming a bad item."""
    out = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item.strip()!r} is not host:port (port 1-65535)")
        out.append((host, int(port)))
    if len(set(out)) != len(out):
        raise ValueError("a server is listed twice (one actor per server)")
    return out


def check_config(cfg: Any) -> None:
    """With ``training.actors``, each actor drives its own synchronous-mode server (two clients ticking one
    world would each see the other's ticks): ``env.carla_servers`` lists exactly one per actor, and not the
    server evaluation drives (``env.carla_host:carla_port``, in the training process) while evaluation is on."""
    from td3drive.core.errors import ConfigError

    e, actors = cfg.env, cfg.training.actors
    if e.carla_servers is None:
        if actors:
            raise ConfigError(f"config key 'training.actors' = {actors!r}: on CARLA each actor needs its own server; "
                              "list them in env.carla_servers (host:port,host:port,...)")
        return
    key = f"config key 'env.carla_servers' = {e.carla_servers!r}"
    try:
        servers = parse_servers(e.carla_servers)
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None
    if len(servers) != actors:
        raise ConfigError(f"{key}: {len(servers)} server(s) for training.actors = {actors}; one actor per server")
    if cfg.training.eval_freq > 0 and (e.carla_host, e.carla_port) in servers:
        raise ConfigError(f"{key}: lists the evaluation server {e.carla_host}:{e.carla_port} (env.carla_host/"
                          "carla_port); give evaluation its own server, or set training.eval_freq = 0")


def actor_env(cfg: EnvConfig, index: int, actors: int) -> EnvConfig:
    """The env options of collection actor ``index``: host and port of its own server from ``env.carla_servers``."""
    host, port = parse_servers(cfg.carla_servers)[index]
    return cfg.with_options(carla_host=host, carla_port=port)
FIXED_DELTA_S = 0.05
CAMERA = {"image_size_x": "800", "image_size_y": "600", "fov": "90"}
CAMERA_X_M, CAMERA_Z_M = 2.0, 1.5
LANE_HALF_WIDTH_M = 1.75  # Town01 lanes are ~3.5 m wide
OFFROAD_M = 3.0  # lateral distance from the route beyond which the car has left its road
WAYPOINT_DISTANCES_M = (5.0, 10.0, 15.0, 20.0, 25.0)
SPEED_SCALE, WAYPOINT_SCALE = 30.0, 10.0


class CarlaConnectionError(BackendUnavailable):
    """No CARLA server answered."""


def route_arclength(route_xy: np.ndarray) -> np.ndarray:
    """Cumulative distance (m) at each point of a route polyline ``[n, 2]`` -> ``[n]``, starting at 0."""
    seg = np.linalg.norm(np.diff(route_xy, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def project_on_route(route_xy: np.ndarray, cum: np.ndarray, position: np.ndarray) -> tuple[float, float, float]:
    """Closest point of the polyline to ``position``: (distance along the route m, signed lateral
    offset m with + = left of the route's direction, the route's heading there in rad)."""
    a, b = route_xy[:-1], route_xy[1:]
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = np.clip(((position - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
    closest = a + t[:, None] * ab
    i = int(np.argmin(((closest - position) ** 2).sum(axis=1)))
    heading = math.atan2(ab[i, 1], ab[i, 0])
    d = position - closest[i]
    # Left-handed ground frame: left of heading h is (sin h, -cos h).
    lateral = d[0] * math.sin(heading) - d[1] * math.cos(heading)
    s = cum[i] + t[i] * math.sqrt(length2[i])
    return float(s), float(lateral), heading


def points_ahead(
    route_xy: np.ndarray, cum: np.ndarray, s: float, distances: tuple[float, ...] = WAYPOINT_DISTANCES_M
) -> np.ndarray:
    """Route points ``distances`` metres ahead of arclength ``s`` (clamped to the route's end) -> ``[n, 2]``."""
    targets = np.minimum(s + np.asarray(distances), cum[-1])
    return np.stack([np.interp(targets, cum, route_xy[:, 0]), np.interp(targets, cum, route_xy[:, 1])], axis=1)


def ego_vector(speed_mps: float, lateral_m: float, heading_error: float, ahead_ego_m: np.ndarray) -> np.ndarray:
    """The contract vector (k = 13, same layout as the highway backends): speed / 30, offset in lane
    half-widths (+ left), heading error (rad, + = nose left), 5 route points (x forward, y left) / 10 m."""
    head = [speed_mps / SPEED_SCALE, lateral_m / LANE_HALF_WIDTH_M, heading_error]
    return np.concatenate([head, (np.asarray(ahead_ego_m) / WAYPOINT_SCALE).ravel()]).astype(np.float32)


def carla_reward(speed_kmh: float, lateral_m: float, steer_change: float, progress_m: float, collision: bool,
                 lane_invasion: bool, w: dict[str, float]) -> dict[str, float]:
    """Reward terms of one 0.05 s step::

        efficiency   = reward_efficiency * (1 - |v - target| / target), at least -1
        lane_keeping = -reward_centering * min(|offset| / lane half-width, 1)
        comfort      = -reward_comfort * |steer_t - steer_{t-1}|
        safety       = -collision_penalty (collision) - lane_invasion_penalty (lane invasion)
        progress     = reward_progress * metres along the route / (target speed * 0.05 s)
    """
    target = w["carla_target_kmh"]
    return {
        "efficiency": w["reward_efficiency"] * max(1.0 - abs(speed_kmh - target) / target, -1.0),
        "lane_keeping": -w["reward_centering"] * min(abs(lateral_m) / LANE_HALF_WIDTH_M, 1.0),
        "comfort": -w["reward_comfort"] * abs(steer_change),
        "safety": -(w["collision_penalty"] if collision else 0.0)
        - (w["lane_invasion_penalty"] if lane_invasion else 0.0),
        "progress": w["reward_progress"] * progress_m / (target / 3.6 * FIXED_DELTA_S),
    }


def camera_to_gray84(bgra: np.ndarray) -> np.ndarray:
    """CARLA camera raw data ``uint8 [600, 800, 4]`` (BGRA) -> ``uint8 [84, 84]`` grayscale."""
    gray = cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def control_from_action(action: np.ndarray) -> dict[str, float]:
    """Contract ``[steer, throttle_brake]`` -> CARLA VehicleControl fields (steer + = right, as in CARLA)."""
    steer, gas, brake = throttle_brake_to_controls(action)
    return {"steer": float(steer), "throttle": float(gas), "brake": float(brake)}


def spawn_index(seed: int | None, episode_seed: int | None, fixed: int, n_points: int) -> int:
    """The ego's spawn point: ``fixed`` if >= 0, else drawn from the episode's seed."""
    if fixed >= 0:
        if fixed >= n_points:
            raise ValueError(f"env.carla_spawn_point = {fixed}: this map has spawn points 0..{n_points - 1}")
        return fixed
    return int(np.random.default_rng(episode_seed if episode_seed is not None else seed).integers(n_points))


def connect(host: str, port: int, timeout_s: float):
    """A connected ``carla.Client``; :class:`CarlaConnectionError` naming host and port otherwise."""
    try:
        import carla
    except ImportError:
        raise CarlaConnectionError("the carla client is not installed: pip install -e \".[carla]\"") from None
    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    try:
        client.get_server_version()
    except RuntimeError:
        raise CarlaConnectionError(
            f"no CARLA server answered at {host}:{port} within {timeout_s:g} s; start CarlaUE4.sh there "
            "or set env.carla_host / env.carla_port (--carla-host, --carla-port)"
        ) from None
    return client


def _global_route_planner():
    root = os.environ.get("CARLA_ROOT")
    if root:
        sys.path.append(os.path.join(root, "PythonAPI", "carla"))
    try:
        from agents.navigation.global_route_planner import GlobalRoutePlanner
    except ImportError:
        return None
    return GlobalRoutePlanner


class CarlaEnv(gym.Env):
    """Single-frame CARLA backend (uint8 ``[84, 84]`` + ``ego_vector()``); wrap with ``apply_contract``."""

    metadata = {"render_modes": []}

    def __init__(self, host: str, port: int, timeout_s: float, town: str, scenario: int, spawn_point: int,
                 route_length_m: float, weights: dict[str, float], seed: int = 0, tm_port: int = 8000):
        import carla

        self._carla = carla
        self.weights, self.route_length_m, self.spawn_point, self.seed = weights, route_length_m, spawn_point, seed
        self.n_npc = NPC_VEHICLES[scenario]
        self.observation_space = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.client = connect(host, port, timeout_s)
        self.world = self.client.get_world()
        if not self.world.get_map().name.endswith(town):
            self.world = self.client.load_world(town)
        self._original_settings = self.world.get_settings()
        settings = self.world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = FIXED_DELTA_S
        settings.substepping = True
        settings.max_substep_delta_time = 0.01
        settings.max_substeps = 10
        self.world.apply_settings(settings)
        self.tm = self.client.get_trafficmanager(tm_port)
        self.tm.set_synchronous_mode(True)
        self.tm.set_random_device_seed(seed)
        self.map = self.world.get_map()
        self._actors: list[Any] = []
        self._images: queue.Queue = queue.Queue()
        self._collisions: list[int] = []
        self._invasions: list[int] = []
        self._route_planner = _global_route_planner()
        self.route_note = (
            "GlobalRoutePlanner" if self._route_planner else "lane following (no CARLA agents package found)"
        )

    # -- actors --------------------------------------------------------------------------------
    def _destroy_actors(self) -> None:
        sensors = [a for a in self._actors if a.type_id.startswith("sensor.")]
        for s in sensors:
            s.stop()
        if self._actors:
            self.client.apply_batch_sync([self._carla.command.DestroyActor(a.id) for a in self._actors])
        self._actors = []

    def _spawn(self, episode_seed: int | None) -> None:
        carla = self._carla
        library = self.world.get_blueprint_library()
        points = self.map.get_spawn_points()
        start = points[spawn_index(self.seed, episode_seed, self.spawn_point, len(points))]
        ego_bp = library.find("vehicle.lincoln.mkz_2020")
        ego_bp.set_attribute("role_name", "hero")
        self.ego = self.world.spawn_actor(ego_bp, start)
        self._actors.append(self.ego)
        camera_bp = library.find("sensor.camera.rgb")
        for key, value in CAMERA.items():
            camera_bp.set_attribute(key, value)
        mount = carla.Transform(carla.Location(x=CAMERA_X_M, z=CAMERA_Z_M))

        def attach(blueprint, transform):  # recorded at once, so that a later failure still destroys it
            actor = self.world.spawn_actor(blueprint, transform, attach_to=self.ego)
            self._actors.append(actor)
            return actor

        camera = attach(camera_bp, mount)
        collision = attach(library.find("sensor.other.collision"), carla.Transform())
        invasion = attach(library.find("sensor.other.lane_invasion"), carla.Transform())
        camera.listen(self._images.put)
        collision.listen(lambda e: self._collisions.append(e.frame))
        invasion.listen(lambda e: self._invasions.append(e.frame))
        rng = np.random.default_rng(episode_seed)
        others = [p for p in points if p.location.distance(start.location) > 10.0]
        rng.shuffle(others)
        vehicles = [b for b in library.filter("vehicle.*") if int(b.get_attribute("number_of_wheels")) == 4]
        batch = [carla.command.SpawnActor(vehicles[int(rng.integers(len(vehicles)))], p)
                 .then(carla.command.SetAutopilot(carla.command.FutureActor, True, self.tm.get_port()))
                 for p in others[: self.n_npc]]
        for response in self.client.apply_batch_sync(batch, True):
            if not response.error:
                self._actors.append(self.world.get_actor(response.actor_id))
        self._build_route(start)

    def _build_route(self, start) -> None:
        start_wp = self.map.get_waypoint(start.location)
        if self._route_planner is not None:
            planner = self._route_planner(self.map, 2.0)
            goal = start_wp.next(self.route_length_m)[0].transform.location
            xy = [
                (wp.transform.location.x, wp.transform.location.y)
                for wp, _ in planner.trace_route(start.location, goal)
            ]
        else:
            wp, xy = start_wp, []
            for _ in range(int(self.route_length_m / 2.0) + 1):
                xy.append((wp.transform.location.x, wp.transform.location.y))
                nxt = wp.next(2.0)
                if not nxt:
                    break
                wp = nxt[0]
        self.route = np.array(xy, dtype=np.float64)
        self.cum = route_arclength(self.route)

    # -- gym API ---------------------------------------------------------------------------------
    def _read_image(self, frame: int) -> np.ndarray:
        while True:
            image = self._images.get(timeout=10.0)
            if image.frame == frame:
                return camera_to_gray84(np.frombuffer(image.raw_data, np.uint8).reshape(image.height, image.width, 4))

    def _state(self) -> tuple[float, float, float, float, np.ndarray]:
        t = self.ego.get_transform()
        v = self.ego.get_velocity()
        position = np.array([t.location.x, t.location.y])
        yaw = math.radians(t.rotation.yaw)
        s, lateral, route_heading = project_on_route(self.route, self.cum, position)
        speed = math.hypot(v.x, v.y)
        ahead = to_ego_frame(points_ahead(self.route, self.cum, s), position, yaw)
        return s, lateral, wrap_angle(route_heading - yaw), speed, ahead

    def ego_vector(self) -> np.ndarray:
        _, lateral, error, speed, ahead = self._state()
        return ego_vector(speed, lateral, error, ahead)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._destroy_actors()
        try:
            # Fresh buffers before the sensors exist: their callbacks are bound to these objects.
            self._images = queue.Queue()
            self._collisions.clear()
            self._invasions.clear()
            self._spawn(seed)
            frame = self.world.tick()
            image = self._read_image(frame)
        except BaseException:
            self._destroy_actors()
            raise
        self._s, *_ = self._state()
        self._steer = 0.0
        return image, {}

    def step(self, action):
        control = control_from_action(action)
        self.ego.apply_control(self._carla.VehicleControl(**control))
        frame = self.world.tick()
        image = self._read_image(frame)
        s, lateral, _, speed, _ = self._state()
        collision = any(f <= frame for f in self._collisions)
        invasion = any(f <= frame for f in self._invasions)
        self._collisions.clear()
        self._invasions.clear()
        progress = s - self._s
        self._s = s
        terms = carla_reward(
            speed * 3.6, lateral, control["steer"] - self._steer, progress, collision, invasion, self.weights
        )
        self._steer = control["steer"]
        done = s >= self.cum[-1] - 2.0
        offroad = abs(lateral) > OFFROAD_M
        info = {
            "reward_terms": terms,
            "distance_m": progress,
            "route_length_m": float(self.cum[-1]),
            "collision": collision,
            "lane_invasion": invasion,
            "speed_mps": speed,
            "is_success": done and not collision,
        }
        return image, float(sum(terms.values())), bool(collision or offroad or done), False, info

    def close(self) -> None:
        try:
            self._destroy_actors()
        finally:
            self.tm.set_synchronous_mode(False)
            self.world.apply_settings(self._original_settings)


def make_carla(cfg, max_episode_frames: int, blank_frame_steps: int, action_repeat: int, seed: int = 0) -> gym.Env:
    """The CARLA backend under the contract (``cfg`` is the env config section)."""
    from td3drive.envs.contract import apply_contract

    weights = {
        k: getattr(cfg, k)
        for k in (
            "carla_target_kmh",
            "reward_efficiency",
            "reward_centering",
            "reward_comfort",
            "collision_penalty",
            "lane_invasion_penalty",
            "reward_progress",
        )
    }
    env = CarlaEnv(cfg.carla_host, cfg.carla_port, cfg.carla_timeout, cfg.carla_town, cfg.scenario,
                   cfg.carla_spawn_point, cfg.route_length_m, weights, seed=seed)
    return apply_contract(env, vector_dim=VECTOR_DIM, ego_vector=env.ego_vector, action_repeat=action_repeat,
                          max_episode_frames=max_episode_frames, blank_frame_steps=blank_frame_steps)


def make(cfg: EnvConfig, training: bool = False) -> gym.Env:
    """The registry's constructor (``cfg``: the env config section)."""
    return make_carla(cfg, max_episode_frames=cfg.max_episode_frames, blank_frame_steps=cfg.blank_frame_steps,
                      action_repeat=cfg.action_repeat)


# The classical baseline's vehicle (wheelbase m, max steer rad, max |acceleration| m/s^2): CARLA's Lincoln
# MKZ / Tesla Model 3 class, ~2.9 m wheelbase, ~70 deg max wheel angle, ~4 m/s^2.
BASELINE_VEHICLE = (2.9, math.radians(70.0), 4.0)


def baseline_setup(cfg: EnvConfig) -> tuple[tuple[float, float, float], float, float]:
    """The baseline's vehicle, target speed (m/s) and control period (s) for ``cfg`` (the env config section)."""
    return BASELINE_VEHICLE, cfg.carla_target_kmh / 3.6, FIXED_DELTA_S * cfg.action_repeat
