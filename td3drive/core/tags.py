"""TensorBoard tag names: the telemetry contract shared by the trainer and the analyzer.

One place per fact (docs/ARCHITECTURE.md): the trainer writes these names and the analyzer reads them.
Names follow those of the CARLA TD3 trainer td3drive replaces (docs/ARCHITECTURE.md, "Tags"), so that its
runs can be analyzed too. This module imports nothing heavy so that ``td3drive.analysis`` can use it without torch.
"""

from __future__ import annotations


def grad_norm(group: str) -> str:
    """Tag of the L2 norm of ``group``'s gradient before clipping."""
    return f"gradients/{group}_norm"


def grad_norm_clipped(group: str) -> str:
    """Tag of the L2 norm of ``group``'s gradient after clipping."""
    return f"gradients/{group}_norm_clipped"


def is_grad_norm(tag: str) -> bool:
    """A pre-clip gradient-norm tag (of any group, also another tool's mapped onto ours)."""
    return tag.startswith("gradients/") and tag.endswith("_norm")


CRITIC_LOSS = "train/critic_loss"
ACTOR_LOSS = "train/actor_loss"
Q1 = "train/q1_value"
Q2 = "train/q2_value"
Q_PI = "train/q_pi"
TARGET_Q = "train/target_q"
TD_ERROR = "train/td_error"
# Optimizer steps skipped so far because a loss or gradient was non-finite.
SKIPPED_UPDATES = "train/skipped_updates"

EPISODE_REWARD = "train/episode_reward"
EPISODE_LENGTH = "train/episode_length"

EVAL_MEAN_REWARD = "eval/mean_reward"
EVAL_MEAN_LENGTH = "eval/mean_length"
EVAL_SUCCESS_RATE = "eval/success_rate"
# Route backends only (td3drive/metrics.py).
EVAL_ROUTE_COMPLETION = "eval/route_completion"
EVAL_COLLISIONS_PER_KM = "eval/collisions_per_km"
EVAL_LANE_INVASIONS_PER_KM = "eval/lane_invasions_per_km"
EVAL_MEAN_SPEED = "eval/mean_speed"
EVAL_DRIVING_SCORE = "eval/driving_score"
# Input ablations (td3drive/ablation.py), on the evaluations that run them: each eval/* value above under a
# condition is that tag with the condition appended (eval/mean_reward_camera_frozen,
# eval/collisions_per_km_camera_frozen, ...); the paired drop's confidence interval has tags of its own.
ABLATIONS = ("camera_frozen", "vector_neutral")


def ablated(tag: str, condition: str) -> str:
    """``eval/mean_reward`` under ``condition`` -> ``eval/mean_reward_camera_frozen``."""
    return f"{tag}_{condition}"


def drop_ci(condition: str, end: str) -> str:
    """``eval/drop_camera_frozen_ci_low`` / ``_ci_high``: the bounds of the return lost under ``condition``."""
    return f"eval/drop_{condition}_ci_{end}"

ALERT_GRAD_WARNING = "alerts/gradient_explosion_warning"
ALERT_GRAD_CRITICAL = "alerts/gradient_explosion_critical"
ALERT_Q_EXPLOSION = "alerts/q_value_explosion"
ALERT_ACTOR_DIVERGENCE = "alerts/actor_loss_divergence"
ALERT_NON_FINITE = "alerts/non_finite"
ALERTS: tuple[str, ...] = (
    ALERT_GRAD_WARNING,
    ALERT_GRAD_CRITICAL,
    ALERT_Q_EXPLOSION,
    ALERT_ACTOR_DIVERGENCE,
    ALERT_NON_FINITE,
)

def alert_name(tag: str) -> str:
    """``alerts/q_value_explosion`` -> ``q_value_explosion``."""
    return tag.split("/", 1)[1]


def env_reward(term: str) -> str:
    """Episode sum of one reward term of a backend that reports them (``info["reward_terms"]``)."""
    return f"env/reward_{term}"


ENV_STEPS_PER_S = "progress/env_steps_per_s"
UPDATES_PER_S = "progress/updates_per_s"
BUFFER_SIZE = "progress/buffer_size"
# Simulator frames so far (agent steps x action repeat, fewer at episode ends),
# the x axis published CarRacing results use; and the current exploration noise std.
FRAMES = "progress/frames"
EXPLORATION_STD = "progress/exploration_std"
# Evaluations skipped so far because a newer policy snapshot replaced them
# while the asynchronous evaluator was still busy (written when one is skipped).
EVALS_SKIPPED = "progress/evals_skipped"
# Collection on Ray actors (training.actors; td3drive/collect_ray.py), at each log point: the mean policy lag of
# the chunks received since the last one (learner updates between the weights an actor acted with and the
# learner's when the chunk arrived), the share of that wall-clock the learner spent waiting for a chunk, and, so
# far, actors restarted after they died and the open episodes lost with them.
POLICY_LAG = "collect/policy_lag"
LEARNER_WAIT = "collect/learner_wait_fraction"
ACTOR_RESTARTS = "collect/actor_restarts"
DROPPED_EPISODES = "collect/dropped_episodes"
