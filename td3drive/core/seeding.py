"""Named random streams: every generator of a run is ``SeedSequence([seed, STREAM, ...])`` with its stream id
here, so that no two parts of a run draw from the same numbers and a resumed run can rebuild each one.

Episode reset seeds come from :func:`episode_seed`: training episodes on :data:`TRAIN_EPISODES`, evaluation
episodes on :data:`EVAL_EPISODES` (the same fixed tracks at every evaluation, so evaluations compare).
"""

from __future__ import annotations

import numpy as np

TRAIN_EPISODES = 0  # reset seed of training episode j: episode_seed(seed, j)
EVAL_EPISODES = 1  # reset seed of evaluation episode i: episode_seed(seed, i, EVAL_EPISODES)
EXPLORATION = 7  # the trainer's exploration noise and random warm-up actions
REPLAY_STREAMS = 11  # which env stream of a multi-env replay a batch row comes from
ACTOR_NOISE = 13  # Ray collection actor i's exploration noise: SeedSequence([seed, ACTOR_NOISE, i])


def episode_seed(seed: int, episode: int, stream: int = TRAIN_EPISODES) -> int:
    """Reset seed of episode ``episode`` of ``stream`` (:data:`TRAIN_EPISODES` or :data:`EVAL_EPISODES`).

    Every episode gets its own seed so that a resumed run can rebuild the current episode exactly,
    and evaluation uses the same fixed tracks every time, so evaluations are comparable.
    """
    return int(np.random.SeedSequence([seed, stream, episode]).generate_state(1)[0])


def rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    """The generator of named stream ``stream`` (and sub-stream ``more``, e.g. an actor's index) of run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, stream, *more]))


def replay_stream_seed(seed: int, stream: int) -> int:
    """The seed of env stream ``stream``'s own buffer in a multi-env replay (:data:`REPLAY_STREAMS` picks rows)."""
    return seed * 1000 + stream
