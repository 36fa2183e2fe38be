"""Does seeing pay on highway? Hand-written drivers, blind and seeing, on the same traffic.

    python bench/highway_blind.py --scenario 1 --episodes 6 --set env.traffic_speed_mps=14 \\
        --set env.traffic_speed_spread_mps=6 --set env.time_penalty=0.3

Before a learning run is asked to use its camera, this checks that the reward rewards it: every driver
holds the lane centre (a proportional steer on the lateral offset and heading error, from the simulator's
geometry), and differs only in the throttle: ``blind V`` holds V m/s whatever is ahead; ``seeing`` follows
the car ahead in its lane with the Intelligent Driver Model (desired 20 m/s, time gap 1.5 s, minimum gap
10 m), i.e. uses what only the camera shows. If the best blind speed earns about what ``seeing`` earns,
a policy has no reason to look. Episodes on the seeds 1000, 1001, ... (the evaluation's are separate);
return as the env pays it (``env.*`` overrides via ``--set``), route completion and crashes.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from td3drive.config import build_config
from td3drive.envs import make_env
from td3drive.envs.geometry import wrap_angle

IDM = {"a_max": 3.0, "b": 5.0, "time_gap_s": 1.5, "min_gap_m": 10.0, "desired_mps": 20.0}


def lane_steer(v) -> float:
    """Steer towards the lane centre: [-1, 1], + = right (the contract's sign)."""
    lane = v.road.network.get_lane(v.lane_index)
    s, r = lane.local_coordinates(v.position)
    error = wrap_angle(lane.heading_at(s) - v.heading)
    return float(np.clip(0.4 * r - 3.0 * error, -1.0, 1.0))


def blind(speed: float):
    return lambda v: float(np.clip((speed - v.speed) / 5.0, -1.0, 1.0))


def seeing(v) -> float:
    """IDM acceleration behind the vehicle ahead in the ego's lane, as a throttle (5 m/s^2 at 1)."""
    p = IDM
    acc = p["a_max"] * (1.0 - (v.speed / p["desired_mps"]) ** 4)
    front, _ = v.road.neighbour_vehicles(v, v.lane_index)
    if front is not None:
        gap = max(v.lane_distance_to(front) - v.LENGTH, 0.1)
        wanted = p["min_gap_m"] + v.speed * p["time_gap_s"] + v.speed * (v.speed - front.speed) / (
            2 * np.sqrt(p["a_max"] * p["b"]))
        acc -= p["a_max"] * (max(wanted, 0.0) / gap) ** 2
    return float(np.clip(acc / 5.0, -1.0, 1.0))


def episode(env, seed: int, throttle) -> tuple[float, float, bool]:
    env.reset(seed=seed)
    ret, dist, crash, done = 0.0, 0.0, False, False
    while not done:
        v = env.unwrapped.vehicle
        _, r, terminated, truncated, info = env.step(np.array([lane_steer(v), throttle(v)], np.float32))
        ret, dist, crash = ret + r, dist + info["distance_m"], crash or info["collision"]
        done = terminated or truncated
    return ret, dist / info["route_length_m"] * 100.0, crash


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", type=int, default=1)
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--speeds", default="20,15,12,10,8", help="the blind drivers' speeds (m/s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="env overrides")
    a = p.parse_args()
    os.environ.pop("SDL_VIDEODRIVER", None)  # highway-env draws nothing under the dummy driver
    env = make_env(build_config(sets=["env.name=highway", f"env.scenario={a.scenario}", *a.set]))
    drivers = {f"blind {s} m/s": blind(float(s)) for s in a.speeds.split(",")}
    drivers["seeing (IDM behind the car ahead)"] = seeing
    print(f"scenario {a.scenario}, {a.episodes} episodes, {' '.join(a.set) or 'default env'}\n")
    print("| driver | return | route % | crashes |\n|---|---|---|---|")
    for name, throttle in drivers.items():
        r, route, crash = map(np.array, zip(*(episode(env, 1000 + i, throttle) for i in range(a.episodes))))
        print(f"| {name} | {r.mean():.1f} ± {r.std():.1f} | {route.mean():.1f} | {int(crash.sum())} / {a.episodes} |")


if __name__ == "__main__":
    main()
