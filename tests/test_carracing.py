import math

import numpy as np
import pytest

from td3drive.config import EnvConfig
from td3drive.envs import make_env
from td3drive.envs.carracing import VECTOR_DIM, VECTORS, ego_state, on_road, proprio_state
from td3drive.envs.contract import check_contract

# A straight track along +x, points 1 unit apart; half-width 2.
TRACK = np.stack([np.arange(100.0), np.zeros(100)], axis=1)
NOSE_ALONG_X = -math.pi / 2  # Box2D angle whose local +y (the nose) points along world +x


def test_ego_state_on_a_straight_track():
    v = ego_state(np.array([10.2, 1.0]), NOSE_ALONG_X, np.array([25.0, 0.0]), 0.3, TRACK, half_width=2.0)
    assert v.shape == (VECTOR_DIM,) and v.dtype == np.float32
    assert v[0] == pytest.approx(0.5)  # 25 units/s forward / 50
    assert v[1] == pytest.approx(0.3)
    assert v[2] == pytest.approx(0.5)  # 1 unit left of centre / half-width 2
    assert v[3] == pytest.approx(0.0, abs=1e-6)
    wp = v[4:].reshape(5, 2)
    np.testing.assert_allclose(wp[:, 0], (np.array([12, 14, 16, 18, 20]) - 10.2) / 2, atol=1e-5)
    np.testing.assert_allclose(wp[:, 1], -0.5, atol=1e-5)  # the centre line is 1 unit to the right


def test_ego_state_signs_heading_and_right_offset():
    v = ego_state(np.array([10.0, -2.0]), NOSE_ALONG_X + 0.2, np.array([0.0, 0.0]), 0.0, TRACK, half_width=2.0)
    assert v[2] == pytest.approx(-1.0)  # right of centre
    assert v[3] == pytest.approx(0.2)  # nose turned left (counter-clockwise)
    reverse = ego_state(np.array([10.0, 0.0]), NOSE_ALONG_X, np.array([-10.0, 0.0]), 0.0, TRACK)
    assert reverse[0] == pytest.approx(-0.2)  # driving backwards is negative speed


def test_carracing_contract_and_state_vector():
    env = make_env(EnvConfig(name="carracing", max_episode_frames=30, carracing_vector="full"))
    obs, _ = env.reset(seed=3)
    check_contract(obs, VECTOR_DIM)
    assert abs(obs["vector"][2]) < 0.1 and abs(obs["vector"][3]) < 0.1  # starts on the centre line
    assert env.action_space.shape == (2,)
    for i in range(30):
        obs, r, term, trunc, _ = env.step(np.array([0.0, 1.0], np.float32))
        check_contract(obs, VECTOR_DIM)
    assert trunc and not term  # the time limit is a truncation
    assert obs["vector"][0] > 0.1  # full gas moved the car forward
    assert obs["image"][-1].std() > 5  # a real scene, not a blank frame
    env.close()


def test_proprio_state_scales_and_signs():
    v = proprio_state(25.0, 0.3, -0.2, np.array([100.0, 110.0, 120.0, 130.0]))
    assert v.dtype == np.float32 and v.shape == (VECTORS["proprio"],)
    np.testing.assert_allclose(v, [0.5, 0.3, 0.5, 1.0, 1.1, 1.2, 1.3], rtol=1e-6)  # joint -0.2 rad = half lock right


def test_the_default_vector_is_the_cars_own_sensors_not_the_road():
    """The default (proprio) vector is the same on two different tracks for the same driving: it holds no road
    geometry; the full vector adds it."""
    def drive(seed: int, vector: str) -> np.ndarray:
        env = make_env(EnvConfig(name="carracing", max_episode_frames=400, carracing_vector=vector))
        env.reset(seed=seed)
        out = []
        for i in range(12):
            obs, *_ = env.step(np.array([0.6 if i > 6 else 0.0, 1.0], np.float32))
            check_contract(obs, VECTORS[vector])
            out.append(obs["vector"])
        env.close()
        return np.stack(out)

    p0, p1 = drive(0, "proprio"), drive(1, "proprio")
    np.testing.assert_allclose(p0, p1, atol=0.02)  # same controls from the same start: same sensor readings
    assert p0[-1, 0] > 0.1 and p0[-1, 2] > 0.5  # moving, steering right (the action's sign)
    assert p0[-1, 3:].min() > 0.3 and p0[-1, 5:].min() > p0[-1, 3:5].max()  # the wheels spin, the driven rear more
    full = drive(0, "full")
    np.testing.assert_allclose(full[:, :2], p0[:, :2], atol=1e-6)  # both start with speed and yaw rate
    assert full[-1, 2] < -0.3  # the full vector also says where the road is: now right of the centre line


def test_carracing_off_playfield_is_a_termination():
    env = make_env(EnvConfig(name="carracing", max_episode_frames=1000))
    env.reset(seed=0)
    car = env.unwrapped.car
    car.hull.position = (1e4, 0.0)  # teleport beyond the playfield
    _, reward, term, trunc, _ = env.step(np.zeros(2, np.float32))
    assert term and not trunc and reward == -100
    env.close()


@pytest.mark.parametrize("seed", [0, 5])
def test_fast_render_frames_are_pixel_identical_to_stock(seed):
    from gymnasium.envs.box2d.car_racing import CarRacing

    from td3drive.envs.carracing import FastCarRacing

    stock, fast = CarRacing(render_mode="rgb_array"), FastCarRacing(render_mode="rgb_array")
    a, _ = stock.reset(seed=seed)
    b, _ = fast.reset(seed=seed)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(seed)
    for i in range(250):  # full gas: tiles get visited and recoloured, the zoom animation runs
        act = np.array([rng.uniform(-1, 1), rng.uniform(0.3, 1), 0.0])
        a, ra, *_ = stock.step(act)
        b, rb, *_ = fast.step(act)
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
        assert ra == rb
        if i % 50 == 49:  # the video frame too (a larger size, tyre particles drawn)
            np.testing.assert_array_equal(stock.render(), fast.render(), err_msg=f"video frame {i}")
    assert stock.tile_visited_count > 5


def test_no_progress_truncation_is_for_training_envs_only():
    cfg = EnvConfig(name="carracing", action_repeat=1, no_progress_frames=30)
    env = make_env(cfg, training=True)
    env.reset(seed=3)
    for t in range(1, 200):
        _, _, term, trunc, info = env.step(np.zeros(2, np.float32))  # standing still: no new tile
        if term or trunc:
            break
    assert trunc and not term and info["no_progress"] and 30 <= t <= 32
    stock = make_env(cfg)  # evaluation: CarRacing's own rules, the car may stand for the whole episode
    stock.reset(seed=3)
    assert not any(any(stock.step(np.zeros(2, np.float32))[2:4]) for _ in range(100))


def test_route_info_covers_the_tiles_carracing_pays_for_and_the_exits_from_the_road():
    # CarRacing's return is 1000 x (tiles visited / tiles) - 0.1 per frame: route completion must be that fraction.
    env = make_env(EnvConfig(name="carracing", max_episode_frames=600, carracing_vector="full"))
    obs, _ = env.reset(seed=3)
    ret = distance = frames = 0.0
    invasions, length = [], None
    for i in range(150):
        # Steer at the third waypoint (ego frame, + = left; CarRacing's steer + = right), swerving off at 100-109.
        x, y = obs["vector"][8:10]
        steer = float(np.clip(-math.atan2(y, x), -1, 1)) if not 100 <= i < 110 else 1.0
        obs, r, term, trunc, info = env.step(np.array([steer, 0.2], np.float32))
        if info["lane_invasion"]:
            invasions.append(i)
        ret, distance, frames = ret + r, distance + info["distance_m"], frames + info["frames"]
        length = info["route_length_m"]
        assert info["collision"] is False and info["speed_mps"] >= 0
        if term or trunc:
            break
    u = env.unwrapped
    track = np.array([(t[2], t[3]) for t in u.track])
    assert length == pytest.approx(np.hypot(*(np.roll(track, -1, axis=0) - track).T).sum())
    assert distance / length == pytest.approx(u.tile_visited_count / len(u.track))
    assert ret == pytest.approx(1000 * distance / length - 0.1 * frames)
    # It followed the road (141 of 271 tiles) and left it once, in the swerve: the exit, not each frame off it.
    assert u.tile_visited_count > 100 and len(invasions) == 1 and 100 <= invasions[0] < 110
    env.close()


def test_offroad_penalty_charges_each_frame_off_the_road_in_training_only():
    # Two envs on the same track and the same actions: the training env with the penalty, the evaluation env
    # stock. Their rewards differ by exactly the penalty in each frame the stock car has no wheel on the road.
    cfg = EnvConfig(name="carracing", action_repeat=1, no_progress_frames=0, carracing_offroad_penalty=2.5,
                    carracing_vector="full")
    train, stock = make_env(cfg, training=True), make_env(cfg)
    obs, _ = train.reset(seed=3)
    stock.reset(seed=3)
    off_frames, charged = 0, 0.0
    for i in range(160):
        x, y = obs["vector"][8:10]
        steer = float(np.clip(-math.atan2(y, x), -1, 1)) if not 100 <= i < 115 else 1.0  # swerve off at 100-114
        a = np.array([steer, 0.2], np.float32)
        obs, r, term, trunc, info = train.step(a)
        _, r_stock, *_, info_stock = stock.step(a)
        off = not on_road(stock)
        off_frames += off
        assert r == pytest.approx(r_stock - 2.5 * off)
        assert info["reward_terms"]["off_road"] == (-2.5 if off else 0.0)
        assert "reward_terms" not in info_stock
        charged += info["reward_terms"]["off_road"]
        if term or trunc:
            break
    assert 5 <= off_frames <= 60 and charged == pytest.approx(-2.5 * off_frames)
    train.close()
    stock.close()


def test_offroad_penalty_terms_are_totalled_over_the_action_repeat():
    env = make_env(EnvConfig(name="carracing", action_repeat=4, no_progress_frames=0, carracing_offroad_penalty=1.0),
                   training=True)
    env.reset(seed=3)
    for _ in range(60):  # full lock right at full throttle: off the road within a few dozen frames
        _, _, term, trunc, info = env.step(np.array([1.0, 1.0], np.float32))
        if info["reward_terms"]["off_road"] == -4.0 or term or trunc:
            break
    assert info["reward_terms"]["off_road"] == -4.0  # 4 frames off the road, 1.0 each
