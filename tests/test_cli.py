import json
import subprocess
import sys

import numpy as np
import pytest

from td3drive.cli import main
from tests.synthetic import healthy, reference_failure


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "td3drive.cli", *args], capture_output=True, text=True)


def test_train_carracing_end_to_end_then_eval_and_analyze(tmp_path):
    run = tmp_path / "cr"
    code = main(
        [
            "train",
            "--max-timesteps",
            "300",
            "--eval-freq",
            "300",
            "--checkpoint-freq",
            "300",
            "--scenario",
            "0",
            "--run-dir",
            str(run),
            "--set",
            "training.learning_starts=100",
            "--set",
            "training.train_freq=50",
            "--set",
            "training.batch_size=32",
            "--set",
            "training.num_eval_episodes=1",
            "--set",
            "env.max_episode_frames=150",
            "--set",
            "logging.log_freq=50",
            "--set",
            "logging.progress=false",
        ]
    )
    assert code == 0
    assert (run / "config.yaml").is_file() and (run / "checkpoints/step_300.pt").is_file()
    assert (run / "checkpoints/latest.pt").resolve().name == "step_300.pt"
    assert list(run.glob("events.out.tfevents.*"))
    from td3drive.analysis.events import read_run

    found = set(read_run(run).tags)
    assert {"train/critic_loss", "train/actor_loss", "gradients/critic_cnn_norm", "gradients/critic_cnn_norm_clipped",
            "train/episode_reward", "eval/mean_reward", "progress/env_steps_per_s"} <= found
    out = run_cli("eval", str(run), "--episodes", "1", "--video", str(tmp_path / "ep.gif"))
    assert out.returncode == 0, out.stderr
    assert "return:" in out.stdout and (tmp_path / "ep.gif").stat().st_size > 1000
    from PIL import Image

    gif = Image.open(tmp_path / "ep.gif")
    # the simulator's 96x96 view and the 84x84 input, each x2, 4 px apart; 4 frames per step at 50 fps
    assert gif.size == (2 * 96 + 4 + 2 * 84, 192) and gif.info["duration"] == 80
    assert main(["analyze", str(run), "-o", str(tmp_path / "r.json")]) in (0, 1)
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "td3drive.report/1"


@pytest.mark.parametrize("args, words", [
    (["--set", "agent.tau=5"], ["agent.tau", "5", "(0, 1]"]),
    (["--set", "agent.nope=1"], ["unknown config key 'agent.nope'"]),
    (["--scenario", "3"], ["env.scenario", "3", "allows 0"]),
    (["--env", "gta"], ["env.name", "gta", "'carracing', 'lanekeep'"]),
    (["--seed", "x"], ["--seed", "invalid int value"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
    (["--device", "tpu"], ["training.device", "tpu"]),
    (["--config", "/no/such.yaml"], ["/no/such.yaml", "cannot be read"]),
    (["--set", "training.buffer_size=100000000", "--max-timesteps", "100000000"], ["needs", "GiB", "available"]),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, words):
    run = tmp_path / "never"
    out = run_cli("train", "--run-dir", str(run), *args)
    assert out.returncode == 2
    msg = out.stderr.strip()
    assert "\n" not in msg and "Traceback" not in msg, msg
    for w in words:
        assert w in msg, msg
    assert not run.exists()


def test_resume_of_a_non_run_and_used_run_dir_are_bad_input(tmp_path):
    assert run_cli("train", "--resume", str(tmp_path)).returncode == 2
    (tmp_path / "x").write_text("busy")
    out = run_cli("train", "--run-dir", str(tmp_path))
    assert out.returncode == 2 and "already holds files" in out.stderr


def test_analyze_exit_codes_and_formats(tmp_path):
    bad = reference_failure(tmp_path / "bad")
    good = healthy(tmp_path / "good", config="agent:\n  max_grad_norm: 10.0\n")
    out = run_cli("analyze", str(bad))
    assert out.returncode == 1 and "**Verdict: NO-GO**" in out.stdout
    assert run_cli("analyze", str(good)).returncode == 0
    out = run_cli(
        "analyze",
        str(good),
        "--format",
        "html",
        "-o",
        str(tmp_path / "r.html"),
        "--csv",
        str(tmp_path / "s.csv"),
        "--parquet",
        str(tmp_path / "s.parquet"),
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    import pandas as pd

    df = pd.read_csv(tmp_path / "s.csv")
    assert list(df.columns) == ["tag", "step", "wall_time", "value"]
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == len(df)


def test_analyze_strict_and_bad_input(tmp_path):
    import numpy as np

    from tests.synthetic import write_run

    warn = write_run(tmp_path / "w", {"train/episode_reward": (np.arange(10), np.arange(10.0))})
    assert run_cli("analyze", str(warn)).returncode == 0
    assert run_cli("analyze", str(warn), "--strict").returncode == 1
    crit = tmp_path / "c.yaml"
    crit.write_text("stages:\n  '5000': {q_abs_max: 100}\n")  # a stage the file does not name is an error
    for args in (["analyze", str(tmp_path / "missing")], ["analyze", str(warn), "--format", "pdf"],
                 ["analyze", str(warn), "-o", str(tmp_path / "no/dir/r.md")],
                 ["analyze", str(warn), "--criteria", str(crit), "--stage", "50000"]):
        out = run_cli(*args)
        assert out.returncode == 2 and "\n" not in out.stderr.strip() and "Traceback" not in out.stderr, (
            args,
            out.stderr,
        )


def test_compare_shows_changes_and_findings(tmp_path):
    bad = reference_failure(tmp_path / "bad")
    good = healthy(tmp_path / "good")
    out = run_cli("compare", str(bad), str(good), "--format", "json")
    assert out.returncode == 0, out.stderr
    c = json.loads(out.stdout)
    assert c["verdict_a"] == "NO-GO" and c["verdict_b"] in ("GO", "GO WITH WARNINGS")
    resolved = {f["id"] for f in c["findings_resolved"]}
    assert {"actor_loss_divergence", "critic_exploitation", "dead_network"} <= resolved
    row = {r["tag"]: r for r in c["metrics"]}["train/q1_value"]
    assert row["ratio"] == pytest.approx(row["b_final"] / row["a_final"])
    md = run_cli("compare", str(bad), str(good)).stdout
    assert "## Findings resolved in B" in md


def test_resume_from_a_corrupt_checkpoint_is_bad_input_and_does_not_hang(tmp_path):
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("env:\n  name: lanekeep\ntraining:\n  eval_freq: 100\n")
    (run / "checkpoints/latest.pt").write_bytes(b"not a checkpoint")
    out = subprocess.run([sys.executable, "-m", "td3drive.cli", "train", "--resume", str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cannot be loaded" in out.stderr and "\n" not in out.stderr.strip()


def test_cli_resume_extends_a_run(tmp_path):
    run = tmp_path / "r"
    base = ["--set", "logging.progress=false", "--set", "training.eval_freq=0", "--set", "training.learning_starts=50",
            "--set", "training.batch_size=16", "--set", "agent.features_dim=32", "--set", "agent.hidden_dim=16"]
    assert main(["train", "--env", "lanekeep", "--max-timesteps", "100", "--run-dir", str(run), *base]) == 0
    out = run_cli("train", "--resume", str(run), "--max-timesteps", "150")
    assert out.returncode == 0, out.stderr
    assert "resumed from step_100.pt at step 100" in out.stderr
    assert (run / "checkpoints/latest.pt").resolve().name == "step_150.pt"
    assert "max_timesteps: 150" in (run / "config.yaml").read_text()


def _one_line_exit_2(out, *words):
    msg = out.stderr.strip()
    assert out.returncode == 2 and "\n" not in msg and "Traceback" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_garbage_inputs_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    _one_line_exit_2(run_cli("train", "--config", str(tmp_path / "bin.yaml")), "bin.yaml", "not a text file")
    (tmp_path / "afile").write_text("x")
    _one_line_exit_2(run_cli("train", "--run-dir", str(tmp_path / "afile")), "afile", "is a file")
    # analyze on a text file, random bytes named like an event file, an empty event file: nothing readable
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "rand").mkdir()
    (tmp_path / "rand/events.out.tfevents.1").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/events.out.tfevents.1").write_bytes(b"")
    for target in ("notes.txt", "rand", "empty"):
        _one_line_exit_2(run_cli("analyze", str(tmp_path / target)), "no readable scalar")
    good = healthy(tmp_path / "good")
    _one_line_exit_2(run_cli("analyze", str(good), "-o", str(tmp_path)), "is a directory")


def test_eval_checks_the_video_directory_first_and_refuses_fake_checkpoints(tmp_path):
    import torch

    torch.save({"agent": {"actor": 1}, "config": {}, "counters": {"step": 3}}, tmp_path / "fake.pt")
    _one_line_exit_2(run_cli("eval", str(tmp_path / "fake.pt")), "fake.pt")
    _one_line_exit_2(run_cli("eval", str(tmp_path / "fake.pt"), "--video", str(tmp_path / "no/dir/v.gif")),
                     "does not exist")


def test_resume_refuses_keys_it_cannot_change_and_restarts_a_run_without_checkpoint(tmp_path):
    run = tmp_path / "r"
    base = ["--set", "logging.progress=false", "--set", "training.eval_freq=0", "--set", "training.learning_starts=50",
            "--set", "training.batch_size=16", "--set", "agent.features_dim=32", "--set", "agent.hidden_dim=16"]
    assert main(["train", "--env", "lanekeep", "--max-timesteps", "60", "--run-dir", str(run), *base]) == 0
    before = (run / "config.yaml").stat().st_mtime_ns
    _one_line_exit_2(
        run_cli("train", "--resume", str(run), "--set", "agent.hidden_dim=32"), "agent.hidden_dim: 16 -> 32"
    )
    _one_line_exit_2(run_cli("train", "--resume", str(run), "--set", "env.name=carracing"), "env.name")
    assert (run / "config.yaml").stat().st_mtime_ns == before  # refused: nothing rewritten
    # Killed after config.yaml, before the first checkpoint: --resume starts it over with its config.
    import shutil

    shutil.rmtree(run / "checkpoints")
    out = run_cli("train", "--resume", str(run))
    assert out.returncode == 0, out.stderr
    assert "no checkpoint yet; starting it from step 0" in out.stderr
    assert (run / "checkpoints/latest.pt").resolve().name == "step_60.pt"


def test_video_frame_puts_the_simulator_view_beside_the_agent_input():
    from td3drive.video import video_frame

    agent_input = np.arange(84 * 84, dtype=np.uint32).reshape(84, 84).astype(np.uint8)
    rgb = np.zeros((96, 96, 3), np.uint8)
    rgb[..., 0] = 200
    f = video_frame(agent_input, rgb)
    assert f.shape == (192, 196 + 168, 3) and f.dtype == np.uint8
    assert (f[:, :192, 0] == 200).all() and (f[:, 192:196] == 0).all()
    np.testing.assert_array_equal(f[0:168:2, 196::2, 1], agent_input)  # grey input, pixel-repeated x2
    assert video_frame(agent_input, None).shape == (168, 168, 3)  # no simulator view: the input alone


def test_every_exit_code_key_names_an_exception_class_that_exists():
    """EXIT_CODES is keyed by 'module.Class' strings (nothing heavy imported to catch them): a class that moved
    would silently fall back to a traceback, so each key must resolve to an exception class under that name."""
    import importlib

    from td3drive.cli import EXIT_CODES

    for key in EXIT_CODES:
        module, _, name = key.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == module, key


def test_the_cli_bounds_openmp_spinning_unless_the_user_set_it():
    import subprocess
    import sys

    code = "import os, td3drive.cli; print(os.environ['GOMP_SPINCOUNT'])"
    env = {k: v for k, v in __import__("os").environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "10000"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "GOMP_SPINCOUNT": "7"}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "7"
