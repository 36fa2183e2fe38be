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

TD3 does not maximise that return but the discounted one, ``sum_t gamma^t r_t``: ``--gammas`` adds it from each
episode's first step (the objective at the start state) for each discount, and ``--collision-penalties`` for
each crash penalty (the same episodes, the collision term of ``info["reward_terms"]`` rescaled, as if
``env.collision_penalty`` had been that value: no driver's actions depend on it). If a blind driver that
crashes outscores the crawl that does not under the discount an agent uses, the agent has no reason to slow
down either.
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


def episode(env, seed: int, throttle) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """One episode: per-step rewards and their collision terms, route completion (%) and whether it crashed."""
    env.reset(seed=seed)
    rewards, collision, dist, crash, done = [], [], 0.0, False, False
    while not done:
        v = env.unwrapped.vehicle
        _, r, terminated, truncated, info = env.step(np.array([lane_steer(v), throttle(v)], np.float32))
        rewards.append(r)
        collision.append(info["reward_terms"]["collision"])
        dist, crash = dist + info["distance_m"], crash or info["collision"]
        done = terminated or truncated
    return np.array(rewards), np.array(collision), dist / info["route_length_m"] * 100.0, crash


def discounted(rewards: np.ndarray, collision: np.ndarray, gamma: float, penalty: float, configured: float) -> float:
    """``sum_t gamma^t r_t`` with the collision term rescaled from ``configured`` to ``penalty``."""
    scale = penalty / configured if configured > 0 else 0.0
    r = rewards - collision + collision * scale
    return float(np.sum(r * gamma ** np.arange(len(r))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", type=int, default=1)
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--speeds", default="20,15,12,10,8", help="the blind drivers' speeds (m/s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="env overrides")
    p.add_argument("--gammas", default="0.99", help="discounts of the discounted-return columns ('' for none)")
    p.add_argument("--collision-penalties", default="", help="crash penalties of those columns (default: the env's)")
    a = p.parse_args()
    os.environ.pop("SDL_VIDEODRIVER", None)  # highway-env draws nothing under the dummy driver
    cfg = build_config(sets=["env.name=highway", f"env.scenario={a.scenario}", *a.set])
    env = make_env(cfg)
    configured = cfg.env.collision_penalty
    gammas = [float(g) for g in a.gammas.split(",") if g]
    penalties = [float(c) for c in a.collision_penalties.split(",") if c] or [configured]
    columns = [(g, c) for c in penalties for g in gammas]
    drivers = {f"blind {s} m/s": blind(float(s)) for s in a.speeds.split(",")}
    drivers["seeing (IDM behind the car ahead)"] = seeing
    print(f"scenario {a.scenario}, {a.episodes} episodes, {' '.join(a.set) or 'default env'}\n")
    heads = "".join(f" discounted, gamma {g}, crash -{c:g} |" for g, c in columns)
    print(f"| driver | return | route % | crashes |{heads}\n|---|---|---|---|{'---|' * len(columns)}")
    for name, throttle in drivers.items():
        runs = [episode(env, 1000 + i, throttle) for i in range(a.episodes)]
        r = np.array([x[0].sum() for x in runs])
        route, crash = np.array([x[2] for x in runs]), sum(x[3] for x in runs)
        cells = "".join(
            f" {np.mean([discounted(x[0], x[1], g, c, configured) for x in runs]):.1f} |" for g, c in columns)
        print(f"| {name} | {r.mean():.1f} ± {r.std():.1f} | {route.mean():.1f} | {crash} / {a.episodes} |{cells}")


if __name__ == "__main__":
    main()
