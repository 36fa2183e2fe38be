import os

from td3drive import checkpoint
from td3drive.config import GuardConfig
from td3drive.core import tags
from td3drive.guard import Alert, Guard
from td3drive.last_good import LastGood

ALERT = Alert(tags.ALERT_Q_EXPLOSION, 30, "q_value_explosion at step 30: |Q1| = 2e4 > 1e4", stop=False)


def save(run, step):
    return checkpoint.save_step(run, step, {"agent": {}, "config": {}, "counters": {"step": step}})


def test_a_checkpoint_is_good_once_a_later_update_raised_nothing(tmp_path):
    lines: list[str] = []
    lg = LastGood(tmp_path, lines.append)
    lg.written(save(tmp_path, 10), updates_before=0)  # before any update: good at once
    lg.written(save(tmp_path, 20), updates_before=5)  # after updates: unverified
    assert lg.good.name == "step_10.pt" and lg.unverified.name == "step_20.pt"
    lg.after_update([], step=21)  # an update after it raised nothing: it measured those weights
    assert lg.good.name == "step_20.pt" and lg.unverified is None
    lg.written(save(tmp_path, 30), updates_before=9)
    lg.after_update([ALERT], step=30)  # the first alert keeps the newest good one, not step_30
    kept = tmp_path / "checkpoints" / checkpoint.LAST_GOOD
    assert os.path.samefile(kept, tmp_path / "checkpoints/step_20.pt") and lg.kept
    assert lines == ["last good state: step_20.pt kept as checkpoints/last_good.pt"]
    lg.after_update([ALERT], step=31)  # later alerts keep nothing more
    assert len(lines) == 1


def test_no_good_checkpoint_before_the_first_alert_is_said(tmp_path):
    lines: list[str] = []
    lg = LastGood(tmp_path, lines.append)
    lg.written(save(tmp_path, 10), updates_before=3)
    lg.after_update([ALERT], step=12)
    assert "no good checkpoint before the first alert (step 12)" in lines[0]
    assert not (tmp_path / "checkpoints" / checkpoint.LAST_GOOD).exists()


def test_a_guard_stop_points_latest_back_at_the_last_good_state(tmp_path):
    lines: list[str] = []
    lg = LastGood(tmp_path, lines.append)
    lg.written(save(tmp_path, 10), updates_before=0)
    lg.written(save(tmp_path, 20), updates_before=5)
    guard = Guard(GuardConfig())
    alerts = guard.check({tags.CRITIC_LOSS: float("nan")}, step=21)  # non_finite: stops by default
    lg.after_update(alerts, step=21)
    message = lg.guard_stop(guard)
    assert message.startswith("guard stopped the run: non_finite at step 21")
    assert os.readlink(tmp_path / "checkpoints" / checkpoint.LATEST) == "step_10.pt"
    assert checkpoint.load(tmp_path / "checkpoints" / checkpoint.LATEST)["counters"]["step"] == 10
