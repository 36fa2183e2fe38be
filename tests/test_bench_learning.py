"""bench/learning.py's bookkeeping: recipe variants are valid configs that change one choice, and a run's
budget counts running time only (a SIGSTOP pause is recorded, not charged)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from td3drive.config import Config, build_config

_spec = importlib.util.spec_from_file_location("learning_bench", Path(__file__).parent.parent / "bench/learning.py")
learning = sys.modules["learning_bench"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learning)


def _leaves(cfg: Config) -> dict[str, object]:
    return {f"{s}.{k}": v for s, sec in cfg.to_dict().items() if isinstance(sec, dict) for k, v in sec.items()}


@pytest.mark.parametrize("name", sorted(learning.VARIANTS))
def test_each_variant_is_the_default_with_only_its_keys_changed(name):
    sets = learning.VARIANTS[name]
    default, variant = _leaves(build_config()), _leaves(build_config(None, sets))
    changed = {k for k in default if default[k] != variant[k]}
    assert changed == {item.split("=")[0] for item in sets}
    cmd = learning.command(name, 3, Path("run"), eval_frames=10_000)
    assert cmd[cmd.index("--eval-freq") + 1] == "2500"  # 10,000 frames at the default action repeat 4
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"][1:] == sets  # after logging.progress=false
    assert "--config" not in cmd


def test_budget_charges_running_time_and_reports_a_stopped_gap_as_a_pause():
    b = learning.Budget(60.0, now=1000.0)
    assert b.tick(1005.0) is None and b.left == pytest.approx(55.0)
    assert b.tick(1011.0) is None and b.left == pytest.approx(49.0)  # a slow tick is still running time
    # stopped for ~10 minutes in the middle of a sleep: charged one tick, the rest is a pause
    assert b.tick(1611.0) == (1016.0, 1611.0) and b.left == pytest.approx(44.0)
    assert b.tick(1616.0) is None and b.left == pytest.approx(39.0)


def test_paused_seconds_before_each_time_come_from_pauses_csv(tmp_path):
    (tmp_path / "pauses.csv").write_text("# two pauses, by hand\n100,160\n300,310  # the second\n")
    got = learning.paused_s(tmp_path, np.array([50.0, 130.0, 200.0, 305.0, 400.0]))
    np.testing.assert_allclose(got, [0, 30, 60, 65, 70])
    np.testing.assert_allclose(learning.paused_s(tmp_path / "none", np.array([5.0])), [0])


def test_first_reaching_gives_the_frames_and_minutes_of_the_first_evaluation_at_the_level():
    c = {"frames": np.array([10_000.0, 20_000.0, 30_000.0]), "wall_s": np.array([300.0, 660.0, 1_020.0]),
         "return": np.array([-80.0, 705.0, 650.0])}
    assert learning.first_reaching(c, 700.0) == "20,000 / 11"
    assert learning.first_reaching(c, 900.0) == "not reached"


def test_an_empty_pauses_csv_means_no_pause(tmp_path):
    (tmp_path / "pauses.csv").write_text("")
    np.testing.assert_allclose(learning.paused_s(tmp_path, np.array([5.0, 9.0])), [0, 0])


def test_sb3_curve_subtracts_pauses_outside_its_evaluations_only(tmp_path):
    # wall_s already leaves the evaluations out (100-130 and 300-340 epoch s); pauses: 50-60 (training),
    # 110-120 (inside the first evaluation: already left out), 200-225 (training), 350-400 (after both).
    (tmp_path / "curve.csv").write_text("steps,frames,wall_s,return,eval_start,eval_end\n"
                                        "10,40,90.0,-80,100,130\n20,80,260.0,-50,300,340\n")
    (tmp_path / "pauses.csv").write_text("50,60\n110,120\n200,225\n350,400\n")
    c = learning.sb3_curve(tmp_path)
    np.testing.assert_allclose(c["wall_s"], [90.0 - 10, 260.0 - 10 - 25])
    np.testing.assert_allclose(c["return"], [-80, -50])


def test_sb3_curve_written_before_the_epoch_columns_reads_as_it_was(tmp_path):
    (tmp_path / "curve.csv").write_text("steps,frames,wall_s,return\n2500,10000,1507.8,-82.806\n")
    (tmp_path / "pauses.csv").write_text("0,100\n")
    np.testing.assert_allclose(learning.sb3_curve(tmp_path)["wall_s"], [1507.8])


def test_latest_at_is_what_the_run_had_shown_by_then_and_nothing_past_its_end():
    c = {"frames": np.array([10_000.0, 20_000.0, 30_000.0]), "wall_s": np.array([300.0, 660.0, 1_020.0]),
         "return": np.array([-80.0, 705.0, 650.0])}
    assert np.isnan(learning.latest_at(c, "wall_s", 200.0))  # running, not evaluated yet
    assert learning.latest_at(c, "wall_s", 600.0) == -80.0  # the 660 s evaluation had not come
    assert learning.latest_at(c, "wall_s", 660.0) == 705.0
    assert learning.latest_at(c, "frames", 30_000.0) == 650.0
    assert learning.latest_at(c, "wall_s", 1_200.0) is None  # not seen to run that long
    table = learning.side_by_side({"default 0": c})
    rows = [line for line in table.splitlines() if line.startswith("| default 0 |")]
    assert rows[0] == "| default 0 | -80.0 |" + "  |" * 7  # at 10 minutes; 20 minutes is past its end
    assert rows[1] == "| default 0 | 705.0 |" + "  |" * 6  # at 20K frames; 40K is past its end


def test_a_run_known_to_have_gone_on_answers_with_its_last_evaluation():
    c = {"frames": np.array([10_000.0, 20_000.0]), "wall_s": np.array([300.0, 660.0]),
         "return": np.array([-80.0, 705.0]), "end_wall_s": 900.0, "end_frames": 26_000.0}
    assert learning.latest_at(c, "wall_s", 900.0) == 705.0  # it ran to 900 s without another evaluation
    assert learning.latest_at(c, "wall_s", 901.0) is None
    assert learning.latest_at(c, "frames", 25_000.0) == 705.0 and learning.latest_at(c, "frames", 30_000.0) is None


def test_sb3_curve_ends_at_final_zip_on_its_own_clock(tmp_path):
    import os

    # Training began at epoch 1000 (the first evaluation started after 90 s of training, at 1090); evaluations
    # 1090-1120 and 1300-1340; a pause 1200-1225; final.zip saved at 1500. Training seconds: 500 - 30 - 40 - 25.
    (tmp_path / "curve.csv").write_text("steps,frames,wall_s,return,eval_start,eval_end\n"
                                        "10,40,90.0,-80,1090,1120\n20,80,245.0,-50,1300,1340\n")
    (tmp_path / "pauses.csv").write_text("1200,1225\n")
    (tmp_path / "final.zip").write_bytes(b"")
    os.utime(tmp_path / "final.zip", (1500, 1500))
    c = learning.sb3_curve(tmp_path)
    assert c["end_wall_s"] == pytest.approx(405.0)
    np.testing.assert_allclose(c["wall_s"], [90.0, 245.0 - 25])


def test_td3drive_curve_reads_frames_wall_clock_and_the_end_from_the_event_file(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from td3drive.core import tags

    # Log points every 100 steps (400 frames), 10 s apart from epoch 1000; evaluations of steps 200 and 400;
    # the last scalar at step 500 (epoch 1050); a pause 1015-1025 before the step-400 snapshot.
    w = SummaryWriter(str(tmp_path))
    for i in range(6):
        w.add_scalar(tags.FRAMES, 400.0 * i, 100 * i, walltime=1000.0 + 10 * i)
    w.add_scalar(tags.EVAL_MEAN_REWARD, -50.0, 200, walltime=1031.0)
    w.add_scalar(tags.EVAL_MEAN_REWARD, 720.0, 400, walltime=1049.0)
    w.close()
    (tmp_path / "pauses.csv").write_text("1015,1025\n")
    c = learning.td3drive_curve(tmp_path)
    np.testing.assert_allclose(c["frames"], [800.0, 1600.0])
    np.testing.assert_allclose(c["wall_s"], [20.0 - 5, 40.0 - 10])  # at the snapshot's step, pauses out
    np.testing.assert_allclose(c["return"], [-50.0, 720.0])
    assert c["end_wall_s"] == pytest.approx(50.0 - 10) and c["end_frames"] == 2000.0
