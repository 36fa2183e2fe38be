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
