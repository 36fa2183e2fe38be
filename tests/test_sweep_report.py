import json
import subprocess
import sys

import numpy as np
import pytest

from td3drive.analysis import sweep_report
from td3drive.analysis.sweep_report import SweepReportError, build, curve_bands
from tests.synthetic import write_run

EVAL = "eval/mean_reward"


def make_sweep(root):
    """Two settings x four seeds with every kind of outcome, as `td3drive sweep` lays them out."""
    settings = [{"label": "lr=0.001", "overrides": {"agent.actor_lr": 0.001}},
                {"label": "lr=1", "overrides": {"agent.actor_lr": 1.0}}]
    trials = [{"name": f"{s['label']}/seed{k}", "setting": i, "seed": k, "run_dir": f"trials/{s['label']}/seed{k}"}
              for i, s in enumerate(settings) for k in range(4)]
    spec = {"schema": "td3drive.sweep/1", "grid": {"agent.actor_lr": [0.001, 1.0]}, "seeds": [0, 1, 2, 3],
            "settings": settings, "trials": trials, "resources": {"cpu": 1, "gpu": 0, "max_concurrent": None},
            "criteria": None}
    root.mkdir()
    (root / "sweep.json").write_text(json.dumps(spec))

    def trial(name, evals, status, verdict):
        run = write_run(root / "trials" / name, {EVAL: (np.array([100, 200][: len(evals)]), np.array(evals))})
        if status:
            (run / "trial.json").write_text(
                json.dumps(
                    {
                        "status": status,
                        "steps": 100 * len(evals),
                        "error": "RuntimeError: boom" if status == "crashed" else None,
                    }
                )
            )
        if verdict:
            (run / "report.json").write_text(json.dumps({"verdict": verdict}))

    # Setting lr=0.001: final returns 10, 20, 30, 40; three GO, one NO-GO.
    for k, (final, verdict) in enumerate([(10, "GO"), (20, "GO"), (30, "NO-GO"), (40, "GO")]):
        trial(f"lr=0.001/seed{k}", [k + 1.0, final], "finished", verdict)
    # Setting lr=1: one finished (5), one guard-stopped after its first evaluation (1), one crashed
    # (its evaluation of 50 must not count), one never started.
    trial("lr=1/seed0", [0.0, 5.0], "finished", "GO WITH WARNINGS")
    trial("lr=1/seed1", [1.0], "guard stop", "NO-GO")
    trial("lr=1/seed2", [50.0], "crashed", None)
    return root


def test_statistics_match_a_hand_computation(tmp_path):
    root = make_sweep(tmp_path / "sweep")
    r = build(root, reps=4000)
    a, b = r.rows
    # IQM of 10, 20, 30, 40 = mean(20, 30); of the two usable seeds 5 and 1 (nothing trimmed) = 3.
    assert (a.iqm, a.used, a.seeds, a.go, a.no_go, a.missing) == (25.0, 4, 4, 3, 1, 0)
    assert (b.iqm, b.used, b.go, b.go_with_warnings, b.guard_stops, b.missing) == (3.0, 2, 0, 1, 1, 2)
    assert a.mean == 25.0 and a.std == pytest.approx(np.std([10, 20, 30, 40], ddof=1))
    assert 10.0 <= a.ci[0] < 25.0 < a.ci[1] <= 40.0 and b.ci == (pytest.approx(1.0), pytest.approx(5.0))
    # Every seed of lr=0.001 beats every usable seed of lr=1.
    poi = r.data["probability_of_improvement"]
    assert poi[0][1]["p"] == 1.0 and poi[1][0]["p"] == 0.0 and poi[0][0] is None
    statuses = {o.name: (o.status, o.final) for o in r.outcomes}
    assert statuses["lr=1/seed1"] == ("guard stop", 1.0)
    assert statuses["lr=1/seed2"] == ("crashed", None) and statuses["lr=1/seed3"] == ("not started", None)
    # The curve: IQM across seeds at each evaluation step, CI where two or more seeds have a value.
    band = curve_bands(r.outcomes, 0, 1000, 0)
    assert band["steps"].tolist() == [100, 200] and band["iqm"].tolist() == [2.5, 25.0]


def test_files_written_and_the_markdown_says_what_is_missing(tmp_path):
    root = make_sweep(tmp_path / "sweep")
    r = build(root, reps=1000)
    md = (root / "sweep_report.md").read_text()
    assert md.startswith("# Sweep report: 2 settings x 4 seeds")
    assert "| `lr=0.001` | 4/4 | 25.0 [" in md and "| `lr=1` | 2/4 | 3.0 [" in md
    assert "crashed (RuntimeError: boom)" in md and "not started" in md
    assert "Highest IQM: `lr=0.001`" in md
    data = json.loads((root / "sweep_report.json").read_text())
    assert data["schema"] == "td3drive.sweep_report/1" and data["settings"][0]["iqm"] == 25.0
    png = (root / "sweep_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert r.markdown == md


def test_bad_input(tmp_path):
    with pytest.raises(SweepReportError, match="not a sweep directory"):
        build(tmp_path)
    (tmp_path / "sweep.json").write_text("{\"schema\": \"other\"}")
    with pytest.raises(SweepReportError, match="not a td3drive.sweep/1 file"):
        build(tmp_path)
    root = make_sweep(tmp_path / "s")
    with pytest.raises(SweepReportError, match="--metric 'eval/nope': no trial logged it; logged: eval/mean_reward"):
        build(root, metric="eval/nope")
    assert not (root / "sweep_report.md").exists()
    out = subprocess.run([sys.executable, "-m", "td3drive.cli", "sweep-report", str(tmp_path / "nope")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a sweep directory" in out.stderr


def test_cli_prints_the_report(tmp_path):
    root = make_sweep(tmp_path / "sweep")
    out = subprocess.run(
        [sys.executable, "-m", "td3drive.cli", "sweep-report", str(root), "--reps", "500", "--no-plot"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Sweep report") and not (root / "sweep_curves.png").exists()
    assert sweep_report.SWEEP_FILE == "sweep.json"


def test_a_sweep_that_never_evaluated_is_reported_not_refused(tmp_path):
    root = make_sweep(tmp_path / "sweep")
    for run in (root / "trials").glob("*/*"):  # every trial stopped before its first evaluation
        for f in run.glob("events.out.tfevents.*"):
            f.unlink()
        write_run(run, {"train/critic_loss": (np.array([64]), np.array([1.0]))})
    r = build(root, reps=500)
    assert [row.used for row in r.rows] == [0, 0] and [row.iqm for row in r.rows] == [None, None]
    assert "| `lr=1` | 0/4 | — |" in r.markdown and not (root / "sweep_curves.png").exists()
