"""td3drive.config_format: old saved configs keep their meaning, one format at a time."""

import pytest
import yaml

from td3drive.config import ConfigError, build_config, from_dict
from td3drive.config_format import FORMAT, detect, upgrade

# A config as format 1 saved it: every backend's options flat in env (abridged to the keys this test reads).
FORMAT_1_CARRACING = {"env": {"name": "carracing", "scenario": 0, "action_repeat": 4, "max_episode_frames": 1000,
                              "no_progress_frames": 150, "fast_render": False, "blank_frame_steps": 50,
                              "policy_frequency": 5, "target_speed": 20.0, "offroad_penalty": 10.0,
                              "carla_host": "localhost", "carla_port": 2000, "carla_town": "Town01"},
                      "agent": {"tau": 0.01}}


def test_a_format_1_save_drops_the_other_backends_options_and_keeps_the_vector_it_trained_with():
    assert detect(FORMAT_1_CARRACING) == 1
    c = from_dict(FORMAT_1_CARRACING)
    assert (c.env.no_progress_frames, c.env.fast_render, c.agent.tau) == (150, False, 0.01)
    assert c.env.carracing_vector == "full"  # saved before the option: it trained on the full vector
    assert not hasattr(c.env, "target_speed")
    highway = {"env": {**FORMAT_1_CARRACING["env"], "name": "highway", "scenario": 1, "target_speed": 25.0}}
    h = from_dict(highway)
    assert (h.env.name, h.env.scenario, h.env.target_speed) == ("highway", 1, 25.0)
    assert not hasattr(h.env, "carla_host") and not hasattr(h.env, "carracing_vector")


def test_today_s_save_round_trips_with_its_format_and_only_its_backend_s_options(tmp_path):
    c = build_config(sets=["env.name=highway", "env.target_speed=15", "agent.tau=0.02"])
    d = c.to_dict()
    assert d["format"] == FORMAT and "carla_host" not in d["env"] and d["env"]["target_speed"] == 15.0
    assert from_dict(d) == c and from_dict(yaml.safe_load(yaml.safe_dump(d))) == c
    assert detect(d) == FORMAT and "format" not in upgrade(d)


def test_a_hand_written_file_is_today_s_keys_and_a_newer_format_is_refused():
    assert detect({"env": {"name": "carracing", "target_speed": 3}}) == FORMAT  # not a save: keys of one backend
    with pytest.raises(ConfigError, match="'env.target_speed': backend 'carracing' has no such option"):
        from_dict({"env": {"name": "carracing", "target_speed": 3}})
    with pytest.raises(ConfigError, match="config key 'format' = 3: this td3drive reads formats 0 to 2"):
        from_dict({"format": 3})
    with pytest.raises(ConfigError, match="config key 'format' = 'x'"):
        from_dict({"format": "x"})


def test_format_0_limits_count_frames_and_missing_keys_take_that_time_s_defaults():
    c = from_dict({"env": {"name": "carracing", "action_repeat": 2, "max_episode_steps": 500}})
    assert (c.env.max_episode_frames, c.env.no_progress_frames, c.training.train_freq, c.agent.n_step) == \
        (1000, 0, 50, 1)
    assert detect({"env": {"max_episode_steps": 5}}) == 0
