"""Input reliance: how much of a policy's return each of its inputs carries, measured by ablation.

One checkpoint is evaluated on the same evaluation seeds (the same tracks, the same traffic) three ways:

- ``given``: the observation as the env gives it;
- ``camera_frozen``: every step sees the episode's first observation's frames (the reset's frame stack), the
  ego vector as given: what the policy earns without looking;
- ``vector_neutral``: the camera as given, the ego vector replaced by its mean over the ``given`` run's steps.

Why the mean and not zeros: zeros are a state the car is never in (on CarRacing's full vector: on the centre
line, aligned, every waypoint under the car; on the proprio vector: standing still with the wheels locked), so
a drop under zeros mixes "the policy uses the vector" with "the policy is thrown by an impossible input". The
mean over the policy's own evaluation states removes what the vector says about *this* moment and keeps it on
the data's scale (a mean ablation). The episodes being paired (same seed, same start), each drop is the mean
of per-episode differences, with a paired percentile-bootstrap confidence interval.

Whether that makes an input unused, barely used or used is :mod:`td3drive.analysis.reliance`'s rule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import gymnasium as gym

from td3drive.analysis.reliance import CONFIDENCE, Drop, camera_verdict, paired_drop_ci
from td3drive.core import tags
from td3drive.evaluate import EvalResult, Policy, evaluate

if TYPE_CHECKING:
    from td3drive.config import Config

CONDITIONS = tags.ABLATIONS
DESCRIPTIONS = {
    "given": "inputs as given",
    "camera_frozen": "camera frozen (every step sees the episode's first frames)",
    "vector_neutral": "ego vector neutralised (its mean over the normal run's steps)",
}


@dataclass(frozen=True)
class Ablation:
    """The three evaluations of one policy on the same seeds, and the drops (``vector_neutral`` absent for a
    policy that does not read the vector)."""

    given: EvalResult
    ablated: dict[str, EvalResult] = field(default_factory=dict)

    @cached_property
    def drops(self) -> dict[str, Drop]:
        """Each ablated condition's drop, bootstrapped once (the table, the verdict and the tags all read it)."""
        return {name: Drop(*paired_drop_ci(self.given.returns, r.returns)) for name, r in self.ablated.items()}

    def drop(self, condition: str) -> Drop:
        return self.drops[condition]

    @property
    def camera_carries(self) -> bool:
        """Freezing the camera costs a material share of the return (:meth:`Drop.carries`)."""
        return self.drop("camera_frozen").carries(self.given.mean_reward)

    def lines(self) -> list[str]:
        """The printed table: each condition's return with its spread, each drop with its interval."""
        out = [f"{DESCRIPTIONS['given']:<64} return {self.given.mean_reward:8.1f} ± {self.given.returns.std():6.1f}"]
        for name, result in self.ablated.items():
            d = self.drop(name)
            out.append(f"{DESCRIPTIONS[name]:<64} return {result.mean_reward:8.1f} ± {result.returns.std():6.1f}"
                       f"   drop {d.mean:8.1f} ({CONFIDENCE:.0%} CI {d.low:.1f} to {d.high:.1f})")
        return out

    def verdict(self) -> str:
        """One line: whether the policy uses its camera (and its vector)."""
        return camera_verdict(self.given.mean_reward, self.ablated["camera_frozen"].mean_reward,
                              self.drop("camera_frozen"), self.drop("vector_neutral") if "vector_neutral" in
                              self.ablated else None)

    def scalars(self) -> dict[str, float]:
        """The eval/* tags of :mod:`td3drive.core.tags` for the ablated conditions."""
        out: dict[str, float] = {}
        for name, result in self.ablated.items():
            d = self.drop(name)
            values = {tags.EVAL_MEAN_REWARD: result.mean_reward, **(result.driving or {})}
            out.update({tags.ablated(tag, name): v for tag, v in values.items()})
            out[tags.drop_ci(name, "low")], out[tags.drop_ci(name, "high")] = d.low, d.high
        return out


def ablate(envs: gym.vector.VectorEnv, policy: Policy, seed: int, episodes: int, uses_vector: bool = True,
           given: EvalResult | None = None) -> Ablation:
    """Evaluate ``policy`` with its inputs as given (unless ``given``, that evaluation, is passed), with the
    camera frozen and, for a policy that reads the vector (``uses_vector``), with the vector neutralised; all on
    the evaluation seeds of :func:`td3drive.evaluate.evaluate`."""
    if given is None or given.vector_mean is None:
        given = evaluate(envs, policy, seed, episodes)
    ablated = {"camera_frozen": evaluate(envs, policy, seed, episodes, camera_frozen=True)}
    if uses_vector:
        ablated["vector_neutral"] = evaluate(envs, policy, seed, episodes, vector_fill=given.vector_mean)
    return Ablation(given, ablated)


def with_ablations(envs: gym.vector.VectorEnv, policy: Policy, cfg: Config, given: EvalResult) -> EvalResult:
    """``given`` (the normal evaluation of ``policy``) with :mod:`td3drive.ablation`'s conditions run on the
    same seeds and attached as ``ablated``."""
    a = ablate(envs, policy, cfg.training.seed, len(given.returns), cfg.agent.use_vector, given)
    return dataclasses.replace(given, ablated=a.ablated)


def evaluate_for_training(envs: gym.vector.VectorEnv, policy: Policy, cfg: Config, ablate: bool) -> EvalResult:
    """One training evaluation (``training.num_eval_episodes`` on the evaluation seeds), with the input ablations
    when ``ablate``: what both evaluators run."""
    result = evaluate(envs, policy, cfg.training.seed, cfg.training.num_eval_episodes)
    return with_ablations(envs, policy, cfg, result) if ablate else result
