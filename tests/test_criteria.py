import pytest

from td3drive.analysis.criteria import DEFAULTS, CriteriaError, load_criteria_file, resolve


def test_precedence_defaults_run_config_file_env_stage(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "defaults: {q_abs_max: 5000}\nenvs:\n  carracing: {q_abs_max: 3000}\n"
        "stages:\n  '5000': {grad_norm_warning: 10000}\n"
    )
    run_cfg = {"guard": {"grad_norm_critical": 70000}, "training": {"learning_starts": 500}}
    th = resolve(f, env="carracing", stage="5000", run_config=run_cfg)
    assert th["q_abs_max"] == 3000 and th["grad_norm_warning"] == 10000
    assert th["grad_norm_critical"] == 70000 and th["learning_starts"] == 500
    assert resolve()["q_abs_max"] == DEFAULTS["q_abs_max"] == 10_000


@pytest.mark.parametrize("text, match", [
    ("defaults: {q_abs_max: -1}", "q_abs_max = -1"),
    ("defaults: {q_abs_max: high}", "must be a number"),
    ("limits: {}", "top-level keys"),
    ("stages: [1, 2]", "'stages' must map"),
    ("defaults: [", "not valid YAML"),
])
def test_bad_criteria_files(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(CriteriaError, match=match):
        load_criteria_file(f)
