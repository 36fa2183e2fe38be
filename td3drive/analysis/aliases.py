"""Map other tools' tag names onto td3drive's (``td3drive.core.tags``) so the same rules apply.

An alias is used only when the run did not log our own tag; the original series stays in the
summary under its own name either way.
"""

from __future__ import annotations

from td3drive.analysis.events import Series
from td3drive.core import tags

# other tool's tag -> our tag, in order of preference
ALIASES: dict[str, str] = {
    # Stable-Baselines3 (train/actor_loss and train/critic_loss are already ours)
    "rollout/ep_rew_mean": tags.EPISODE_REWARD,
    "rollout/ep_len_mean": tags.EPISODE_LENGTH,
    # CleanRL td3_continuous_action.py / ddpg
    "losses/qf1_values": tags.Q1,
    "losses/qf2_values": tags.Q2,
    "losses/qf_loss": tags.CRITIC_LOSS,
    "losses/qf1_loss": tags.CRITIC_LOSS,
    "losses/actor_loss": tags.ACTOR_LOSS,
    "charts/episodic_return": tags.EPISODE_REWARD,
    "charts/episodic_length": tags.EPISODE_LENGTH,
}


def canonical(series: dict[str, Series]) -> tuple[dict[str, Series], dict[str, str]]:
    """The series renamed to our tag names where an alias applies (the source name is dropped so no
    rule counts a series twice); returns (series, {our_tag: source_tag})."""
    out = dict(series)
    used: dict[str, str] = {}
    for theirs, ours in ALIASES.items():
        if theirs in out and ours not in out:
            out[ours] = out.pop(theirs)
            used[ours] = theirs
    return out, used
