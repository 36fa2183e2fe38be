import json

import numpy as np
import pytest

from td3drive.analysis.criteria import CriteriaError
from td3drive.analysis.report import analyze, to_html, to_json, to_markdown
from td3drive.core import tags
from tests.synthetic import healthy, reference_failure, write_run


def test_reference_failure_is_no_go_with_the_three_causes(tmp_path):
    r = analyze(reference_failure(tmp_path / "ref"))
    assert r.verdict == "NO-GO"
    crit = {(f.id, f.tag) for f in r.findings if f.severity == "critical"}
    assert ("actor_loss_divergence", "train/actor_loss") in crit
    assert ("critic_exploitation", "train/actor_loss") in crit
    assert ("dead_network", "gradients/actor_mlp_norm") in crit
    div = next(f for f in r.findings if f.id == "actor_loss_divergence")
    assert div.evidence["from_step"] == 2600 and div.evidence["to_step"] == 5000
    assert div.evidence["last"] == pytest.approx(-2.76e9, rel=1e-3)
    assert "do not follow" in div.explanation  # Q stayed within 39..72
    status = {c.id: c.status for c in r.criteria}
    assert status["actor_loss"] == status["critic_exploitation"] == status["dead_network"] == "fail"
    assert status["grad_norm"] == "pass"  # small norms: clipping was never the problem


def test_healthy_run_is_go(tmp_path):
    r = analyze(healthy(tmp_path / "ok", config="agent:\n  max_grad_norm: 10.0\n"))
    assert r.verdict == "GO", [(f.id, f.severity) for f in r.findings if f.severity != "info"]
    assert {c.status for c in r.criteria if c.gate} == {"pass"}  # learning rows are reported, not gated


def test_renderings(tmp_path):
    r = analyze(reference_failure(tmp_path / "ref"))
    md = to_markdown(r)
    assert "**Verdict: NO-GO**" in md and "| train/actor_loss | 25 |" in md
    d = json.loads(to_json(r))
    assert d["schema"] == "td3drive.report/1" and d["verdict"] == "NO-GO" and d["counts"]["critical"] >= 3
    m = {x["tag"]: x for x in d["metrics"]}["train/q1_value"]
    assert m["count"] == 25 and 38 < m["first"] < 40 and 71 < m["final"] < 73
    page = to_html(r)
    assert page.count("data:image/png;base64,") >= 2 and "NO-GO" in page


def test_plots_have_one_panel_per_metric_return_first_and_alerts_only_marked(tmp_path):
    from td3drive.analysis.report import _panel_groups, _plots, _smoothed

    r = analyze(reference_failure(tmp_path / "ref"))
    groups = _panel_groups(r)
    drawn = [t for _, members in groups for t in members]
    assert sorted(drawn) == sorted(t for t in r.series if not t.startswith("alerts/"))  # each metric once
    if "train/episode_reward" in r.series or "eval/mean_reward" in r.series:
        assert groups[0][0] == "return"
    plots = _plots(r)
    assert [(name, n) for name, _, n in plots] == [(name, len(m)) for name, m in groups]
    # the trailing mean: a step of 10 at index 100 is reached gradually, NaN ignored
    v = np.r_[np.zeros(100), np.full(100, 10.0)]
    v[150] = np.nan
    m = _smoothed(v)
    assert m[99] == 0 and 0 < m[101] < 10 and m[199] == pytest.approx(10) and np.isfinite(m).all()


def test_criteria_file_sections_and_errors(tmp_path):
    run = healthy(tmp_path / "ok", config="agent: {max_grad_norm: 10.0}\n")
    crit = tmp_path / "c.yaml"
    crit.write_text("defaults: {q_abs_max: 30}\nstages:\n  '5000': {q_abs_max: 1000}\n")
    assert analyze(run, crit).verdict == "NO-GO"  # Q reaches ~50 > 30
    assert analyze(run, crit, stage="5000").verdict == "GO"
    with pytest.raises(CriteriaError, match="stages 5000"):
        analyze(run, crit, stage="50000")
    crit.write_text("defaults: {q_max: 30}\n")
    with pytest.raises(CriteriaError, match="unknown key 'q_max'"):
        analyze(run, crit)


def test_sb3_and_cleanrl_tags_are_read_under_our_names(tmp_path):
    import numpy as np

    from tests.synthetic import write_run

    steps = np.arange(1, 11) * 100
    run = write_run(tmp_path / "clean", {
        "losses/qf1_values": (steps, np.linspace(1, 5, 10)),
        "losses/actor_loss": (steps, -250.0 * 4.0 ** np.arange(10)),
        "charts/episodic_return": (steps, np.linspace(0, 10, 10)),
        "charts/SPS": (steps, np.full(10, 300.0)),
    })
    r = analyze(run)
    assert r.aliases["train/q1_value"] == "losses/qf1_values"
    assert r.verdict == "NO-GO" and any(f.id == "critic_exploitation" for f in r.findings)
    assert "charts/SPS" in {m["tag"] for m in r.metrics}


def test_analysis_never_imports_torch_or_the_trainer():
    import subprocess
    import sys

    code = (
        "import sys; import td3drive.analysis.report, td3drive.analysis.compare, td3drive.analysis.cli; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('td3drive.train') "
        "or m.startswith('td3drive.agent')]; "
        "assert not bad, bad"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_stage_gates_on_every_criterion(tmp_path):
    cfg = "agent: {max_grad_norm: 10.0}\nenv: {name: carracing, max_episode_frames: 1000}\n"
    run = healthy(tmp_path / "ok", config=cfg)
    # Without a stage the run is GO; the built-in stage criteria (section 9) pass too.
    assert analyze(run).verdict == "GO"
    r = analyze(run, stage="5000")
    assert r.verdict == "GO" and r.thresholds["q_abs_max"] == 1000 and r.thresholds["grad_norm_warning"] == 10_000
    ep = next(c for c in r.criteria if c.id == "episode_length_range")
    assert ep.status == "pass" and ep.value == 1000 and r.thresholds["episode_length_min"] == 100  # 0.1 x 1000
    # A stage that expects longer episodes fails that criterion alone, and a failed criterion is NO-GO
    # even though no finding is worse than info.
    crit = tmp_path / "c.yaml"
    crit.write_text("stages:\n  '5000': {episode_length_min: 1001}\n")
    r = analyze(run, crit, stage="5000")
    assert r.verdict == "NO-GO" and [c.id for c in r.criteria if c.status == "fail"] == ["episode_length_range"]
    assert {f.severity for f in r.findings} == {"info"}
    # Episode lengths are in agent steps: at action repeat 4 the 1,000-frame limit is 250 steps.
    repeat4 = healthy(
        tmp_path / "r4", config=cfg.replace("max_episode_frames: 1000", "max_episode_frames: 1000, action_repeat: 4")
    )
    assert analyze(repeat4, stage="5000").thresholds["episode_length_min"] == 25
    # Q below 1000 is a stage gate: the same Q (~50) fails a stage that allows 40.
    crit.write_text("stages:\n  '5000': {q_abs_max: 40}\n")
    assert [c.id for c in analyze(run, crit, stage="5000").criteria if c.status == "fail"] == ["q_value"]


def test_report_json_is_strict_json(tmp_path):
    def strict(text):
        def refuse(name):
            raise ValueError(f"non-standard JSON literal {name}")
        return json.loads(text, parse_constant=refuse)

    runs = [reference_failure(tmp_path / "ref"),
            write_run(tmp_path / "nan", {tags.CRITIC_LOSS: (np.arange(10), np.r_[np.ones(8), np.nan, np.inf])})]
    for run in runs:
        for stage in (None, "5000"):
            d = strict(to_json(analyze(run, stage=stage)))
            assert d["thresholds"]["episode_length_max"] is None  # no bound: null, not Infinity
    m = {x["tag"]: x for x in d["metrics"]}[tags.CRITIC_LOSS]
    assert m["final"] is None and m["non_finite"] == 2


def test_html_report_renders_its_panels_in_a_headless_browser(tmp_path):
    import shutil
    import subprocess

    import imageio.v2 as imageio

    browser = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is None:
        pytest.skip("no Chromium or Chrome installed (apt install chromium) to screenshot the HTML report")
    page, shot = tmp_path / "r.html", tmp_path / "r.png"
    page.write_text(to_html(analyze(reference_failure(tmp_path / "ref"))))
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
                    "--window-size=1000,4000", page.as_uri()], capture_output=True, timeout=120)
    img = imageio.imread(shot)[..., :3].astype(int)
    assert img.shape[:2] == (4000, 1000)
    # matplotlib's first colour (31, 119, 180) is every panel's line: drawn, the page shows it in quantity.
    blue = (np.abs(img - np.array([31, 119, 180])).sum(axis=-1) < 60).sum()
    assert blue > 2000, blue


def test_headline_says_how_a_route_backend_drives(tmp_path):
    from td3drive.analysis.report import headline

    steps = np.array([5000, 10000])
    run = write_run(tmp_path / "drive", {tags.EVAL_ROUTE_COMPLETION: (steps, np.array([40.0, 98.5])),
                                         tags.EVAL_LANE_INVASIONS_PER_KM: (steps, np.array([9.0, 1.66]))})
    lines = headline(analyze(run))
    assert "- Driving: route 98.5 % (40.0 % at the first evaluation), 1.66 lane invasions/km at step 10,000" in lines


def test_headline_and_html_say_whether_the_camera_is_used(tmp_path):
    from td3drive.analysis.report import headline

    steps = np.array([5000, 10000])
    frozen = tags.ablated(tags.EVAL_MEAN_REWARD, "camera_frozen")
    run = write_run(tmp_path / "blind", {tags.EVAL_MEAN_REWARD: (steps, np.array([-40.0, 711.8])),
                                         frozen: (steps, np.array([-45.0, 703.2])),
                                         tags.drop_ci("camera_frozen", "low"): (steps, np.array([-8.0, -2.0])),
                                         tags.drop_ci("camera_frozen", "high"): (steps, np.array([15.0, 19.0]))})
    r = analyze(run)
    camera = next(line for line in headline(r) if line.startswith("- Camera: "))
    assert camera.startswith("- Camera: the policy does not use its camera: with the camera frozen it still "
                             "returns 703.2 (normal 711.8") and camera.endswith("[warning]")
    assert to_markdown(r).split("## Criteria")[0].count("does not use its camera") == 1  # before the tables
    page = to_html(r)
    assert page.index("does not use its camera") < page.index("<h2>Criteria</h2>")
    unmeasured = headline(analyze(write_run(tmp_path / "plain", {})))
    assert any(line.startswith("- Camera: not measured") for line in unmeasured)
