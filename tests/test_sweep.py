import json
import subprocess
import sys

import pytest

from td3drive.config import build_config
from td3drive.sweep import Resources, SweepError, parse_grid, parse_seeds, plan, run_sweep, settings_of, start


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0, 3,7-8") == [0, 3, 7, 8]
    for bad, match in (("3-1", "'3-1'"), ("a", "'a'"), ("-1", "'-1'"), ("0-2,2", "twice"), ("", "''")):
        with pytest.raises(SweepError, match=match):
            parse_seeds(bad)


def test_grid_and_settings():
    grid = parse_grid(["agent.max_grad_norm=5,10,null", "training.batch_size=64,256"])
    assert grid == {"agent.max_grad_norm": [5, 10, None], "training.batch_size": [64, 256]}
    settings = settings_of(grid)
    assert len(settings) == 6
    assert settings[0] == {"label": "max_grad_norm=5,batch_size=64",
                           "overrides": {"agent.max_grad_norm": 5, "training.batch_size": 64}}
    assert settings[-1]["label"] == "max_grad_norm=null,batch_size=256"
    # Same leaf name in two sections: the full key keeps the labels apart.
    assert settings_of({"agent.x": [1], "env.x": [2]})[0]["label"] == "agent.x=1,env.x=2"
    assert settings_of({}) == [{"label": "base", "overrides": {}}]
    for bad, match in ((["agent.tau"], "KEY=V1,V2"), (["training.seed=1,2"], "--seeds"),
                       (["agent.tau=0.1", "agent.tau=0.2"], "given twice"), (["agent.tau=0.1,0.1"], "twice")):
        with pytest.raises(SweepError, match=match):
            parse_grid(bad)


def test_plan_validates_every_trial_config_before_anything_runs():
    base = build_config(sets=["env.name=lanekeep"])
    spec = plan(base, parse_grid(["agent.tau=0.01,0.02"]), [0, 1], Resources(cpu=2))
    assert [t["run_dir"] for t in spec["trials"]] == ["trials/tau=0.01/seed0", "trials/tau=0.01/seed1",
                                                       "trials/tau=0.02/seed0", "trials/tau=0.02/seed1"]
    assert spec["resources"] == {"cpu": 2, "gpu": 0.0, "max_concurrent": None}
    with pytest.raises(SweepError, match="setting 'tau=2': config key 'agent.tau' = 2"):
        plan(base, parse_grid(["agent.tau=0.01,2"]), [0], Resources())
    # A grid over keys the sweep also sets per trial: a grid's eval_workers is kept; the bar is always off.
    spec = plan(base, parse_grid(["training.eval_workers=3", "logging.progress=true"]), [0], Resources(cpu=2))
    from td3drive.sweep import trial_config

    cfg = trial_config(base, spec["settings"][0]["overrides"], 0, Resources(cpu=2))
    assert cfg.training.eval_workers == 3 and cfg.training.seed == 0 and cfg.logging.progress is False
    assert trial_config(base, {}, 5, Resources(cpu=2)).training.eval_workers == 2  # 0 = one per trial CPU
    with pytest.raises(SweepError, match="two settings map to the directory"):  # a string option: CARLA's map
        plan(build_config(sets=["env.name=carla"]), {"env.carla_town": ["a/b", "a_b"]}, [0], Resources())
    with pytest.raises(SweepError, match="'env.carla_town': backend 'lanekeep' has no such option"):
        plan(base, {"env.carla_town": ["Town01"]}, [0], Resources())
    with pytest.raises(SweepError, match="training.eval_freq 0 with max_timesteps 1000000 never evaluates"):
        plan(base.replace(**{"training.eval_freq": 0}), {}, [0], Resources())
    with pytest.raises(SweepError, match="--cpus-per-trial 0"):
        plan(base, {}, [0], Resources(cpu=0))
    with pytest.raises(SweepError, match="--gpus-per-trial"):
        plan(base.replace(**{"training.device": "cuda"}), {}, [0], Resources())


def test_cli_bad_input_writes_nothing(tmp_path):
    for args, match in ((["--grid", "agent.tau=0.01,x"], "agent.tau"), (["--seeds", "4-2"], "--seeds '4-2'"),
                        (["--cpus-per-trial", "-1"], "--cpus-per-trial"), (["--num-cpus", "0"], "--num-cpus 0")):
        out = subprocess.run([sys.executable, "-m", "td3drive.cli", "sweep", "--env", "lanekeep",
                              "--run-dir", str(tmp_path / "s"), *args], capture_output=True, text=True)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and match in out.stderr, out.stderr
    assert not (tmp_path / "s").exists()


def test_no_ray_cluster_at_the_address_is_bad_input(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    out = subprocess.run([sys.executable, "-m", "td3drive.cli", "sweep", "--env", "lanekeep", "--address", "auto",
                          "--run-dir", str(tmp_path / "s")], capture_output=True, text=True)
    assert out.returncode == 2 and "td3drive sweep: --address auto: cannot start or reach Ray" in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("td3drive sweep: --address auto")
    assert not (tmp_path / "s").exists()


def test_2x2_sweep_on_local_ray_guard_stop_crash_and_resume(tmp_path, tiny_sets):
    pytest.importorskip("ray")
    # Setting "stop" turns the guard's Q alert (threshold 1e-6: the first update trips it) into a stop.
    base = build_config(sets=tiny_sets + ["training.max_timesteps=200", "training.eval_freq=100",
                                          "training.num_eval_episodes=2", "training.eval_async=false",
                                          "guard.q_abs_max=1e-6"])
    spec = plan(base, parse_grid(["guard.on_q_value_explosion=warn,stop"]), [0, 1], Resources(cpu=1))
    root = start(base, spec, tmp_path / "sweep")  # run_sweep would create it; here a file is planted first
    # One trial crashes: its run directory holds a corrupt checkpoint that it tries to resume from.
    corrupt = root / "trials/on_q_value_explosion=warn/seed1/checkpoints/latest.pt"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not a checkpoint")
    lines = []
    result = run_sweep(base, spec, root, num_cpus=2, log=lines.append)
    assert result.statuses == {
        "on_q_value_explosion=warn/seed0": "finished",
        "on_q_value_explosion=warn/seed1": "crashed",
        "on_q_value_explosion=stop/seed0": "guard stop",
        "on_q_value_explosion=stop/seed1": "guard stop",
    }
    assert result.exit_code == 1 and "trial on_q_value_explosion=warn/seed1: crashed" in lines
    # What Tune saw: the guard stops are results (no error), reported with their verdict; the crash is an error.
    tune = result.tune
    assert not tune["on_q_value_explosion=stop/seed0"]["error"] and tune["on_q_value_explosion=warn/seed1"]["error"]
    stopped = tune["on_q_value_explosion=stop/seed0"]["metrics"]
    assert (
        stopped["status"] == "guard stop"
        and stopped["verdict"] == "NO-GO"
        and "q_value_explosion" in stopped["guard_stop"]
    )
    finished = tune["on_q_value_explosion=warn/seed0"]["metrics"]
    assert finished["status"] == "finished" and finished["env_steps"] == 200
    info = json.loads((root / "trials/on_q_value_explosion=warn/seed1/trial.json").read_text())
    assert info["status"] == "crashed" and "CheckpointError" in info["error"]
    # Each trial is a normal run directory with its report; the sweep report is written.
    for name in ("on_q_value_explosion=warn/seed0", "on_q_value_explosion=stop/seed1"):
        assert (root / "trials" / name / "report.json").exists() and (root / "trials" / name / "config.yaml").exists()
    md = (root / "sweep_report.md").read_text()
    assert "| `on_q_value_explosion=warn` | 1/2 |" in md and "crashed (CheckpointError" in md

    # Resume after fixing the cause: the crashed trial runs again, the others are kept as they were.
    corrupt.unlink()
    kept = root / "trials/on_q_value_explosion=warn/seed0/trial.json"
    before = kept.stat().st_mtime_ns
    result = run_sweep(base, spec, root, num_cpus=2, resume=True, log=lines.append)
    assert result.exit_code == 0 and result.statuses["on_q_value_explosion=warn/seed1"] == "finished"
    assert kept.stat().st_mtime_ns == before
    assert any(line.startswith("resuming the Tune experiment") for line in lines)
    report = json.loads((root / "sweep_report.json").read_text())
    assert [s["used"] for s in report["settings"]] == [2, 0]  # the guard stopped before any evaluation
    # The final value read back from the event file (float32) is the one the trial reported to Tune.
    assert report["trials"][1]["final"] == pytest.approx(
        result.tune["on_q_value_explosion=warn/seed1"]["metrics"]["eval_return"]
    )


def test_ray_is_imported_only_when_a_sweep_runs():
    code = ("import sys; from td3drive import cli, sweep; from td3drive.analysis import sweep_report; "
            "cli.build_parser().parse_args(['sweep', '--grid', 'agent.tau=0.01,0.02']); "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
