import json
import subprocess
import sys

import pytest

from td3drive.analysis.events import read_run
from td3drive.config import build_config
from td3drive.validate import ValidationError, parse_stages, validate


def test_parse_stages():
    assert parse_stages("5000,50000,1e6") == [5000, 50_000, 1_000_000]
    assert parse_stages(" 150 , 1_000") == [150, 1000]
    for bad, match in (("5000,5000", "strictly increasing"), ("0,10", "'0'"), ("5k", "'5k'"), ("1.5,3", "'1.5'")):
        with pytest.raises(ValidationError, match=match):
            parse_stages(bad)


def test_two_stages_on_the_tiny_task_end_to_end_then_no_go_and_resume(tmp_path, tiny_sets):
    # The constant exploration std 0.1: with the default schedule the std is still ~1 over these 300 steps,
    # the car leaves the tiny task's lane within ~9 of its 50 frames, and stage 2 fails the stage floor of
    # episode length (10) as it should; this test is about the staging machinery, so it needs stages that pass.
    cfg = build_config(sets=tiny_sets + ["agent.exploration_noise=0.1", "agent.exploration_noise_final=null"])
    lines = []
    result = validate(cfg, [150, 300], tmp_path / "v", log=lines.append)
    assert result.exit_code == 0 and [r.status for r in result.results] == ["passed", "passed"]
    summary = json.loads((tmp_path / "v/validate.json").read_text())
    assert [r["steps"] for r in summary["results"]] == [150, 300]
    assert (tmp_path / "v/validate.md").read_text().startswith("# Staged validation: GO (2/2 stages passed)")
    # Stage 2 continued stage 1 (weights, counters, replay), and its event file starts after step 150.
    assert "resumed from step_150.pt at step 150; replay restored (150 transitions)" in lines
    steps = read_run(tmp_path / "v/stage-2-300").series["train/critic_loss"].steps
    assert steps.min() > 150 and steps.max() == 300
    for stage in ("stage-1-150", "stage-2-300"):
        report = json.loads((tmp_path / f"v/{stage}/report.json").read_text())
        assert report["thresholds"]["q_abs_max"] == 1000  # the built-in stage criteria were applied

    # A stricter criteria file for stage 2: NO-GO there, exit 1, the failed criterion named.
    strict = tmp_path / "strict.yaml"
    strict.write_text("stages:\n  '150': {}\n  '300': {episode_length_min: 1000}\n")
    lines.clear()
    result = validate(cfg, [150, 300], tmp_path / "w", criteria_file=strict, log=lines.append)
    assert result.exit_code == 1 and [r.status for r in result.results] == ["passed", "NO-GO"]
    assert [c["id"] for c in result.results[1].failed_criteria] == ["episode_length_range"]
    assert any("failed episode_length_range" in line for line in lines)
    md = (tmp_path / "w/validate.md").read_text()
    assert md.startswith("# Staged validation: NO-GO at stage 2 (300 steps)") and "failed `episode_length_range`" in md

    # Resume with criteria that allow it: stage 1 is skipped, stage 2 is analyzed again, not retrained.
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("stages:\n  '150': {}\n  '300': {episode_length_min: 1}\n")
    final = tmp_path / "w/stage-2-300/checkpoints/step_300.pt"
    mtime = final.stat().st_mtime_ns
    lines.clear()
    result = validate(cfg, [150, 300], tmp_path / "w", criteria_file=lenient, resume=True, log=lines.append)
    assert result.exit_code == 0 and [r.status for r in result.results] == ["passed", "passed"]
    assert "stage 1 (150 steps): passed before, skipped" in lines
    assert "stage 2 (300 steps): already trained, analyzing again" in lines
    assert final.stat().st_mtime_ns == mtime


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "td3drive.cli", *args], capture_output=True, text=True, timeout=120)


def test_bad_validate_input_is_one_line_exit_2_and_writes_nothing(tmp_path):
    crit = tmp_path / "c.yaml"
    crit.write_text("stages:\n  '5000': {}\n")
    out_dir = tmp_path / "v"
    for args in (["--stages", "5000,100"], ["--stages", "abc"], [],
                 ["--stages", "5000,50000", "--criteria", str(crit)],  # the file has no stage 50000
                 ["--stages", "100", "--set", "guard.on_non_finite=ignore"]):
        out = run_cli("validate", "--env", "lanekeep", "--run-dir", str(out_dir), *args)
        assert out.returncode == 2 and "\n" not in out.stderr.strip() and "Traceback" not in out.stderr, (
            args,
            out.stderr,
        )
        assert not out_dir.exists(), args
    out = run_cli("validate", "--resume", str(tmp_path))
    assert out.returncode == 2 and "validate.json" in out.stderr


def test_a_guard_stop_ends_the_validation_at_that_stage(tmp_path, tiny_sets):
    cfg = build_config(sets=tiny_sets + ["agent.critic_lr=1000", "training.checkpoint_freq=32"])
    lines = []
    result = validate(cfg, [150, 300], tmp_path / "v", log=lines.append)
    assert result.exit_code == 1 and [r.status for r in result.results] == ["guard stop"]
    assert "non_finite" in result.results[0].guard_stop
    md = (tmp_path / "v/validate.md").read_text()
    assert (
        md.startswith("# Staged validation: guard stop at stage 1 (150 steps)") and "Guard: guard stopped the run" in md
    )
    assert not (tmp_path / "v/stage-2-300").exists()
