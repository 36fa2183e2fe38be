import numpy as np
import pytest

from td3drive import schedule
from td3drive.config import AgentConfig, TrainingConfig


def test_crossed_counts_multiples_in_the_half_open_interval():
    assert [schedule.crossed(s - 1, s, 50) for s in (49, 50, 51, 100)] == [0, 1, 0, 1]
    assert schedule.crossed(95, 105, 5) == 2  # 100 and 105: a vector step of 10 skips none
    assert schedule.crossed(0, 10**6, 0) == 0  # frequency 0: never


@pytest.mark.parametrize("train_freq,gradient_steps,expected", [(1, 1, 237), (2, 1, 119), (4, 2, 120), (50, 1, 5)])
def test_updates_over_a_run_follow_the_ratio(train_freq, gradient_steps, expected):
    t = TrainingConfig(learning_starts=64, train_freq=train_freq, gradient_steps=gradient_steps)
    total = sum(schedule.updates_due(s - 1, s, t) for s in range(1, 301))
    # steps 64..300: 237 of them; every 2nd: 119; 2 per 4th: 120; steps 100, 150, ..., 300: 5
    assert total == expected


def test_exploration_std_decays_linearly_then_holds():
    a = AgentConfig(exploration_noise=1.0, exploration_noise_final=0.1, exploration_decay_steps=1000)
    stds = [schedule.exploration_std(s, a, learning_starts=100) for s in (0, 100, 600, 1100, 5000)]
    assert stds == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])
    constant = AgentConfig(exploration_noise=0.2, exploration_noise_final=None)  # no final std: constant
    assert schedule.exploration_std(10**6, constant) == 0.2


def test_exploration_actions_random_before_learning_starts_then_noisy_policy():
    a, t = AgentConfig(exploration_noise=0.5), TrainingConfig(learning_starts=10)
    rng = np.random.default_rng(0)
    calls = []
    policy = lambda: calls.append(1) or np.full((4000, 2), 0.9)
    early = schedule.exploration_actions(rng, 5, a, t, policy, (4000, 2))
    assert not calls and early.dtype == np.float32 and abs(early.mean()) < 0.05 and early.min() >= -1
    late = schedule.exploration_actions(rng, 10, a, t, policy, (4000, 2))
    assert calls and late.max() == 1.0  # clipped to the action bounds
    # mean of clip(0.9 + N(0, 0.5), -1, 1): E = 0.9 - E[max(0.9 + e - 1, 0)] ~ 0.742
    assert late.mean() == pytest.approx(0.742, abs=0.02)


def test_every_fires_on_each_multiple_crossed_and_never_at_zero():
    from td3drive.schedule import Every

    every = Every(100)
    assert [every(s - 1, s) for s in (99, 100, 101, 200)] == [False, True, False, True]
    assert every(96, 104) and not every(100, 199)  # a vectorised step of 8 crosses 100
    assert not Every(0)(0, 10_000)
