"""A small in-memory stand-in for the ``carla`` client module: enough of its API for CarlaEnv's
bookkeeping (settings, spawning, batches, sensors delivering data by frame id, destruction) to be
tested without a server. Physics is a point moving along +x at the commanded throttle."""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Location:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0

    def distance(self, other: "Location") -> float:
        return float(np.hypot(self.x - other.x, self.y - other.y))


@dataclass
class Rotation:
    yaw: float = 0.0


@dataclass
class Transform:
    location: Location = field(default_factory=Location)
    rotation: Rotation = field(default_factory=Rotation)


@dataclass
class Vector3D:
    x: float = 0.0
    y: float = 0.0


@dataclass
class VehicleControl:
    steer: float = 0.0
    throttle: float = 0.0
    brake: float = 0.0


@dataclass
class WorldSettings:
    synchronous_mode: bool = False
    fixed_delta_seconds: float | None = None
    substepping: bool = True
    max_substep_delta_time: float = 0.01
    max_substeps: int = 10


class Blueprint:
    def __init__(self, type_id: str):
        self.id, self.attrs = type_id, {"number_of_wheels": "4"}

    def set_attribute(self, key: str, value: str) -> None:
        self.attrs[key] = value

    def get_attribute(self, key: str) -> str:
        return self.attrs[key]


class Actor:
    def __init__(self, world: "World", bp: Blueprint, transform: Transform, parent: "Actor | None" = None):
        self.world, self.type_id, self.attributes = world, bp.id, dict(bp.attrs)
        self.id = world.next_id()
        self.transform, self.parent = transform, parent
        self.velocity = Vector3D()
        self.callback = None
        self.control = VehicleControl()

    def get_transform(self) -> Transform:
        return self.transform

    def get_velocity(self) -> Vector3D:
        return self.velocity

    def apply_control(self, control: VehicleControl) -> None:
        self.control = control

    def listen(self, callback) -> None:
        self.callback = callback

    def stop(self) -> None:
        self.callback = None


class Image:
    def __init__(self, frame: int):
        self.frame, self.height, self.width = frame, 600, 800
        img = np.zeros((600, 800, 4), np.uint8)
        img[300:, :, :3] = 120  # a road below the horizon: not a blank frame
        img[:, (frame * 7) % 800, :3] = 255
        self.raw_data = img.tobytes()


class Waypoint:
    def __init__(self, x: float, y: float):
        self.transform = Transform(Location(x, y))

    def next(self, d: float) -> list["Waypoint"]:
        return [Waypoint(self.transform.location.x + d, self.transform.location.y)]


class Map:
    name = "Carla/Maps/Town01"

    def get_spawn_points(self) -> list[Transform]:
        return [Transform(Location(100.0 * i, 0.0)) for i in range(150)]

    def get_waypoint(self, location: Location) -> Waypoint:
        return Waypoint(location.x, 0.0)


class World:
    def __init__(self, fail_spawning_after: int | None = None):
        self.settings = WorldSettings()
        self.actors: dict[int, Actor] = {}
        self.frame = 0
        self._ids = 0
        self.fail_spawning_after = fail_spawning_after
        self.late_frames: list[Image] = []

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def get_settings(self) -> WorldSettings:
        return WorldSettings(**vars(self.settings))

    def apply_settings(self, settings: WorldSettings) -> None:
        self.settings = WorldSettings(**vars(settings))

    def get_map(self) -> Map:
        return Map()

    def get_blueprint_library(self):
        lib = types.SimpleNamespace()
        lib.find = Blueprint
        lib.filter = lambda pattern: [Blueprint("vehicle.audi.a2"), Blueprint("vehicle.tesla.model3")]
        return lib

    def spawn_actor(self, bp: Blueprint, transform: Transform, attach_to: Actor | None = None) -> Actor:
        if self.fail_spawning_after is not None and len(self.actors) >= self.fail_spawning_after:
            raise RuntimeError("Spawn failed because of collision at spawn position")
        actor = Actor(self, bp, transform, attach_to)
        self.actors[actor.id] = actor
        return actor

    def get_actor(self, actor_id: int) -> Actor:
        return self.actors[actor_id]

    def get_actors(self) -> list[Actor]:
        return list(self.actors.values())

    def tick(self) -> int:
        self.frame += 1
        for a in self.actors.values():
            if a.type_id.startswith("vehicle.") and a.parent is None:
                a.velocity = Vector3D(8.0 * a.control.throttle, 0.0)
                a.transform = Transform(Location(a.transform.location.x + a.velocity.x * 0.05, a.transform.location.y))
        # The camera of the previous tick delivers late, then this tick's frame.
        for a in list(self.actors.values()):
            if a.type_id == "sensor.camera.rgb" and a.callback:
                for img in self.late_frames:
                    a.callback(img)
                self.late_frames = [Image(self.frame - 1)]
                a.callback(Image(self.frame))
        return self.frame


class TrafficManager:
    def __init__(self):
        self.synchronous = False

    def set_synchronous_mode(self, on: bool) -> None:
        self.synchronous = on

    def set_random_device_seed(self, seed: int) -> None:
        pass

    def get_port(self) -> int:
        return 8000


class Response:
    def __init__(self, actor_id: int = 0, error: str = ""):
        self.actor_id, self.error = actor_id, error


class SpawnActor:
    def __init__(self, bp: Blueprint, transform: Transform):
        self.bp, self.transform = bp, transform

    def then(self, _):
        return self


class DestroyActor:
    def __init__(self, actor_id: int):
        self.actor_id = actor_id


class Client:
    world: World = World()
    tm = TrafficManager()
    servers: dict[tuple[str, int], World] = {}  # one world per address ("one server each"); others: ``world``
    connected: list[tuple[str, int]] = []  # every address a client was made for, in order

    def __init__(self, host: str, port: int):
        Client.connected.append((host, port))
        self.world = Client.servers.get((host, port), Client.world)

    def set_timeout(self, seconds: float) -> None:
        pass

    def get_server_version(self) -> str:
        return "0.9.16"

    def get_world(self) -> World:
        return self.world

    def load_world(self, town: str) -> World:
        return self.world

    def get_trafficmanager(self, port: int) -> TrafficManager:
        return Client.tm

    def apply_batch_sync(self, commands, _do_tick: bool = False) -> list[Response]:
        out = []
        for c in commands:
            if isinstance(c, DestroyActor):
                self.world.actors.pop(c.actor_id, None)
                out.append(Response(c.actor_id))
            else:
                out.append(Response(self.world.spawn_actor(c.bp, c.transform).id))
        return out


def module(world: World, servers: dict[tuple[str, int], World] | None = None) -> types.ModuleType:
    """A ``carla`` module whose clients talk to ``servers[(host, port)]``, or to ``world`` for an address not
    listed; ``Client.connected`` records the addresses asked for."""
    Client.world, Client.tm, Client.servers, Client.connected = world, TrafficManager(), dict(servers or {}), []
    m = types.ModuleType("carla")
    m.Client, m.Location, m.Transform, m.VehicleControl = Client, Location, Transform, VehicleControl
    m.command = types.SimpleNamespace(SpawnActor=SpawnActor, SetAutopilot=lambda *a: None, FutureActor=0,
                                      DestroyActor=DestroyActor)
    return m
