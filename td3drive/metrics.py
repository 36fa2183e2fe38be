"""Driving metrics of route backends (highway, racetrack, CARLA), CARLA-Leaderboard style.

A route backend reports, in every step's ``info``: ``distance_m`` (metres advanced along the route in
this step, negative when driving backwards), ``route_length_m``, ``collision`` (this step started a
collision), ``lane_invasion`` (this step crossed a lane marking) and ``speed_mps``.

Per evaluation (all episodes together):

- ``route_completion``: mean over episodes of min(1, distance / route length), in %
- ``collisions_per_km``, ``lane_invasions_per_km``: counts over the distance driven by all episodes
- ``mean_speed``: m/s over all steps
- ``driving_score``: mean over episodes of route completion x infraction penalty, in %. The penalty
  is 0.60 per collision (the Leaderboard's coefficient for a collision with a vehicle); lane
  invasions are reported but, as in the Leaderboard, not penalised (leaving the road ends the
  episode and so costs route completion).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from td3drive.core import tags

COLLISION_PENALTY = 0.60
INFO_KEYS = ("distance_m", "route_length_m", "collision", "lane_invasion", "speed_mps")


@dataclass
class EpisodeDriving:
    """Tally of one episode."""

    distance_m: float = 0.0
    route_length_m: float = 0.0
    collisions: int = 0
    lane_invasions: int = 0
    speeds: list[float] = field(default_factory=list)

    def add(
        self, distance_m: float, route_length_m: float, collision: bool, lane_invasion: bool, speed_mps: float
    ) -> None:
        self.distance_m += float(distance_m)
        self.route_length_m = float(route_length_m)
        self.collisions += int(bool(collision))
        self.lane_invasions += int(bool(lane_invasion))
        self.speeds.append(float(speed_mps))

    @property
    def route_completion(self) -> float:
        """Fraction in [0, 1]."""
        if self.route_length_m <= 0:
            return 0.0
        return float(np.clip(self.distance_m / self.route_length_m, 0.0, 1.0))

    @property
    def driving_score(self) -> float:
        """Fraction in [0, 1]: route completion x 0.60 ** collisions."""
        return self.route_completion * COLLISION_PENALTY**self.collisions


def has_driving_info(info: dict) -> bool:
    return all(k in info for k in INFO_KEYS)


def summarize(episodes: list[EpisodeDriving]) -> dict[str, float]:
    """The ``eval/*`` driving metrics (tag -> value) of a set of episodes."""
    km = sum(max(e.distance_m, 0.0) for e in episodes) / 1000.0
    speeds = [s for e in episodes for s in e.speeds]
    per_km = (lambda n: n / km) if km > 0 else (lambda n: float("nan"))
    return {
        tags.EVAL_ROUTE_COMPLETION: 100.0 * float(np.mean([e.route_completion for e in episodes])),
        tags.EVAL_COLLISIONS_PER_KM: per_km(sum(e.collisions for e in episodes)),
        tags.EVAL_LANE_INVASIONS_PER_KM: per_km(sum(e.lane_invasions for e in episodes)),
        tags.EVAL_MEAN_SPEED: float(np.mean(speeds)) if speeds else float("nan"),
        tags.EVAL_DRIVING_SCORE: 100.0 * float(np.mean([e.driving_score for e in episodes])),
    }
