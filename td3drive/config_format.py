"""Old saved configs read with the meaning they had: one migration per format, keyed by ``format``.

A config that td3drive writes (config.yaml, a checkpoint's, a sweep trial's) carries ``format``: the
version of its keys. :func:`upgrade` carries a mapping from its format to :data:`FORMAT` one step at a time,
so that an old run's checkpoints load and it resumes as it ran:

- format 0 (before the time limit counted simulator frames; ``env.max_episode_steps``): the limit becomes
  ``max_episode_frames = max_episode_steps x action_repeat``, and a key it leaves out takes the default
  of its time (:data:`FORMAT_0_DEFAULTS`);
- format 1 (every backend's options flat in ``env``, all of them in every saved config; no ``format``
  key): the options of backends other than the chosen one are dropped, and a CarRacing config that
  predates ``env.carracing_vector`` gets the vector it trained with, ``full``;
- format 2: today's (``env`` holds the common keys and the chosen backend's options only).

A mapping without ``format`` is a hand-written file (today's keys), unless it shows one of the formats
above (``max_episode_steps``; the options of several backends, which only a format-1 save holds).
"""

from __future__ import annotations

from typing import Any, Mapping

from td3drive.core.errors import ConfigError
from td3drive.core.options import keys

FORMAT = 2

# Format 0: what a key left out meant (its recipe: one update per 50 steps of batch 256, no augmentation,
# one-step targets, no action repeat, the 512-wide ReLU features).
FORMAT_0_DEFAULTS: dict[str, dict[str, Any]] = {
    "env": {"action_repeat": 1, "no_progress_frames": 0},
    "agent": {"features_dim": 512, "trunk": "relu", "augment_pad": 0, "n_step": 1},
    "training": {"train_freq": 50, "batch_size": 256},
}
# Format 1: keys of different backends that every save of that format held together.
_FORMAT_1_MARKERS = frozenset({"policy_frequency", "target_speed", "carla_host", "carla_port", "fast_render"})


def detect(data: Mapping[str, Any]) -> int:
    """The format of ``data``: its ``format`` key, or what its keys show (see the module's docstring)."""
    if "format" in data:
        fmt = data["format"]
        if not isinstance(fmt, int) or isinstance(fmt, bool) or not 0 <= fmt <= FORMAT:
            raise ConfigError(f"config key 'format' = {fmt!r}: this td3drive reads formats 0 to {FORMAT} (a newer "
                              "td3drive wrote it, or the file is damaged)")
        return fmt
    env = data.get("env")
    if not isinstance(env, Mapping):
        return FORMAT
    if "max_episode_steps" in env:
        return 0
    return 1 if _FORMAT_1_MARKERS <= set(env) else FORMAT


def _from_0(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for section, defaults in FORMAT_0_DEFAULTS.items():
        have = out.get(section, {})
        out[section] = {**defaults, **have} if isinstance(have, Mapping) else have  # a non-mapping: named later
    env = out["env"]
    steps = env.pop("max_episode_steps")
    if "max_episode_frames" not in env and isinstance(steps, int) and isinstance(env["action_repeat"], int):
        env["max_episode_frames"] = steps * env["action_repeat"]
    return out


def _from_1(data: dict[str, Any]) -> dict[str, Any]:
    from td3drive.envs import BACKENDS, EnvConfig, options_class

    env = dict(data.get("env") or {})
    name = env.get("name", "carracing")
    if name not in BACKENDS:
        return data  # left for the config's own check to name
    if name == "carracing" and _FORMAT_1_MARKERS <= set(env):  # a save from before the option existed
        env.setdefault("carracing_vector", "full")
    own = set(keys(EnvConfig)) | set(keys(options_class(name)))
    return {**data, "env": {k: v for k, v in env.items() if k in own}}


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a nested config mapping) in format :data:`FORMAT`, without its ``format`` key."""
    out = dict(data or {})
    fmt = detect(out)
    out.pop("format", None)
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in out.items()}
    if fmt == 0:
        out = _from_0(out)
    if fmt <= 1:
        out = _from_1(out)
    return out
