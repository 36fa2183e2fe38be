import subprocess
import sys

import pytest

from td3drive import envs
from td3drive.config import ConfigError, build_config


@pytest.mark.parametrize("name", list(envs.BACKENDS))
def test_every_backend_module_exports_the_registry_interface(name):
    module = envs.backend(name)
    assert isinstance(module.VECTOR_DIM, int) and module.VECTOR_DIM > 0
    assert name in module.SCENARIOS and 0 in envs.scenarios(name) and callable(module.make)


def test_the_registry_feeds_the_config_and_the_helpers():
    from td3drive.config import EnvConfig

    assert envs.vector_dim(EnvConfig(name="lanekeep")) == 2
    # CarRacing's vector is chosen by a key: the dashboard's sensors by default, the full road geometry as an option.
    assert envs.vector_dim(EnvConfig()) == 7 and envs.vector_dim(EnvConfig(carracing_vector="full")) == 14
    assert envs.observation_name(build_config()) == "camera + proprio vector (k=7)"
    assert envs.observation_name(build_config(sets=["agent.use_vector=false"])) == "camera only"
    assert envs.scenarios("highway") == (0, 1, 2) and envs.scenarios("racetrack") == (0,)
    assert envs.single_process("carla") and not envs.single_process("carracing")
    assert envs.has_rgb_view("carracing") and not envs.has_rgb_view("lanekeep")
    # CarRacing has no lanes: its lane_invasion is leaving the road, and printed results say so.
    assert envs.lane_invasion_label("carracing") == "road exits"
    assert envs.lane_invasion_label("lanekeep") == envs.lane_invasion_label("highway") == "lane invasions"
    with pytest.raises(ConfigError, match="one of 'carracing', 'lanekeep', 'highway', 'racetrack', 'carla'"):
        build_config(sets=["env.name=gta"])
    with pytest.raises(ConfigError, match="backend 'highway' allows 0, 1, 2"):
        build_config(sets=["env.name=highway", "env.scenario=3"])
    with pytest.raises(ValueError, match="unknown env 'gta'"):
        envs.backend("gta")


def test_make_env_builds_the_named_backend_under_the_contract():
    env = envs.make_env(build_config(sets=["env.name=lanekeep"]))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (4, 84, 84) and obs["vector"].shape == (2,)
    env.close()


def test_reading_the_registry_imports_no_simulator():
    code = "import sys, td3drive.envs, td3drive.config; print('gymnasium' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_each_backend_owns_its_options_and_a_key_of_another_backend_is_refused():
    from td3drive.config import EnvConfig

    assert envs.options_class("highway") is envs.options_class("racetrack") is not envs.options_class("carla")
    assert envs.options_class("lanekeep") is envs.NoOptions
    h = envs.build_env({"name": "highway", "target_speed": 25, "scenario": 1})
    assert (h.target_speed, h.scenario, h.options.target_speed) == (25.0, 1, 25.0)
    assert h.to_dict()["target_speed"] == 25.0 and "carla_host" not in h.to_dict()
    assert h.with_options(target_speed=30.0).target_speed == 30.0 and h.target_speed == 25.0
    with pytest.raises(AttributeError, match="backend 'highway' has no such option"):
        h.carla_host
    with pytest.raises(ConfigError, match="'env.carla_port': backend 'highway' has no such option \\(an option of "
                                          "carla\\)"):
        envs.build_env({"name": "highway", "carla_port": 2001})
    with pytest.raises(ConfigError, match="'env.colour': backend 'lanekeep' has no such option \\(not an option "
                                          "of any backend\\)"):
        envs.build_env({"name": "lanekeep", "colour": 1})
    with pytest.raises(ConfigError, match="'env.target_speed' = 0: must be a number > 0"):
        envs.build_env({"name": "racetrack", "target_speed": 0})
    assert EnvConfig(name="carracing", carracing_vector="full").options.carracing_vector == "full"


def test_the_flags_the_fixed_keys_and_the_reference_come_from_the_declarations():
    assert [(k, owners) for k, _, owners in envs.flag_options()] == [("carla_host", ["carla"]),
                                                                     ("carla_port", ["carla"])]
    assert envs.fixed_options() == ["env.name", "env.scenario", "env.action_repeat", "env.carracing_vector"]
    rows = {(k, m.split(":")[0]) for k, _, _, m in envs.option_reference()}
    assert ("env.target_speed", "highway/racetrack") in rows and ("env.route_length_m", "carla") in rows
    assert ("env.route_length_m", "highway/racetrack") in rows and ("env.carla_host", "carla") in rows


def test_a_new_backend_is_one_module_and_one_registry_line_options_and_flags_included(monkeypatch, capsys):
    from td3drive import cli

    monkeypatch.setitem(envs.BACKENDS, "toy", "tests.toy_backend")
    cfg = build_config(sets=["env.toy_gain=2.5"], overrides={"env.name": "toy", "env.scenario": 1})
    assert (cfg.env.name, cfg.env.scenario, cfg.env.toy_gain, cfg.env.toy_server) == ("toy", 1, 2.5, "toyhost")
    with pytest.raises(ConfigError, match="'env.toy_gain' = 0: must be a number > 0"):
        build_config(sets=["env.name=toy", "env.toy_gain=0"])
    with pytest.raises(ConfigError, match="'env.toy_gain': backend 'carracing' has no such option \\(an option of toy"):
        build_config(sets=["env.toy_gain=2"])
    assert any(k == "env.toy_gain" and m.startswith("toy: ") for k, _, _, m in envs.option_reference())
    args = cli.build_parser().parse_args(["train", "--env", "toy", "--toy-server", "sim7"])
    assert cli._overrides(args)["env.toy_server"] == "sim7"
    env = envs.make_env(cfg)
    assert env.reset(seed=0)[0]["vector"].shape == (2,)
    env.close()
