"""Which collector a run uses, and the interface the trainer drives them through.

In-process: :class:`td3drive.collect.Collector` (one env) or :class:`~td3drive.collect.VectorCollector`
(``training.num_envs`` env processes); on Ray: :class:`td3drive.collect_ray.RayCollector`
(``training.actors``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from td3drive.collect import Collector, Counters, EpisodeEnd, VectorCollector

if TYPE_CHECKING:
    from td3drive.config import Config


class Collecting(Protocol):
    """A collector: ``send`` starts the next env step(s) (or, when it ``acts_itself``, takes the next chunk of
    actor transitions), the trainer runs that step's updates, ``receive`` stores what the step produced in
    ``buffer`` and returns the episodes it ended."""

    acts_itself: bool  # it chooses its actions (Ray actors); the trainer then passes none to send()
    buffer: Any  # the replay the trainer samples (ReplayBuffer or VectorReplay)
    obs: dict[str, np.ndarray]  # the current observation(s): what the trainer acts on and a checkpoint checksums

    def reset(self) -> None: ...

    def restore(self, actions: np.ndarray, checksum: int) -> bool:
        """Resume: replay the open episode's ``actions``; True when the observation matches ``checksum``."""
        ...

    def send(self, actions: np.ndarray | None = None) -> None: ...

    def receive(self) -> list[EpisodeEnd]: ...

    def log_values(self) -> dict[str, float]: ...

    def close(self) -> None: ...


def make_collector(cfg: Config, counters: Counters, capacity: int, vector_dim: int,
                   log: Callable[[str], None] = print) -> Collecting:
    """The collector ``training.actors`` / ``training.num_envs`` ask for; ``capacity``: replay transitions."""
    if cfg.training.actors:
        from td3drive.collect_ray import RayCollector  # Ray is an extra: imported only when asked for

        return RayCollector(cfg, counters, capacity, vector_dim, log)
    cls = Collector if cfg.training.num_envs == 1 else VectorCollector
    return cls(cfg, counters, capacity, vector_dim)
