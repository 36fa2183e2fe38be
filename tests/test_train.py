import signal

import numpy as np
import pytest
import torch

from td3drive.config import build_config
from td3drive.core import tags
from td3drive.envs import make_env
from td3drive.evaluate import evaluate, make_eval_envs
from td3drive.train import Trainer, train


def cfg_with(tiny_sets, *extra):
    return build_config(sets=tiny_sets + list(extra))


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, tiny_sets):
    # Checkpoint mid-episode (episodes are 50 steps; 130 is not a multiple), with saved replay.
    sets = ["training.max_timesteps=200", "training.checkpoint_freq=130", "training.save_replay=true"]
    full = Trainer(cfg_with(tiny_sets, *sets), tmp_path / "full")
    full.train()

    part_cfg = cfg_with(tiny_sets, *sets).replace(**{"training.max_timesteps": 130})
    Trainer(part_cfg, tmp_path / "part").train()
    resumed = Trainer(cfg_with(tiny_sets, *sets), tmp_path / "part", resume=True)
    assert resumed.c.step == 130 and resumed.c.episode_length > 0  # mid-episode
    resumed.train()

    assert resumed.agent.total_it == full.agent.total_it > 0
    for name in ("actor", "critic", "actor_target", "critic_target"):
        for a, b in zip(getattr(full.agent, name).parameters(), getattr(resumed.agent, name).parameters()):
            assert torch.equal(a, b), name
    obs = full.obs
    np.testing.assert_array_equal(full.obs["image"], resumed.obs["image"])
    np.testing.assert_array_equal(full._behaviour_actions((2,)), resumed._behaviour_actions((2,)))
    np.testing.assert_array_equal(
        full.agent.act(obs["image"], obs["vector"]), resumed.agent.act(obs["image"], obs["vector"])
    )


def _stop_by_signal_at(trainer: Trainer, step: int, signum: int = signal.SIGINT) -> Trainer:
    """Deliver ``signum`` to the trainer's handler once it has taken ``step`` env steps (as a Ctrl-C would)."""
    take = trainer.step

    def step_then_signal() -> None:
        take()
        if trainer.c.step == step:
            trainer._handle_signal(signum, None)

    trainer.step = step_then_signal
    return trainer


@pytest.mark.parametrize("checkpoint_freq", [130, 0], ids=["checkpoint-at-stop", "no-checkpoint-at-stop"])
def test_run_ended_by_a_signal_resumes_bit_identically_without_save_replay(tmp_path, tiny_sets, checkpoint_freq):
    # training.save_replay stays false: the signal alone saves the replay beside the final checkpoint.
    sets = ["training.max_timesteps=200", f"training.checkpoint_freq={checkpoint_freq}"]
    full = Trainer(cfg_with(tiny_sets, *sets), tmp_path / "full")
    full.train()

    lines: list[str] = []
    stopped = _stop_by_signal_at(Trainer(cfg_with(tiny_sets, *sets), tmp_path / "part", log=lines.append), 130)
    result = stopped.train()
    assert result.steps == 130 and result.exit_code == 130  # SIGINT's exit code
    assert any("saving the replay" in line for line in lines)
    assert (tmp_path / "part/checkpoints/replay_step_130.pt").is_file()

    lines.clear()
    resumed = Trainer(cfg_with(tiny_sets, *sets), tmp_path / "part", resume=True, log=lines.append)
    assert len(resumed.buffer) == len(stopped.buffer) > 0
    assert any("replay restored" in line for line in lines)
    resumed.train()
    assert resumed.agent.total_it == full.agent.total_it > 0
    for a, b in zip(full.agent.critic.parameters(), resumed.agent.critic.parameters()):
        assert torch.equal(a, b)
    # the next checkpoint (the resumed run's last) removes the replay file: it is large
    assert not (tmp_path / "part/checkpoints/replay_step_130.pt").exists()


def test_replay_on_stop_false_leaves_no_replay(tmp_path, tiny_sets):
    cfg = cfg_with(tiny_sets, "training.max_timesteps=200", "training.replay_on_stop=false")
    _stop_by_signal_at(Trainer(cfg, tmp_path / "r", log=lambda line: None), 80, signal.SIGTERM).train()
    assert (tmp_path / "r/checkpoints/step_80.pt").is_file()
    assert not list((tmp_path / "r/checkpoints").glob("replay_step_*"))
    assert len(Trainer(cfg, tmp_path / "r", resume=True, log=lambda line: None).buffer) == 0


def test_resume_without_saved_replay_says_so_and_continues(tmp_path, tiny_sets):
    cfg = cfg_with(tiny_sets, "training.max_timesteps=100", "training.checkpoint_freq=100")
    train(cfg, tmp_path / "r")
    lines = []
    t = Trainer(cfg.replace(**{"training.max_timesteps": 150}), tmp_path / "r", resume=True, log=lines.append)
    assert any("replay contents were not saved" in line for line in lines)
    assert len(t.buffer) == 0
    result = t.train()
    assert result.steps == 150 and (tmp_path / "r/checkpoints/step_150.pt").is_file()


def test_truncated_episodes_are_stored_as_bootstrappable(tmp_path, tiny_sets):
    cfg = cfg_with(tiny_sets, "training.max_timesteps=120", "training.learning_starts=1000")
    t = Trainer(cfg, tmp_path / "r")
    t.train()
    b = t.buffer
    n = b.filled
    truncs = np.flatnonzero(b.truncated[:n] & b.is_transition[:n])
    terms = np.flatnonzero(b.terminated[:n] & b.is_transition[:n])
    assert len(truncs) + len(terms) >= 1
    assert not (b.truncated[:n] & b.terminated[:n]).any()
    # every episode is either a 50-step truncation or an earlier termination (leaving the lane)
    for i in truncs:
        assert b.episode_pos[i] == 49


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_learns_the_lanekeep_task_clearly_better_than_random(tmp_path, precision):
    cfg = build_config(sets=[
        f"agent.precision={precision}", "env.name=lanekeep", "env.max_episode_frames=100", "env.action_repeat=1",
        "training.max_timesteps=900", "training.learning_starts=200", "training.train_freq=2",
        "training.batch_size=64", "training.eval_freq=0", "training.checkpoint_freq=0",
        "logging.progress=false", "training.seed=0",
    ])
    t = Trainer(cfg, tmp_path / "learn")
    t.train()
    env = make_eval_envs(lambda: make_env(cfg.env), 1)
    trained = evaluate(env, t.agent.act, seed=123, episodes=10)
    rng = np.random.default_rng(0)
    random = evaluate(env, lambda img, vec: rng.uniform(-1, 1, (len(img), 2)).astype(np.float32), seed=123, episodes=10)
    # Random leaves the lane after ~50 steps (return ~32 on these seeds); a working TD3 keeps ~0.95/step for 100 steps.
    assert random.mean_reward < 40
    assert trained.mean_reward > 75 and trained.mean_reward > 2.5 * random.mean_reward


def test_event_file_has_the_expected_tags(tmp_path, tiny_sets):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = cfg_with(tiny_sets, "training.max_timesteps=200", "training.eval_freq=100", "training.num_eval_episodes=2")
    train(cfg, tmp_path / "r")
    acc = EventAccumulator(str(tmp_path / "r"))
    acc.Reload()
    found = set(acc.Tags()["scalars"])
    expected = {
        tags.CRITIC_LOSS, tags.ACTOR_LOSS, tags.Q1, tags.Q2, tags.Q_PI, tags.TARGET_Q, tags.TD_ERROR,
        tags.EPISODE_REWARD, tags.EPISODE_LENGTH, tags.EVAL_MEAN_REWARD, tags.EVAL_MEAN_LENGTH,
        tags.EVAL_SUCCESS_RATE, tags.ENV_STEPS_PER_S, tags.UPDATES_PER_S, tags.BUFFER_SIZE,
    } | {tags.grad_norm(g) for g in ("actor_mlp", "critic_cnn", "critic_mlp")} | {
        tags.grad_norm_clipped(g) for g in ("actor_mlp", "critic_cnn", "critic_mlp")}
    assert expected <= found, expected - found
    assert [e.step for e in acc.Scalars(tags.CRITIC_LOSS)] == [80, 100, 120, 140, 160, 180, 200]
    clipped = [e.value for e in acc.Scalars(tags.grad_norm_clipped("critic_mlp"))]
    assert max(clipped) <= 10.0 + 1e-3


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "sig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "td3drive.cli",
            "train",
            "--env",
            "lanekeep",
            "--run-dir",
            str(run),
            "--max-timesteps",
            "1000000",
            "--set",
            "logging.progress=false",
            "--set",
            "training.eval_freq=0",
            "--set",
            "training.learning_starts=100000",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not list(run.glob("events.out.tfevents.*")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by signal SIGTERM" in err
    latest = run / "checkpoints/latest.pt"
    assert latest.exists()
    from td3drive.checkpoint import load

    step = load(latest)["counters"]["step"]
    assert 0 < step < 1_000_000 and latest.resolve().name == f"step_{step}.pt"
    assert "verdict:" in err and (run / "report.json").is_file()  # the report is written after Ctrl-C too


def test_normal_end_writes_the_report_and_returns_its_verdict(tmp_path, tiny_sets):
    import json

    logged = []
    result = train(cfg_with(tiny_sets, "training.max_timesteps=200"), tmp_path / "r", log=logged.append)
    report = json.loads((tmp_path / "r/report.json").read_text())
    # Where the time went: every phase of the loop ran, the start-up was counted, the log says it last.
    timing = json.loads((tmp_path / "r/timing.json").read_text())
    assert timing["steps"] == 200 and timing["updates"] == result.steps // 4 - 64 // 4 + 1
    assert all(timing["phases_s"][p] > 0 for p in ("startup", "act", "env", "update", "log", "end"))
    assert logged[-1].startswith("time ") and "(200 steps," in logged[-1]
    assert (tmp_path / "r/report.md").read_text().startswith("# ")
    assert result.verdict == report["verdict"] != "NO-GO" and result.exit_code == 0
    assert {c["id"] for c in report["criteria"]} >= {"non_finite", "grad_norm", "actor_loss", "q_value"}


def test_guard_stops_a_blowing_up_run_and_keeps_the_last_good_state(tmp_path, tiny_sets):
    """A critic learning rate of 1000: the first update at step 64 wrecks the critic, the next one's
    gradients are NaN. The guard stops there and nothing non-finite reaches the weights. step_64.pt was
    written before the alert but holds the wrecked critic (the update at 68 measured it), so the state
    kept is step_32.pt, written before any update. The report says NO-GO."""
    import json
    import os

    from td3drive import checkpoint
    from td3drive.analysis.events import read_run

    lines = []
    cfg = cfg_with(tiny_sets, "training.max_timesteps=400", "training.checkpoint_freq=32", "agent.critic_lr=1000")
    t = Trainer(cfg, tmp_path / "r", log=lines.append)
    result = t.train()
    assert result.exit_code == 1 and result.steps == 68 and "non_finite at step 68" in result.guard_stop
    ckpt = tmp_path / "r/checkpoints"
    assert os.path.samefile(ckpt / "last_good.pt", ckpt / "step_32.pt")
    assert os.readlink(ckpt / "latest.pt") == "step_32.pt" and not (ckpt / "step_68.pt").exists()
    assert t.agent.skipped_updates >= 1 and all(torch.isfinite(p).all() for p in t.agent.critic.parameters())
    assert any("last good state: step_32.pt kept" in line for line in lines)
    report = json.loads((tmp_path / "r/report.json").read_text())
    assert report["verdict"] == "NO-GO" and "alert_non_finite" in {f["id"] for f in report["findings"]}
    alerts = read_run(tmp_path / "r").series[tags.ALERT_NON_FINITE]
    assert alerts.steps.tolist()[-1] == 68 and alerts.values.tolist()[-1] == 1.0
    # Fix the learning rate and resume: the run continues from the last good state (step 32).
    fixed = cfg.replace(**{"agent.critic_lr": 3e-4, "training.max_timesteps": 120})
    resumed = Trainer(fixed, tmp_path / "r", resume=True, log=lines.append)
    assert resumed.c.step == 32
    code = resumed.train().exit_code
    findings = [(f["id"], f["evidence"]) for f in json.loads((tmp_path / "r/report.json").read_text())["findings"]
                if f["severity"] != "info"]
    assert code == 0, findings
    assert checkpoint.load(ckpt / "latest.pt")["counters"]["step"] == 120


def test_guard_stop_without_an_earlier_checkpoint_says_so(tmp_path, tiny_sets):
    lines = []
    t = Trainer(
        cfg_with(tiny_sets, "training.max_timesteps=400", "agent.critic_lr=1000"), tmp_path / "r", log=lines.append
    )
    assert t.train().exit_code == 1
    assert any("no good checkpoint before the first alert (step 68)" in line for line in lines)
    assert not (tmp_path / "r/checkpoints/last_good.pt").exists()


def test_the_stopping_step_is_never_checkpointed(tmp_path, tiny_sets):
    import os

    # Checkpoints every 4 steps: 64 follows the wrecking update, 68 is the stopping step itself.
    cfg = cfg_with(tiny_sets, "training.max_timesteps=400", "training.checkpoint_freq=4", "agent.critic_lr=1000")
    assert train(cfg, tmp_path / "r").exit_code == 1
    ckpt = tmp_path / "r/checkpoints"
    assert (ckpt / "step_64.pt").exists() and not (ckpt / "step_68.pt").exists()
    assert os.path.samefile(ckpt / "last_good.pt", ckpt / "step_60.pt")  # the newest written before any update


def test_vectorised_collection_with_two_env_processes(tmp_path, tiny_sets):
    from td3drive.analysis.events import read_run

    cfg = cfg_with(tiny_sets, "training.max_timesteps=200", "training.num_envs=2")
    t = Trainer(cfg, tmp_path / "r")
    seen, update = [], t.agent.update
    t.agent.update = lambda batch: seen.append((t.c.step, len(t.buffer))) or update(batch)
    result = t.train()
    assert result.steps == 200 and result.exit_code == 0
    # The updates of a step run while its 2 envs step: they see the transitions up to the previous step.
    assert seen and all(stored == step - 2 for step, stored in seen)
    # Updates every 4 env steps from step 64 on, whatever the number of envs: (200 - 64) / 4 + 1 = 35.
    assert t.agent.total_it == 35
    assert len(t.buffer) == 200 and [len(b) for b in t.buffer.buffers] == [100, 100]
    series = read_run(tmp_path / "r").series
    lengths = series[tags.EPISODE_LENGTH].values
    assert len(lengths) >= 2 and lengths.max() <= 50  # 50-step time limit per env
    assert (tmp_path / "r/report.json").exists()
    # Its checkpoint loads with weights_only (counters once came out as numpy scalars, which do not).
    from td3drive import checkpoint

    assert checkpoint.load(checkpoint.latest_path(tmp_path / "r"))["counters"]["step"] == 200


@pytest.mark.parametrize("train_freq,gradient_steps,updates", [(2, 1, 119), (1, 2, 474)])
def test_updates_per_env_step_equal_the_configured_ratio(tmp_path, tiny_sets, train_freq, gradient_steps, updates):
    cfg = cfg_with(tiny_sets, "training.max_timesteps=300", f"training.train_freq={train_freq}",
                   f"training.gradient_steps={gradient_steps}")
    t = Trainer(cfg, tmp_path / "r")
    t.train()
    # learning_starts 64: env steps 64..300 update; 0.5 per step -> 119, 2 per step -> 2 x 237
    assert t.agent.total_it == updates
    assert t.c.frames == 300  # lanekeep at action_repeat 1: one frame per agent step


def test_eval_at_start_logs_the_untrained_policys_level_at_step_0(tmp_path, tiny_sets):
    from td3drive.analysis.events import read_run

    cfg = cfg_with(tiny_sets, "training.max_timesteps=100", "training.eval_freq=100", "training.num_eval_episodes=1",
                   "training.eval_async=false", "training.eval_at_start=true")
    train(cfg, tmp_path / "r")
    assert read_run(tmp_path / "r").series[tags.EVAL_MEAN_REWARD].steps.tolist() == [0, 100]


def test_console_lines_are_not_wrapped_when_the_log_is_a_file(capsys):
    from td3drive.train import console

    # A log file is not a terminal: rich would take it as 80 columns wide and break this line in two.
    line = "eval at step 15000 (59,915 frames): return 626.4 ± 345.1, length 247, success 20% " + "x" * 60
    console.print(line)
    assert capsys.readouterr().err == line + "\n"
