"""CARLA backend: the pure parts everywhere; the server parts only where a server answers at CARLA_HOST."""

import math
import os

import numpy as np
import pytest

from td3drive.envs.carla_backend import (
    LANE_HALF_WIDTH_M,
    NPC_VEHICLES,
    CarlaConnectionError,
    camera_to_gray84,
    carla_reward,
    connect,
    control_from_action,
    ego_vector,
    points_ahead,
    project_on_route,
    route_arclength,
    spawn_index,
)

W = {"carla_target_kmh": 30.0, "reward_efficiency": 1.0, "reward_centering": 0.3, "reward_comfort": 0.1,
     "collision_penalty": 10.0, "lane_invasion_penalty": 1.0, "reward_progress": 1.0}
# An L-shaped route: 10 m along +x, then 10 m along +y (in CARLA's left-handed frame +y is to the right
# of +x, so the route turns right).
ROUTE = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])


def test_route_progress_offset_and_heading_by_hand():
    cum = route_arclength(ROUTE)
    assert cum.tolist() == [0.0, 10.0, 20.0]
    s, lateral, heading = project_on_route(ROUTE, cum, np.array([4.0, -1.0]))  # 1 m to the left of the first leg
    assert (s, lateral, heading) == pytest.approx((4.0, 1.0, 0.0))
    s, lateral, heading = project_on_route(ROUTE, cum, np.array([10.5, 6.0]))  # on the second leg, 0.5 m left of it
    assert (s, lateral, heading) == pytest.approx((16.0, 0.5, math.pi / 2))
    ahead = points_ahead(ROUTE, cum, 8.0, (1.0, 5.0, 30.0))
    np.testing.assert_allclose(ahead, [[9.0, 0.0], [10.0, 3.0], [10.0, 10.0]])  # clamped at the route's end


def test_ego_vector_assembly():
    v = ego_vector(15.0, -0.875, 0.1, np.array([[5.0, 0.0], [10.0, 1.0], [15, 2], [20, 3], [25, 4]]))
    assert v.dtype == np.float32 and v.shape == (13,)
    np.testing.assert_allclose(v[:5], [0.5, -0.875 / LANE_HALF_WIDTH_M, 0.1, 0.5, 0.0], rtol=1e-6)
    assert v[-1] == pytest.approx(0.4)


def test_reward_terms_by_hand():
    # 30 km/h on target, 0.875 m off centre (half a half-width), steering changed by 0.2, 0.3 m progress
    # in one 0.05 s step (30 km/h = 0.4167 m per step), no events.
    t = carla_reward(30.0, 0.875, 0.2, 0.3, False, False, W)
    assert t == pytest.approx({"efficiency": 1.0, "lane_keeping": -0.15, "comfort": -0.02, "safety": 0.0,
                               "progress": 0.3 / (30 / 3.6 * 0.05)})
    t = carla_reward(90.0, 5.0, 0.0, 0.0, True, True, W)
    assert t["efficiency"] == -1.0 and t["lane_keeping"] == -0.3 and t["safety"] == -11.0


def test_observation_and_control_mapping():
    bgra = np.zeros((600, 800, 4), np.uint8)
    bgra[:, :400, 2] = 255  # left half pure red (BGRA: channel 2 is red)
    gray = camera_to_gray84(bgra)
    assert gray.shape == (84, 84) and gray.dtype == np.uint8
    assert gray[:, :40].mean() == pytest.approx(76, abs=1) and gray[:, 44:].max() == 0  # 0.299 * 255
    assert control_from_action(np.array([0.3, -0.5])) == {"steer": 0.3, "throttle": 0.0, "brake": 0.5}
    assert control_from_action(np.array([-2.0, 0.7])) == {"steer": -1.0, "throttle": pytest.approx(0.7), "brake": 0.0}


def test_spawn_points_fixed_or_seeded():
    assert spawn_index(0, 123, 5, 10) == 5
    assert spawn_index(0, 123, -1, 255) == spawn_index(0, 123, -1, 255) != spawn_index(0, 124, -1, 255)
    with pytest.raises(ValueError, match="spawn points 0..9"):
        spawn_index(0, None, 10, 10)


HOST = os.environ.get("CARLA_HOST", "localhost")
PORT = int(os.environ.get("CARLA_PORT", "2000"))


def server_or_skip():
    pytest.importorskip("carla", reason="the carla client is not installed (pip install -e '.[carla]')")
    try:
        return connect(HOST, PORT, 3.0)
    except CarlaConnectionError as e:
        pytest.skip(f"no CARLA server at {HOST}:{PORT} (set CARLA_HOST / CARLA_PORT): {e}")


def test_no_server_gives_one_clear_error_naming_host_and_port():
    pytest.importorskip("carla", reason="the carla client is not installed (pip install -e '.[carla]')")
    with pytest.raises(CarlaConnectionError, match=r"no CARLA server answered at 127\.0\.0\.1:2999 within 1 s"):
        connect("127.0.0.1", 2999, 1.0)


def test_integration_episode_and_cleanup():
    """Against a real server: contract, 20 Hz sync mode restored, no actor left after close."""
    client = server_or_skip()
    from td3drive.config import build_config
    from td3drive.envs import make_env
    from td3drive.envs.contract import check_contract

    world = client.get_world()
    before = world.get_settings().synchronous_mode
    actors_before = len(world.get_actors())
    env = make_env(build_config(sets=["env.name=carla", f"env.carla_host={HOST}", f"env.carla_port={PORT}",
                                      "env.scenario=0", "env.max_episode_frames=40"]))
    try:
        obs, _ = env.reset(seed=0)
        check_contract(obs, 13)
        assert client.get_world().get_settings().fixed_delta_seconds == pytest.approx(0.05)
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(np.array([0.0, 0.5], np.float32))
            check_contract(obs, 13)
            assert reward == pytest.approx(sum(info["reward_terms"].values()))
            if terminated or truncated:
                break
    finally:
        env.close()
    world = client.get_world()
    assert world.get_settings().synchronous_mode == before
    assert not [a for a in world.get_actors() if a.attributes.get("role_name") == "hero"]
    assert len(world.get_actors()) == actors_before  # ego, sensors and 20 NPCs all destroyed


def fake_env(monkeypatch, world, **sets):
    import sys

    from td3drive.config import build_config
    from td3drive.envs import make_env
    from tests import fake_carla

    monkeypatch.setitem(sys.modules, "carla", fake_carla.module(world))
    items = ["env.name=carla", "env.scenario=0", "env.max_episode_frames=30", "env.blank_frame_steps=5"]
    return make_env(build_config(sets=items + [f"env.{k}={v}" for k, v in sets.items()]))


def test_env_bookkeeping_against_a_fake_server(monkeypatch):
    """Sync settings applied and restored, frames read by frame id though they arrive late,
    all 1 + 3 + 20 actors destroyed on reset and close."""
    from td3drive.envs.contract import check_contract
    from tests import fake_carla

    world = fake_carla.World()
    original = world.get_settings()
    env = fake_env(monkeypatch, world, route_length_m=50)
    obs, _ = env.reset(seed=1)
    assert len(world.actors) == 1 + 3 + NPC_VEHICLES[0]
    assert world.settings.synchronous_mode and world.settings.fixed_delta_seconds == 0.05
    assert world.settings.max_substep_delta_time * world.settings.max_substeps >= 0.05
    check_contract(obs, 13)
    terms, info = [], {}
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        # The newest stacked frame is this tick's (a late frame of the previous tick was skipped).
        this_tick = np.frombuffer(fake_carla.Image(world.frame).raw_data, np.uint8).reshape(600, 800, 4)
        np.testing.assert_array_equal(obs["image"][-1], camera_to_gray84(this_tick))
        terms.append(info["reward_terms"])
        if terminated or truncated:
            break
    # Driving at 8 m/s = 0.4 m per tick along a straight 50 m route: progress 0.4 / (30 km/h * 0.05 s) per
    # tick, totalled over the ticks of an agent step (action repeat 4; the 30-tick limit leaves 2 for the last).
    per_tick = 0.4 / (30 / 3.6 * 0.05)
    assert info["frames"] == 2 and info["distance_m"] == pytest.approx(2 * 0.4)
    assert [t["progress"] for t in terms[-2:]] == pytest.approx([4 * per_tick, 2 * per_tick])
    assert info["speed_mps"] == pytest.approx(8.0) and not info["collision"]
    env.reset(seed=2)
    assert len(world.actors) == 1 + 3 + NPC_VEHICLES[0]  # the previous episode's actors are gone
    env.close()
    assert world.actors == {} and world.settings == original


def test_a_failing_reset_leaves_no_actor_behind(monkeypatch):
    from tests import fake_carla

    world = fake_carla.World(fail_spawning_after=3)  # ego, camera, collision sensor, then a failure
    env = fake_env(monkeypatch, world)
    with pytest.raises(RuntimeError, match="Spawn failed"):
        env.reset(seed=0)
    assert world.actors == {}
    env.close()
    assert world.settings.synchronous_mode is False


def test_carla_server_list_one_per_actor_checked_where_it_enters():
    from td3drive.config import ConfigError, build_config

    base = ["env.name=carla", "env.scenario=0"]
    for sets, message in (
        (["training.actors=2"], "each actor needs its own server"),
        (["training.actors=2", "env.carla_servers=a:2000"], r"1 server\(s\) for training.actors = 2"),
        (["training.actors=2", "env.carla_servers=a:2000,b"], "'b' is not host:port"),
        (["training.actors=2", "env.carla_servers=a:2000,a:2000"], "listed twice"),
        (["training.actors=2", "env.carla_servers=a:2000,b:70000"], "'b:70000' is not host:port"),
        (["training.actors=2", "env.carla_servers=a:2000,localhost:2000"], "lists the evaluation server"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_config(sets=base + sets)
    cfg = build_config(sets=base + ["training.actors=2", "env.carla_servers=a:2000, localhost:2000",
                                    "training.eval_freq=0"])
    assert cfg.env.carla_servers == "a:2000, localhost:2000"


def test_each_collection_actor_drives_its_own_server(monkeypatch):
    """Actor i connects to the i-th server of env.carla_servers, spawns its ego there and ticks only that world."""
    import sys

    from td3drive.collect_ray import CollectionActor
    from td3drive.config import build_config
    from tests import fake_carla

    worlds = {("sim-a", 2000): fake_carla.World(), ("sim-b", 2002): fake_carla.World()}
    monkeypatch.setitem(sys.modules, "carla", fake_carla.module(fake_carla.World(), servers=worlds))
    cfg = build_config(sets=["env.name=carla", "env.scenario=0", "env.max_episode_frames=40",
                             "env.blank_frame_steps=5", "training.actors=2", "env.carla_servers=sim-a:2000,sim-b:2002",
                             "agent.features_dim=32"])
    actors = [CollectionActor(cfg.to_dict(), index=i, vector_dim=13) for i in (1, 0)]
    assert fake_carla.Client.connected == [("sim-b", 2002), ("sim-a", 2000)]
    chunk = actors[0].collect(5, None, 0, global_step=0)
    assert len(chunk["actions"]) == 5 and chunk["frames"].shape == (5, 84, 84)
    ticked_b = worlds[("sim-b", 2002)].frame
    assert ticked_b >= 5 and worlds[("sim-a", 2000)].frame < ticked_b  # actor 0 has not driven yet
    actors[1].collect(5, None, 0, global_step=0)
    heroes = [[a for a in w.get_actors() if a.attributes.get("role_name") == "hero"] for w in worlds.values()]
    assert [len(h) for h in heroes] == [1, 1]  # one ego per server
    assert fake_carla.Client.world.actors == {}  # nothing on the default address
    for a in actors:
        a.env.close()
    assert all(w.actors == {} for w in worlds.values())
