import json
import time

import pytest

from td3drive.timing import PHASES, PhaseClock, process_start_time, summary_line


def test_process_start_is_before_now_and_not_long_ago():
    # pytest's process started before this test and (on any sane CI) less than an hour ago.
    assert time.time() - 3600 < process_start_time() <= time.time()


def test_phases_accumulate_and_timing_json_adds_up(tmp_path):
    clock = PhaseClock()
    clock.first_step()
    startup = clock.seconds["startup"]
    assert startup > 0  # this test process started before the "first step"
    t0 = time.perf_counter()
    time.sleep(0.02)
    t0 = clock.add("env", t0)
    time.sleep(0.01)
    clock.add("update", t0)
    t0 = time.perf_counter()
    time.sleep(0.01)
    clock.add("env", t0)
    clock.first_step()  # a second call does not restart the start-up
    assert clock.seconds["startup"] == startup
    clock.last_step()
    time.sleep(0.01)
    out = clock.finish(tmp_path, steps=7, updates=3)
    assert json.loads((tmp_path / "timing.json").read_text()) == out
    assert set(out["phases_s"]) == set(PHASES)
    assert out["phases_s"]["env"] == pytest.approx(0.03, abs=0.015)
    assert out["phases_s"]["update"] == pytest.approx(0.01, abs=0.01)
    assert out["phases_s"]["end"] == pytest.approx(0.01, abs=0.01)
    # The phases and the rest make up the process's wall time, nothing counted twice.
    assert sum(out["phases_s"].values()) + out["other_s"] == pytest.approx(out["wall_s"], abs=0.01)
    assert not list(tmp_path.glob("*.tmp"))


def test_summary_line_lists_the_largest_phase_first_with_its_share():
    timing = {"wall_s": 10.0, "phases_s": {"startup": 2.0, "env": 5.0, "update": 2.5, "log": 0.01},
              "other_s": 0.49, "steps": 5000, "updates": 81}
    line = summary_line(timing)
    assert line.startswith("time 10.0 s: env 5.0 (50%), update 2.5 (25%), startup 2.0 (20%); other 0.5")
    assert "log" not in line and "(5,000 steps, 81 updates)" in line
