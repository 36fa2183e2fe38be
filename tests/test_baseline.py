import math

import numpy as np
import pytest

from td3drive.baseline import VEHICLES, PIDPurePursuit
from td3drive.config import build_config
from td3drive.core import tags


def vector(speed_mps, points):
    v = np.zeros(13)
    v[0] = speed_mps / 30.0
    v[3:13] = np.asarray(points, float).ravel() / 10.0
    return v


def test_pure_pursuit_geometry_by_hand():
    c = PIDPurePursuit(VEHICLES["highway"], target_speed=20.0, dt=0.2, lookahead_time=0.5)
    straight = vector(20.0, [(5 * i, 0.0) for i in range(1, 6)])
    assert c.steer(straight[None])[0] == 0.0
    # At 20 m/s the look-ahead is 10 m: the second point. It is 1 m to the left at 10 m ahead:
    # alpha = atan2(1, 10), ld = sqrt(101), delta = atan(2 * 5 * sin(alpha) / ld); steer left is negative.
    left = vector(20.0, [(5, 0.25), (10, 1.0), (15, 2.25), (20, 4.0), (25, 6.25)])
    alpha, ld = math.atan2(1, 10), math.sqrt(101)
    expected = -math.atan(2 * 5 * math.sin(alpha) / ld) / (math.pi / 4)
    assert c.steer(left[None])[0] == pytest.approx(expected)
    mirrored = vector(20.0, [(x, -y) for x, y in [(5, 0.25), (10, 1.0), (15, 2.25), (20, 4.0), (25, 6.25)]])
    assert c.steer(mirrored[None])[0] == pytest.approx(-expected)


def test_pid_speed_control_by_hand():
    c = PIDPurePursuit(VEHICLES["highway"], target_speed=20.0, dt=0.2, kp=0.5, ki=0.05)
    # 4 m/s below target: accel = 0.5 * 4 + 0.05 * (4 * 0.2) = 2.04 m/s^2 -> 2.04 / 5 of full throttle.
    assert c.throttle(vector(16.0, np.zeros((5, 2)))[None])[0] == pytest.approx(2.04 / 5)
    c = PIDPurePursuit(VEHICLES["highway"], target_speed=20.0, dt=0.2)
    assert c.throttle(vector(40.0, np.zeros((5, 2)))[None])[0] == -1.0  # far too fast: full brake


def test_baseline_drives_the_light_highway_route_and_compare_reads_it(tmp_path, monkeypatch):
    pytest.importorskip("highway_env", reason='the highway extra is not installed (pip install -e ".[highway]")')
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    from td3drive.analysis.compare import compare
    from td3drive.baseline import run_baseline

    cfg = build_config(sets=["env.name=highway", "env.scenario=0", "env.route_length_m=300"])
    result = run_baseline(cfg, tmp_path / "bl", episodes=2, workers=1)
    d = result.driving
    assert result.success_rate == 1.0 and d[tags.EVAL_ROUTE_COMPLETION] == 100.0
    assert d[tags.EVAL_COLLISIONS_PER_KM] == 0.0 and d[tags.EVAL_MEAN_SPEED] == pytest.approx(20.0, abs=1.0)
    rows = {row["tag"]: row for row in compare(tmp_path / "bl", tmp_path / "bl")["metrics"]}
    assert rows[tags.EVAL_DRIVING_SCORE]["a_final"] == pytest.approx(100.0)


def test_baseline_cli_bad_input_is_one_line_exit_2(tmp_path):
    import subprocess
    import sys

    for args in (
        ["--env", "carracing"],
        ["--env", "highway", "--scenario", "3"],
        ["--env", "racetrack", "--episodes", "0"],
    ):
        out = subprocess.run(
            [sys.executable, "-m", "td3drive.cli", "baseline", "--run-dir", str(tmp_path / "b"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
        assert not (tmp_path / "b").exists()
