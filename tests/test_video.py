import numpy as np

from td3drive.video import step_ms, video_frame, write_gif


def test_real_time_for_carracing_and_25_steps_per_second_elsewhere():
    assert step_ms("carracing", 4) == 80.0 and step_ms("carracing", 1) == 20.0
    assert step_ms("lanekeep", 4) == 40.0


def test_gif_keeps_the_frame_count_and_the_per_frame_duration(tmp_path):
    from PIL import Image

    frames = [video_frame(np.full((84, 84), v, np.uint8), None, height=84) for v in (0, 120, 240)]
    write_gif(tmp_path / "v.gif", frames, per_step_ms=80.0)
    with Image.open(tmp_path / "v.gif") as im:
        assert im.n_frames == 3 and im.info["duration"] == 80
