import math

import numpy as np
import pytest

pytest.importorskip("highway_env", reason='the highway extra is not installed (pip install -e ".[highway]")')

from td3drive.config import ConfigError, build_config
from td3drive.core import tags
from td3drive.envs import BlankFrameError, make_env
from td3drive.envs.contract import check_contract
from td3drive.envs.geometry import to_ego_frame, wrap_angle
from td3drive.envs.highway import VECTOR_DIM, driving_reward

W = {"target_speed": 20.0, "reward_progress": 1.0, "reward_centering": 0.3, "reward_speed": 0.3,
     "collision_penalty": 10.0, "offroad_penalty": 10.0}


@pytest.fixture
def display(monkeypatch):
    # highway-env draws nothing with SDL's dummy driver (which the test suite sets for CarRacing).
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)


def make(name, scenario=0, *sets):
    return make_env(build_config(sets=[f"env.name={name}", f"env.scenario={scenario}", *sets]))


def test_pure_geometry_and_reward_by_hand():
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    # Heading 0 faces +x; with highway-env's y axis pointing down the screen, -y is the car's left.
    ego = to_ego_frame(np.array([[10.0, 0.0], [0.0, -2.0]]), np.zeros(2), 0.0)
    np.testing.assert_allclose(ego, [[10.0, 0.0], [0.0, 2.0]], atol=1e-12)
    # Heading +90 deg (facing +y, down the screen): a point further down is ahead, a point at +x is on the left.
    ego = to_ego_frame(np.array([[0.0, 5.0], [3.0, 0.0]]), np.zeros(2), math.pi / 2)
    np.testing.assert_allclose(ego, [[5.0, 0.0], [0.0, 3.0]], atol=1e-12)
    t = driving_reward(v_along=10.0, speed=15.0, offset_hw=-0.5, crashed=False, offroad=False, w=W)
    assert t == pytest.approx(
        {"progress": 0.5, "centering": -0.15, "speed": 0.3 * 0.75, "collision": 0.0, "offroad": 0.0, "time": 0.0}
    )
    # Driving backwards earns negative progress; a crash costs the penalty.
    t = driving_reward(v_along=-5.0, speed=5.0, offset_hw=3.0, crashed=True, offroad=True, w=W)
    assert t["progress"] == -0.25 and t["centering"] == -0.3 and t["collision"] == -10 and t["offroad"] == -10


@pytest.mark.parametrize("name, scenario", [("highway", 0), ("highway", 1), ("highway", 2), ("racetrack", 0)])
def test_every_exposed_road_meets_the_contract(display, name, scenario):
    env = make(name, scenario)
    obs, _ = env.reset(seed=3)
    check_contract(obs, VECTOR_DIM)
    # Centred on its lane: the lane centre 5 m ahead is (0.5, ~0) in units of 10 m.
    assert abs(obs["vector"][1]) < 0.05 and obs["vector"][3] == pytest.approx(0.5, abs=0.05)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 0.2], np.float32))
        check_contract(obs, VECTOR_DIM)
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert np.isfinite(obs["vector"]).all()
        if terminated or truncated:
            break
    assert obs["image"][-1].std() > 5  # a drawn road scene, not a blank frame
    env.close()


def test_signs_steering_left_moves_the_car_left_of_its_lane(display):
    env = make("highway", 0)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([-0.1, 0.0], np.float32))  # steer - = left, small enough to stay in the lane
    _, offset, heading_error = obs["vector"][:3]
    assert 0 < offset < 1 and heading_error > 0  # left of centre, nose left of the lane direction
    # The lane ahead now appears to the right (negative y) in the ego frame.
    assert obs["vector"][12] < 0
    env.reset(seed=0)
    obs, *_ = env.step(np.array([0.1, 0.0], np.float32))
    assert obs["vector"][1] < 0 and obs["vector"][2] < 0
    env.close()


def test_spinning_in_place_earns_less_than_driving_along_the_lane(display):
    def progress(steer):
        env = make("racetrack", 0, "env.offroad_penalty=0")
        env.reset(seed=1)
        total = 0.0
        for _ in range(15):
            obs, _, terminated, truncated, info = env.step(np.array([steer, 0.0], np.float32))
            total += info["reward_terms"]["progress"]
            if terminated or truncated:
                break
        env.close()
        return total

    assert progress(0.0) > 2 * progress(1.0)


def test_dummy_video_driver_is_caught_by_the_blank_frame_check(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = make("racetrack", 0, "env.blank_frame_steps=5")
    with pytest.raises(BlankFrameError, match="SDL_VIDEODRIVER=dummy"):
        env.reset(seed=0)
        for _ in range(10):
            env.step(np.zeros(2, np.float32))
    env.close()


def test_trainer_logs_each_reward_term(display, tmp_path):
    from td3drive.analysis.events import read_run
    from td3drive.train import train

    cfg = build_config(sets=["env.name=racetrack", "env.max_episode_frames=30", "training.max_timesteps=60",
                             "training.learning_starts=1000", "training.eval_freq=0", "training.checkpoint_freq=0",
                             "logging.progress=false", "agent.features_dim=32", "agent.hidden_dim=16"])
    train(cfg, tmp_path / "r")
    series = read_run(tmp_path / "r").series
    terms = [tags.env_reward(t) for t in ("progress", "centering", "speed", "collision", "offroad")]
    assert all(t in series for t in terms)
    n = len(series[tags.EPISODE_REWARD].values)
    total = sum(series[t].values[:n] for t in terms)
    np.testing.assert_allclose(total, series[tags.EPISODE_REWARD].values, rtol=1e-4, atol=1e-3)


def test_rgb_view_is_the_colour_frame_the_grey_input_was_made_from(display):
    env = make("highway", 1)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.array([0.0, 0.3], np.float32))
    rgb = env.get_wrapper_attr("rgb_view")()
    assert rgb.shape == (84, 84, 3) and rgb.dtype == np.uint8
    grey = rgb @ np.array([0.2989, 0.5870, 0.1140])  # highway-env's own weights, about
    assert np.abs(grey - obs["image"][-1]).mean() < 2.0
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2]).max() > 20  # in colour, not grey
    env.close()


def hold_lane_at_target_speed(env, seeds, steps=75):
    """A blind driver: straight ahead at 20 m/s (env.target_speed), whatever is in front. Returns the
    crashes over ``seeds`` (one episode each) and the other vehicles' target speeds."""
    crashes, speeds = 0, []
    for seed in seeds:
        env.reset(seed=seed)
        u = env.unwrapped
        speeds += [v.target_speed for v in u.road.vehicles if v is not u.vehicle]
        for _ in range(steps):
            throttle = np.clip((20.0 - u.vehicle.speed) / 5.0, -1.0, 1.0)
            _, _, terminated, truncated, info = env.step(np.array([0.0, throttle], np.float32))
            crashes += bool(info["collision"])
            if terminated or truncated:
                break
    return crashes, np.array(speeds)


def test_slow_traffic_is_met_by_a_blind_driver_and_default_traffic_is_not(display):
    # highway-env's traffic (21-24 m/s) pulls away from an ego at its 20 m/s target: holding the lane blind
    # never crashes. With env.traffic_speed_mps=15 the ego catches up with the car ahead in its lane.
    crashes, speeds = hold_lane_at_target_speed(make("highway", 1), range(4))
    assert crashes == 0 and speeds.min() >= 21.0 - 1e-9 and speeds.max() <= 24.0 + 1e-9
    env = make("highway", 1, "env.traffic_speed_mps=15")
    crashes, speeds = hold_lane_at_target_speed(env, range(4))
    assert crashes >= 2 and speeds.min() >= 13.5 and speeds.max() <= 16.5 and speeds.std() > 0.5
    # Drawn from the episode's seed: the same seed, the same traffic.
    _, again = hold_lane_at_target_speed(env, range(4), steps=0)
    np.testing.assert_array_equal(speeds, again)


def test_traffic_speed_is_validated_where_it_enters():
    with pytest.raises(ConfigError,
                       match=r"'env.traffic_speed_mps' = 1.0: must exceed env.traffic_speed_spread_mps \(1.5"):
        build_config(sets=["env.name=highway", "env.traffic_speed_mps=1"])
    with pytest.raises(ConfigError, match=r"env.traffic_speed_spread_mps.*-1"):
        build_config(sets=["env.name=highway", "env.traffic_speed_spread_mps=-1"])
    assert build_config(sets=["env.name=highway", "env.traffic_speed_mps=14",
                              "env.traffic_speed_spread_mps=6"]).env.traffic_speed_spread_mps == 6


def route_return(speed, time_penalty, route_m=1000.0, dt=0.2):
    """The return of driving the whole route at a constant ``speed`` (m/s) on the lane centre."""
    steps = round(route_m / (speed * dt))
    terms = driving_reward(v_along=speed, speed=speed, offset_hw=0.0, crashed=False, offroad=False,
                           w={**W, "time_penalty": time_penalty})
    return steps * sum(terms.values())


def test_without_a_time_penalty_a_crawl_earns_what_the_target_speed_does():
    # Progress and speed terms are per step: over a fixed route, half the speed is twice the steps.
    assert route_return(10.0, 0.0) == pytest.approx(route_return(20.0, 0.0)) == pytest.approx(325.0)
    # 0.3 per step: 250 steps at 20 m/s cost 75, 500 at 10 m/s cost 150.
    assert route_return(20.0, 0.3) == pytest.approx(250.0) and route_return(10.0, 0.3) == pytest.approx(175.0)


def test_the_time_penalty_is_a_logged_reward_term(display):
    env = make("highway", 0, "env.time_penalty=0.25")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["reward_terms"]["time"] == -0.25 and reward == pytest.approx(sum(info["reward_terms"].values()))
