import pytest
import yaml

from td3drive.config import Config, ConfigError, build_config, from_dict, reference


def test_defaults_are_one_update_per_env_step_with_the_drq_pieces():
    c = Config()
    # Spinning Up TD3 ("the ratio of env steps to gradient steps is locked to 1") and SB3 TD3: 1 update per step.
    assert (c.training.learning_starts, c.training.train_freq, c.training.gradient_steps) == (1000, 1, 1)
    assert (c.training.batch_size, c.training.buffer_size, c.training.max_timesteps) == (128, 1_000_000, 1_000_000)
    assert (c.agent.policy_freq, c.agent.tau, c.agent.gamma, c.agent.actor_lr) == (2, 0.005, 0.99, 3e-4)
    assert (c.agent.policy_noise, c.agent.noise_clip) == (0.2, 0.5)
    # Exploration std 1.0 -> 0.1 over 20,000 agent steps (DrQ-v2's schedule; measured against the constant 0.1).
    a = c.agent
    assert (a.exploration_noise, a.exploration_noise_final, a.exploration_decay_steps) == (1.0, 0.1, 20_000)
    assert (c.agent.n_step, c.agent.augment_pad, c.agent.trunk, c.agent.features_dim) == (3, 4, "layernorm", 50)
    assert (c.env.action_repeat, c.env.max_episode_frames, c.env.no_progress_frames) == (4, 1000, 200)
    assert c.agent.max_grad_norm == 10.0 and c.agent.encoder == "critic" and c.logging.log_freq == 100


def test_reference_example_is_the_reference_systems_recipe():
    from pathlib import Path

    c = build_config(Path(__file__).parent.parent / "examples" / "reference.yaml")
    t, a = c.training, c.agent
    assert (t.learning_starts, t.train_freq, t.gradient_steps, t.batch_size) == (1000, 50, 1, 256)
    assert (a.encoder, a.n_step, a.augment_pad, a.exploration_noise, c.env.action_repeat) == ("separate", 1, 0, 0.1, 1)
    assert (a.trunk, a.features_dim, c.env.no_progress_frames) == ("relu", 512, 0)
    assert a.exploration_noise_final is None  # constant 0.1, as the reference system explored


def test_constant_exploration_example_differs_from_the_default_in_exploration_only():
    from dataclasses import asdict
    from pathlib import Path

    c = build_config(Path(__file__).parent.parent / "examples" / "explore-constant.yaml")
    assert (c.agent.exploration_noise, c.agent.exploration_noise_final) == (0.1, None)
    differ = {k for k, v in asdict(c.agent).items() if v != asdict(build_config().agent)[k]}
    assert differ == {"exploration_noise", "exploration_noise_final"}
    assert asdict(c.env) == asdict(build_config().env) and asdict(c.training) == asdict(build_config().training)


def test_precedence_yaml_then_set_then_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"agent": {"tau": 0.01, "gamma": 0.9}, "training": {"seed": 1}}))
    c = build_config(f, ["agent.tau=0.02", "agent.max_grad_norm=null"], {"training.seed": 5, "env.name": None})
    assert c.agent.tau == 0.02 and c.agent.gamma == 0.9 and c.training.seed == 5
    assert c.agent.max_grad_norm is None and c.env.name == "carracing"


@pytest.mark.parametrize(
    "item, words",
    [
        ("agent.tau=2", ["agent.tau", "2", "(0, 1]"]),
        ("agent.taux=0.1", ["agent.taux", "allowed keys", "tau"]),
        ("agent.encoder=shared", ["agent.encoder", "shared", "'critic', 'separate'"]),
        ("training.batch_size=1.5", ["training.batch_size", "1.5", "int"]),
        ("training.save_replay=1", ["training.save_replay", "bool"]),
        ("env.scenario=2", ["env.scenario", "2", "carracing", "allows 0"]),
        ("agent.gamma=.nan", ["agent.gamma", "finite"]),
        ("nokey", ["key=value"]),
        ("guard.grad_norm_warning=1e9", ["guard.grad_norm_warning", "grad_norm_critical"]),
    ],
)
def test_bad_values_name_key_value_and_allowed(item, words):
    with pytest.raises(ConfigError) as e:
        build_config(sets=[item])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("agent: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(f)
    with pytest.raises(ConfigError, match="cannot be read"):
        build_config(tmp_path / "missing.yaml")
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        build_config(f)


def test_round_trip_and_frozen():
    c = from_dict({"agent": {"encoder": "separate"}})
    assert from_dict(c.to_dict()) == c
    with pytest.raises(Exception):
        c.agent.tau = 0.5  # type: ignore[misc]
    assert c.replace(**{"agent.tau": 0.1}).agent.tau == 0.1


def test_int_accepted_for_float_and_reference_covers_every_key():
    assert build_config(sets=["agent.max_grad_norm=5"]).agent.max_grad_norm == 5.0
    keys = [r[0] for r in reference()]
    for k in [
        "agent.encoder",
        "agent.max_grad_norm",
        "training.learning_starts",
        "training.num_eval_episodes",
        "logging.log_freq",
    ]:
        assert k in keys


def test_readme_config_reference_lists_every_key_with_its_default():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for key, default, _, _ in reference():
        shown = "null" if default is None else (str(default).lower() if isinstance(default, bool) else repr(default))
        assert f"| `{key}` | `{shown}` |" in readme, key


def test_a_config_written_before_frame_limits_keeps_its_meaning(tmp_path):
    old = {"env": {"name": "carracing", "action_repeat": 2, "max_episode_steps": 500},
           "agent": {"encoder": "critic", "features_dim": 512}, "training": {"seed": 3}}
    c = from_dict(old)
    assert c.env.max_episode_frames == 1000 and c.env.no_progress_frames == 0
    assert (c.agent.trunk, c.agent.features_dim, c.agent.n_step, c.agent.augment_pad) == ("relu", 512, 1, 0)
    assert (c.training.train_freq, c.training.batch_size, c.training.seed) == (50, 256, 3)
    f = tmp_path / "old.yaml"
    f.write_text(yaml.safe_dump({"env": {"max_episode_steps": 100}}))
    c = build_config(f, ["training.train_freq=2"])
    assert (c.env.max_episode_frames, c.env.action_repeat, c.training.train_freq) == (100, 1, 2)
    assert from_dict({}).env.action_repeat == 4  # a config without the old key gets today's defaults
