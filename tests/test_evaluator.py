import pytest

from td3drive.config import build_config
from td3drive.evaluator import SyncEvaluator, make_evaluator


@pytest.mark.parametrize("sets, expected", [
    (["training.eval_freq=0"], None),
    # No evaluation falls within the run: no evaluation process is started (nor closed at the end).
    (["training.eval_freq=1001"], None),
    (["training.eval_freq=1001", "training.eval_at_start=true"], SyncEvaluator),
    (["training.eval_freq=1000"], SyncEvaluator),
])
def test_an_evaluator_only_when_an_evaluation_falls_within_the_run(tiny_sets, sets, expected):
    cfg = build_config(sets=tiny_sets + ["training.max_timesteps=1000", "training.eval_async=false", *sets])
    evaluator = make_evaluator(cfg, 4)
    try:
        assert (None if evaluator is None else type(evaluator)) is expected
    finally:
        if evaluator is not None:
            evaluator.close()
