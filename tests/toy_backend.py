"""A backend written the way a new one is added: this module and one line in ``envs.BACKENDS`` (the test adds
the line). It reuses LaneKeep's env; what it shows is that its options and flag need nothing else."""

from dataclasses import dataclass

from td3drive.core.options import leaf, positive
from td3drive.envs.lanekeep import make_lanekeep

VECTOR_DIM = 2
SCENARIOS = {"toy": (0, 1)}


@dataclass(frozen=True)
class ToyOptions:
    toy_server: str = leaf("toyhost", None, "where the toy simulator runs", flag=True)
    toy_gain: float = leaf(1.0, positive(), "a made-up gain")


OPTIONS = ToyOptions


def make(cfg, training: bool = False):
    return make_lanekeep(cfg.action_repeat, cfg.max_episode_frames, cfg.blank_frame_steps)
