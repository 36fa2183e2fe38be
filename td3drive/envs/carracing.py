"""CarRacing-v3 (gymnasium, Box2D) under the common contract; no server needed.

Two ego vectors, chosen by ``env.carracing_vector``; both are read from the simulator's state, not from pixels.

``proprio`` (the default), k = 7: what the car's own sensors give, the quantities CarRacing's dashboard strip
draws. Nothing in it says where the road is: the camera has to.

=====  ============================================  ===========================================
index  quantity                                      unit
=====  ============================================  ===========================================
0      forward speed (velocity along the car's nose) world units/s / 50 (about 1 at full speed)
1      yaw rate (the dashboard's gyroscope)          rad/s
2      front wheels' steering angle                  fraction of its +-0.4 rad lock; + = right
3-6    wheel spin (the dashboard's ABS bars):        rad/s / 100 (about 1.9 at full speed)
       front left, front right, rear left, rear right
=====  ============================================  ===========================================

``full``, k = 14: a complete lane-following state (privileged geometry a real car does not measure; with it
a policy can drive without looking, docs/BENCHMARKS.md section 14):

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
``truncated``: the time limit (``env.max_episode_frames`` simulator frames), and in training episodes
only, ``env.no_progress_frames`` frames without reaching a new track tile. Training episodes may also
charge ``env.carracing_offroad_penalty`` for each frame off the road; evaluation keeps the stock reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import gymnasium as gym
import numpy as np
import pygame
from gymnasium.envs.box2d.car_racing import (
    GRASS_DIM,
    MAX_SHAPE_DIM,
    PLAYFIELD,
    STATE_H,
    STATE_W,
    TRACK_WIDTH,
    VIDEO_H,
    VIDEO_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
    CarRacing,
)
from gymnasium.envs.box2d.car_racing import SCALE as WORLD_SCALE
from pygame import gfxdraw

from td3drive.core.options import leaf, non_negative, one_of
from td3drive.envs.contract import ThrottleBrakeAction, apply_contract
from td3drive.envs.geometry import wrap_angle

if TYPE_CHECKING:
    from td3drive.envs import EnvConfig

VECTORS = {"proprio": 7, "full": 14}  # env.carracing_vector -> k


@dataclass(frozen=True)
class CarRacingOptions:
    """CarRacing's own ``env.*`` keys."""

    no_progress_frames: int = leaf(200, non_negative(),
                                   "training episodes only: truncate after N frames without a new track tile (0 "
                                   "disables; evaluation always keeps the stock rules)")
    carracing_offroad_penalty: float = leaf(
        0.0, non_negative(), "training episodes only: reward subtracted for each simulator frame with no wheel on "
        "the road (0 disables; evaluation keeps the stock reward)")
    carracing_vector: str = leaf(
        "proprio", one_of(*VECTORS), "the ego vector: proprio (speed, yaw rate, steering, wheel spin: the "
        "dashboard's sensors, k=7) or full (adds lateral offset, heading error and 5 waypoints: privileged road "
        "geometry, k=14); camera frames only is agent.use_vector=false", fixed=True)
    fast_render: bool = leaf(True, None, "vectorised road drawing (pixel-identical frames, ~2x faster steps)")


OPTIONS = CarRacingOptions
VECTOR_DIM = VECTORS["full"]  # the largest; vector_dim(cfg) gives the configured one
SCENARIOS = {"carracing": (0,)}
RGB_VIEW = True  # CarRacingEgo.rgb_view: the colour frame
LANE_INVASION_LABEL = "road exits"  # TrackProgress's lane_invasion: the frame the car left the road
FRAMES_PER_S = 50  # Box2D steps per simulated second (real-time playback of eval --video)
# A stage's shortest healthy mean episode, as a fraction of the longest (criteria.resolve): CarRacing ends an
# episode early only by leaving the playfield.
STAGE_MIN_EPISODE_FRACTION = 0.1
N_WAYPOINTS = 5
WAYPOINT_STRIDE = 2
SPEED_SCALE = 50.0
STEER_LOCK = 0.4  # rad: the front wheels' joint limit (gymnasium's car_dynamics)
WHEEL_SPIN_SCALE = 0.01  # the scale CarRacing's dashboard draws the ABS bars at


def vector_dim(cfg: EnvConfig) -> int:
    """k of the configured ego vector (``env.carracing_vector``)."""
    return VECTORS[cfg.carracing_vector]


def vector_name(cfg: EnvConfig) -> str:
    return cfg.carracing_vector


def proprio_state(forward_speed: float, yaw_rate: float, steer_angle: float, wheel_omega: np.ndarray) -> np.ndarray:
    """The ``proprio`` vector (module docstring) ``float32[7]``: ``forward_speed`` world units/s, ``yaw_rate``
    rad/s, ``steer_angle`` rad (Box2D joint angle: + = left, so it is negated to the action's + = right),
    ``wheel_omega`` ``[4]`` rad/s."""
    head = [forward_speed / SPEED_SCALE, yaw_rate, -steer_angle / STEER_LOCK]
    return np.concatenate([head, np.asarray(wheel_omega, np.float64) * WHEEL_SPIN_SCALE]).astype(np.float32)


def nose_direction(car_angle: float) -> np.ndarray:
    """Unit vector ``[2]`` (world frame) the car's nose points along: Box2D's body angle turns the local +y axis."""
    return np.array([-math.sin(car_angle), math.cos(car_angle)])


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
    forward = nose_direction(car_angle)
    left = np.array([-forward[1], forward[0]])
    n = len(track)
    i = int(np.argmin(((track - position) ** 2).sum(axis=1)))
    seg = track[(i + 1) % n] - track[i]
    seg /= max(float(np.hypot(*seg)), 1e-9)
    rel = position - track[i]
    lateral = (seg[0] * rel[1] - seg[1] * rel[0]) / half_width
    heading_error = wrap_angle(math.atan2(forward[1], forward[0]) - math.atan2(seg[1], seg[0]))
    ahead = track[(i + WAYPOINT_STRIDE * np.arange(1, N_WAYPOINTS + 1)) % n] - position
    waypoints = np.stack([ahead @ forward, ahead @ left], axis=1) / half_width
    head = [float(velocity @ forward) / SPEED_SCALE, yaw_rate, lateral, heading_error]
    return np.concatenate([head, waypoints.ravel()]).astype(np.float32)


class FastCarRacing(CarRacing):
    """CarRacing-v3 with the road drawn from precomputed vertex arrays: the same frames, pixel for pixel.

    Stock CarRacing rotates, scales and culls ~1,200 polygons (grass and road tiles) in Python on
    every frame, which is most of the simulator's step time; here the same arithmetic (pygame's
    Vector2.rotate_rad, then zoom and translation, in float64) runs vectorised over all polygons and
    only the visible ones reach pygame's drawing calls. The frame around the road is drawn as stock
    draws it, less the work that repeats: the score's font is loaded once (stock loads the font file every
    frame) and its text rendered once per value shown (3.3 -> 2.6 ms per frame with both, paired in one
    process). ``tests/test_carracing.py`` checks the frames, and the video frames, are identical to stock's.
    """

    _grass: np.ndarray | None = None
    _font: pygame.font.Font | None = None
    _SCORE_CACHE = 64  # score texts kept (a new one about every 10 frames: the reward falls 0.1 a frame)

    def _render(self, mode: str):
        if mode not in ("state_pixels", "rgb_array") or "t" not in self.__dict__:
            return super()._render(mode)  # a window, or before reset(): stock's own path
        if not hasattr(self, "_score_texts"):
            pygame.font.init()
            self._score_texts: dict[str, tuple[pygame.Surface, pygame.Rect]] = {}
        # A new surface each frame, as stock does: reusing one costs more (fill: 0.43 ms) than allocating.
        self.surf = pygame.Surface((WINDOW_W, WINDOW_H))
        # The camera as stock computes it: rotation with the car, zoom animated over the first second.
        angle = -self.car.hull.angle
        zoom = 0.1 * WORLD_SCALE * max(1 - self.t, 0) + ZOOM * WORLD_SCALE * min(self.t, 1)
        scroll = pygame.math.Vector2((-self.car.hull.position[0] * zoom, -self.car.hull.position[1] * zoom))
        scroll = scroll.rotate_rad(angle)
        trans = (WINDOW_W / 2 + scroll[0], WINDOW_H / 4 + scroll[1])
        self._render_road(zoom, trans, angle)
        self.car.draw(self.surf, zoom, trans, angle, mode != "state_pixels")  # particles: in videos only
        self.surf = pygame.transform.flip(self.surf, False, True)
        self._render_indicators(WINDOW_W, WINDOW_H)
        self.surf.blit(*self._score_text(f"{self.reward:04.0f}"))
        return self._create_image_array(self.surf, (VIDEO_W, VIDEO_H) if mode == "rgb_array" else (STATE_W, STATE_H))

    def _score_text(self, text: str) -> tuple[pygame.Surface, pygame.Rect]:
        """The score drawn as stock draws it (default font, 42 px, white on black), centred where stock puts it."""
        if text not in self._score_texts:
            if FastCarRacing._font is None:
                FastCarRacing._font = pygame.font.Font(pygame.font.get_default_font(), 42)
            if len(self._score_texts) >= self._SCORE_CACHE:
                self._score_texts.clear()
            surface = FastCarRacing._font.render(text, True, (255, 255, 255), (0, 0, 0))
            rect = surface.get_rect()
            rect.center = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)
            self._score_texts[text] = (surface, rect)
        return self._score_texts[text]

    def _road_xy(self) -> np.ndarray:
        """Vertices ``[P, 4, 2]`` of the road polygons (static per track; their colours are not:
        CarRacing recolours a tile in place when the car visits it)."""
        if getattr(self, "_road_src", None) is not self.road_poly or len(self._road_vertices) != len(self.road_poly):
            self._road_src = self.road_poly  # reset() builds a new list
            self._road_vertices = np.array([[(p[0], p[1]) for p in poly] for poly, _ in self.road_poly], np.float64)
        return self._road_vertices

    @classmethod
    def _grass_xy(cls) -> np.ndarray:
        if cls._grass is None:
            g = GRASS_DIM
            cls._grass = np.array(
                [[(g * x + g, g * y), (g * x, g * y), (g * x, g * y + g), (g * x + g, g * y + g)]
                 for x in range(-20, 20, 2) for y in range(-20, 20, 2)], np.float64)
        return cls._grass

    @staticmethod
    def _rotation(angle: float) -> tuple[float, float] | None:
        """(cos, sin) exactly as pygame's rotate_rad computes them; None for its exact 90-degree cases."""
        a = math.fmod(angle, 2 * math.pi)
        if a < 0:
            a += 2 * math.pi
        eps = 1e-6  # pygame's default Vector2 epsilon
        if math.fmod(a + eps, math.pi / 2) < 2 * eps:
            return None
        return math.cos(a), math.sin(a)

    def _transform(self, xy: np.ndarray, zoom: float, translation, angle: float) -> np.ndarray:
        rot = self._rotation(angle)
        if rot is None:  # exact right-angle rotations: defer to pygame itself
            out = np.array([[tuple(pygame.math.Vector2(tuple(c)).rotate_rad(angle)) for c in poly] for poly in xy])
        else:
            c, s = rot
            x, y = xy[..., 0], xy[..., 1]
            out = np.stack([c * x - s * y, s * x + c * y], axis=-1)
        out[..., 0] = out[..., 0] * zoom + translation[0]
        out[..., 1] = out[..., 1] * zoom + translation[1]
        return out

    def _draw_visible(self, polys: np.ndarray, color_of: Callable[[int], object], clip: bool = True) -> None:
        if clip:
            m = MAX_SHAPE_DIM
            inside = ((polys[..., 0] >= -m) & (polys[..., 0] <= WINDOW_W + m)
                      & (polys[..., 1] >= -m) & (polys[..., 1] <= WINDOW_H + m)).any(axis=1)
            idx = np.flatnonzero(inside)
        else:
            idx = range(len(polys))
        for i in idx:
            poly = [tuple(v) for v in polys[i].tolist()]
            color = color_of(i)
            gfxdraw.aapolygon(self.surf, poly, color)
            gfxdraw.filled_polygon(self.surf, poly, color)

    def _render_road(self, zoom, translation, angle):
        b = PLAYFIELD
        field = np.array([[(b, b), (b, -b), (-b, -b), (-b, b)]], np.float64)
        self._draw_visible(self._transform(field, zoom, translation, angle), lambda i: self.bg_color, clip=False)
        self._draw_visible(self._transform(self._grass_xy(), zoom, translation, angle), lambda i: self.grass_color)
        road = self._road_xy()
        if len(road):
            self._draw_visible(self._transform(road, zoom, translation, angle),
                               lambda i: [int(c) for c in self.road_poly[i][1]])


def centre_line(env: gym.Env) -> np.ndarray:
    """The current track's centre-line points ``float64[n, 2]`` (world units), one per tile."""
    return np.array([(t[2], t[3]) for t in env.unwrapped.track], dtype=np.float64)


def on_road(env: gym.Env) -> bool:
    """Whether at least one of the car's four wheels touches a road tile (Box2D contacts of this frame)."""
    return any(w.tiles for w in env.unwrapped.car.wheels)


class CarRacingEgo(gym.Wrapper):
    """Exposes :meth:`ego_vector` computed from CarRacing's Box2D state: ``vector`` is ``proprio`` or
    ``full`` (module docstring)."""

    def __init__(self, env: gym.Env, vector: str = "proprio"):
        super().__init__(env)
        if vector not in VECTORS:
            raise ValueError(f"carracing vector {vector!r}: must be one of {', '.join(VECTORS)}")
        self.vector = vector
        self._track = np.zeros((1, 2))

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._track = centre_line(self.env)
        return obs, info

    def rgb_view(self) -> np.ndarray:
        """What a person watching sees: the simulator's own top-down RGB frame (``uint8[96, 96, 3]``, the
        state CarRacing renders each step, before the contract turns it into the 84x84 grey input)."""
        return np.asarray(self.env.unwrapped.state, dtype=np.uint8)

    def ego_vector(self) -> np.ndarray:
        car = self.env.unwrapped.car
        hull = car.hull
        if self.vector == "proprio":
            forward = nose_direction(float(hull.angle))
            return proprio_state(float(np.asarray(hull.linearVelocity) @ forward), float(hull.angularVelocity),
                                 float(car.wheels[0].joint.angle), np.array([w.omega for w in car.wheels]))
        return ego_state(
            np.array(hull.position, dtype=np.float64),
            float(hull.angle),
            np.array(hull.linearVelocity, dtype=np.float64),
            float(hull.angularVelocity),
            self._track,
        )


class TrackProgress(gym.Wrapper):
    """CarRacing as a route backend: every frame's ``info`` carries the driving-metric keys of
    ``td3drive.metrics``, so evaluations report how much of the track the car covered and how often it left
    the road, next to the return.

    The route is one lap: ``route_length_m`` is the centre line's length and ``distance_m`` is the track
    length's share of each tile first reached in the frame (length / tiles per tile), so route completion is
    the fraction of tiles visited, exactly what CarRacing pays 1000/N for. World units are taken as metres
    (the car is 5.0 long and 2.4 wide). ``collision`` is always false (no traffic); ``lane_invasion`` is
    the frame in which the car left the road (no wheel on a road tile any more); ``speed_mps`` the car's
    speed. A lap that ends the episode shows as success, its completion is the tiles it visited (> 95 %)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._tile_m, self._length_m, self._tiles, self._on_road = 0.0, 0.0, 0, True

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        track = centre_line(self.env)
        self._length_m = float(np.hypot(*(np.roll(track, -1, axis=0) - track).T).sum())
        self._tile_m = self._length_m / len(track)
        # From 0, not from the tiles the car touched while reset placed it: CarRacing pays those in the first step.
        self._tiles, self._on_road = 0, True
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        car = self.env.unwrapped.car
        tiles = self.env.unwrapped.tile_visited_count
        road = on_road(self.env)
        info = {**info, "distance_m": (tiles - self._tiles) * self._tile_m, "route_length_m": self._length_m,
                "collision": False, "lane_invasion": self._on_road and not road,
                "speed_mps": float(np.hypot(*car.hull.linearVelocity)),
                "is_success": bool(info.get("lap_finished", False))}  # the lap done: the contract's success flag
        self._tiles, self._on_road = tiles, road
        return obs, reward, terminated, truncated, info


class NoProgressTruncation(gym.Wrapper):
    """Truncate an episode after ``frames`` consecutive simulator frames in which the car reached no
    new track tile (``info["no_progress"] = True``). For training episodes only: compute is not spent
    on a car standing on the grass. A truncation, not a termination: the task itself did not end, so
    the critic still bootstraps from the last observation."""

    def __init__(self, env: gym.Env, frames: int):
        super().__init__(env)
        self.frames = frames
        self._tiles = 0
        self._idle = 0

    def reset(self, **kwargs):
        self._tiles, self._idle = 0, 0
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        tiles = self.env.unwrapped.tile_visited_count
        self._idle = 0 if tiles > self._tiles else self._idle + 1
        self._tiles = tiles
        if self._idle >= self.frames and not terminated:
            truncated = True
            info = {**info, "no_progress": True}
        return obs, reward, terminated, truncated, info


class OffRoadPenalty(gym.Wrapper):
    """Subtract ``per_frame`` from the reward of every simulator frame in which no wheel touches the road,
    and report it as ``info["reward_terms"]["off_road"]`` (<= 0). For training episodes only.

    Why: the default recipe's late evaluations miss CarRacing's lap through road exits that cut corners past
    tiles (docs/BENCHMARKS.md, section 10); the stock reward charges a cut only indirectly, through tiles
    it leaves unpaid, so this makes leaving the road cost something in the frame it happens."""

    def __init__(self, env: gym.Env, per_frame: float):
        super().__init__(env)
        self.per_frame = per_frame

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        penalty = 0.0 if on_road(self.env) else -self.per_frame
        terms = {**info.get("reward_terms", {}), "off_road": penalty}
        return obs, reward + penalty, terminated, truncated, {**info, "reward_terms": terms}


def make_carracing(action_repeat: int, max_episode_frames: int, blank_frame_steps: int, fast_render: bool = True,
                   no_progress_frames: int = 0, offroad_penalty: float = 0.0, vector: str = "proprio") -> gym.Env:
    """CarRacing-v3 under the contract (no time limit of its own: ours counts simulator frames), with the
    ``vector`` ego vector (``proprio`` or ``full``).

    ``no_progress_frames`` > 0 adds :class:`NoProgressTruncation` and ``offroad_penalty`` > 0 (reward per
    simulator frame off the road) :class:`OffRoadPenalty`: the trainer's envs only.
    """
    ego = CarRacingEgo((FastCarRacing if fast_render else CarRacing)(render_mode=None), vector)
    base: gym.Env = TrackProgress(ego)
    if offroad_penalty > 0:
        base = OffRoadPenalty(base, offroad_penalty)
    if no_progress_frames > 0:
        base = NoProgressTruncation(base, no_progress_frames)
    env = ThrottleBrakeAction(base)
    return apply_contract(
        env,
        vector_dim=VECTORS[vector],
        ego_vector=ego.ego_vector,
        action_repeat=action_repeat,
        max_episode_frames=max_episode_frames,
        blank_frame_steps=blank_frame_steps,
        blank_hint="CarRacing renders with pygame; check that pygame can create an offscreen surface",
    )


def make(cfg: EnvConfig, training: bool = False) -> gym.Env:
    """The registry's constructor (``cfg``: the env config section; ``training`` adds the training-only rules:
    the no-progress truncation and the off-road penalty)."""
    return make_carracing(cfg.action_repeat, cfg.max_episode_frames, cfg.blank_frame_steps, fast_render=cfg.fast_render,
                          no_progress_frames=cfg.no_progress_frames if training else 0,
                          offroad_penalty=cfg.carracing_offroad_penalty if training else 0.0,
                          vector=cfg.carracing_vector)
