import numpy as np

from td3drive.analysis.events import read_run
from td3drive.collect import Counters, EpisodeEnd
from td3drive.core import tags
from td3drive.evaluate import EvalResult
from td3drive.run_log import RunLog


def result(returns):
    r = np.asarray(returns, float)
    return EvalResult(r, np.full(len(r), 250), np.zeros(len(r), bool))


def test_log_points_episodes_and_evaluations_land_at_their_steps(tmp_path):
    lines: list[str] = []
    log = RunLog(tmp_path, lines.append, purge_step=None)
    log.start_rates_at(step=0, updates=0)
    log.pending.update({tags.Q1: 3.5})
    log.point(step=100, frames=400, updates=50, extra={tags.BUFFER_SIZE: 100.0})
    log.episode(EpisodeEnd(12.5, 80, {"progress": 2.0}, step=80))
    log.frames_at_eval[100] = 400
    written = log.evaluations([(100, result([10.0, 30.0])), (200, None)], step=250)
    log.close()
    assert written == [(100, {tags.EVAL_MEAN_REWARD: 20.0, tags.EVAL_MEAN_LENGTH: 250.0, tags.EVAL_SUCCESS_RATE: 0.0})]
    assert log.evals_skipped == 1 and log.pending == {}
    s = read_run(tmp_path).series
    assert s[tags.Q1].steps.tolist() == [100] and s[tags.FRAMES].values.tolist() == [400.0]
    assert s[tags.UPDATES_PER_S].values[0] > 0 and s[tags.BUFFER_SIZE].values.tolist() == [100.0]
    assert s[tags.EPISODE_REWARD].steps.tolist() == [80] and s[tags.env_reward("progress")].values.tolist() == [2.0]
    assert s[tags.EVAL_MEAN_REWARD].steps.tolist() == [100] and s[tags.EVALS_SKIPPED].steps.tolist() == [250]
    assert "eval at step 100 (400 frames): return 20.0 ± 10.0" in lines[0]
    assert "evaluation at step 200 skipped" in lines[1]


def test_progress_line_shows_frames_rates_return_q_and_alerts(tmp_path):
    log = RunLog(tmp_path, print, purge_step=None)
    log.last_values = {tags.ENV_STEPS_PER_S: 11.0, tags.UPDATES_PER_S: 10.5, tags.Q1: 240.25}
    text = log.progress_info(Counters(frames=123_456, last_episode_return=701.9), "q_value_explosion x1")
    log.close()
    assert "123,456 frames" in text and "11.0 steps/s" in text and "10.5 upd/s" in text
    assert "701.9" in text and "Q   240.25" in text and "alerts: q_value_explosion x1" in text
