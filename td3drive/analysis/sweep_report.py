"""The sweep report: per setting, the IQM of the final evaluation across seeds with a 95 %
stratified-bootstrap CI, the fraction of seeds that reached GO, the probability that one setting
beats another, and the evaluation curves with confidence bands.

It reads files only (``sweep.json``, each trial's ``trial.json``, ``report.json`` and event files),
so it works on a sweep that is still running, was interrupted, or ran on another machine.

Sweep directory (written by ``td3drive/sweep.py``)::

    DIR/sweep.json                    schema td3drive.sweep/1: grid, seeds, settings, trials
    DIR/config.yaml                   the base config
    DIR/trials/<setting>/seed<k>/     a normal run directory, plus trial.json (its outcome)
    DIR/ray/                          Ray Tune's experiment state (used by --resume)
    DIR/sweep_report.{md,json}, DIR/sweep_curves.png

A trial's final value is its last evaluation. Trials the guard stopped keep theirs (the policy
they ended with) and are counted in the table; crashed or unfinished trials have no final value
and are listed as missing, because leaving them out silently would flatter a fragile setting.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from td3drive.analysis import stats
from td3drive.analysis.events import EventReadError, read_run
from td3drive.core import tags
from td3drive.core.files import atomic_write, read_json, write_json
from td3drive.core.verdicts import GO, GO_WITH_WARNINGS, NO_GO

SWEEP_SCHEMA = "td3drive.sweep/1"
REPORT_SCHEMA = "td3drive.sweep_report/1"
SWEEP_FILE = "sweep.json"
TRIAL_FILE = "trial.json"
FINISHED, GUARD_STOP, CRASHED = "finished", "guard stop", "crashed"
INCOMPLETE, NOT_STARTED = "incomplete", "not started"  # no trial.json: interrupted, or never ran


class SweepReportError(ValueError):
    """Not a sweep directory, or an unknown metric; exit code 2."""


@dataclass
class TrialOutcome:
    name: str
    setting: int
    seed: int
    run_dir: str  # relative to the sweep directory
    status: str
    verdict: str | None = None
    steps: int | None = None
    final: float | None = None  # last value of the metric
    error: str | None = None
    guard_stop: str | None = None
    curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # steps, values


@dataclass
class SettingSummary:
    label: str
    overrides: dict[str, Any]
    seeds: int
    used: int  # seeds with a final value
    iqm: float | None
    ci: tuple[float, float] | None
    mean: float | None
    std: float | None
    go: int
    go_with_warnings: int
    no_go: int
    guard_stops: int
    missing: int  # crashed, incomplete or not started


def load_spec(root: str | Path) -> dict:
    path = Path(root) / SWEEP_FILE
    try:
        spec = json.loads(path.read_text())
    except OSError as e:
        raise SweepReportError(
            f"'{root}': not a sweep directory (cannot read {SWEEP_FILE}: {e.strerror or e})"
        ) from None
    except ValueError as e:
        raise SweepReportError(f"'{path}': not valid JSON ({e})") from None
    if not isinstance(spec, dict) or spec.get("schema") != SWEEP_SCHEMA:
        raise SweepReportError(f"'{path}': not a {SWEEP_SCHEMA} file")
    return spec


def read_trial(root: Path, trial: dict, metric: str, warnings: list[str], seen: set[str] | None = None) -> TrialOutcome:
    """One trial's outcome; ``seen`` collects every tag its event files hold."""
    run = root / trial["run_dir"]
    out = TrialOutcome(trial["name"], trial["setting"], trial["seed"], trial["run_dir"], NOT_STARTED)
    if not run.is_dir():
        return out
    info = read_json(run / TRIAL_FILE)
    out.status = info.get("status", INCOMPLETE) if info else INCOMPLETE
    if info:
        out.error, out.guard_stop, out.steps = info.get("error"), info.get("guard_stop"), info.get("steps")
    report = read_json(run / "report.json")
    out.verdict = report.get("verdict") if report else None
    try:
        read = read_run(run)
    except EventReadError:
        return out
    warnings.extend(f"{trial['name']}: {w}" for w in read.warnings)
    if seen is not None:
        seen.update(read.series)
    series = read.series.get(metric)
    if series is not None and len(series.steps):
        order = np.argsort(series.steps, kind="stable")
        steps, values = series.steps[order], series.values[order]
        keep = np.isfinite(values)
        out.curve = (steps[keep], values[keep])
        if out.status in (FINISHED, GUARD_STOP) and keep.any():
            out.final = float(values[keep][-1])
    return out


def final_values(spec: dict, outcomes: list[TrialOutcome]) -> list[np.ndarray]:
    """Per setting, the final values of its trials that have one (see the module docstring)."""
    return [np.array([o.final for o in outcomes if o.setting == i and o.final is not None])
            for i in range(len(spec["settings"]))]


def summarize(spec: dict, outcomes: list[TrialOutcome], finals_by_setting: list[np.ndarray], reps: int,
              seed: int) -> list[SettingSummary]:
    rows = []
    for i, (setting, finals) in enumerate(zip(spec["settings"], finals_by_setting)):
        mine = [o for o in outcomes if o.setting == i]
        has = len(finals) > 0
        rows.append(SettingSummary(
            label=setting["label"], overrides=setting["overrides"], seeds=len(mine), used=len(finals),
            iqm=stats.iqm(finals) if has else None,
            ci=stats.bootstrap_ci(finals, reps=reps, seed=seed) if len(finals) >= 2 else None,
            mean=float(finals.mean()) if has else None, std=float(finals.std(ddof=1)) if len(finals) >= 2 else None,
            go=sum(o.verdict == GO for o in mine),
            go_with_warnings=sum(o.verdict == GO_WITH_WARNINGS for o in mine),
            no_go=sum(o.verdict == NO_GO for o in mine),
            guard_stops=sum(o.status == GUARD_STOP for o in mine),
            missing=sum(o.status not in (FINISHED, GUARD_STOP) for o in mine),
        ))
    return rows


def improvement_matrix(finals: list[np.ndarray], reps: int, seed: int) -> list[list[dict | None]]:
    """[i][j] = {"p", "ci"}: P(setting i's final value > setting j's); None on the diagonal or without data."""
    matrix: list[list[dict | None]] = []
    for i, x in enumerate(finals):
        row: list[dict | None] = []
        for j, y in enumerate(finals):
            if i == j or len(x) == 0 or len(y) == 0:
                row.append(None)
                continue
            ci = stats.probability_of_improvement_ci(x, y, reps=reps, seed=seed) if min(len(x), len(y)) >= 2 else None
            row.append({"p": stats.probability_of_improvement(x, y), "ci": ci})
        matrix.append(row)
    return matrix


def curve_bands(outcomes: list[TrialOutcome], setting: int, reps: int, seed: int) -> dict[str, np.ndarray]:
    """IQM across seeds at each evaluation step (seeds evaluated at that step), with a 95 % CI where
    at least two seeds have a value there."""
    curves = [o.curve for o in outcomes if o.setting == setting and o.curve is not None and len(o.curve[0])]
    if not curves:
        return {}
    grid = np.unique(np.concatenate([c[0] for c in curves]))
    center, lo, hi, n = (np.full(len(grid), np.nan) for _ in range(4))
    for k, step in enumerate(grid):
        vals = np.array([c[1][c[0] == step][-1] for c in curves if (c[0] == step).any()])
        n[k] = len(vals)
        center[k] = stats.iqm(vals)
        if len(vals) >= 2:
            lo[k], hi[k] = stats.bootstrap_ci(vals, reps=reps, seed=seed)
    return {"steps": grid, "iqm": center, "lo": lo, "hi": hi, "n": n}


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def _improvement_section(rows: list[SettingSummary], matrix: list[list[dict | None]], metric: str) -> list[str]:
    """The probability-of-improvement matrix and the verdict on the best setting (more than one setting)."""
    lines = ["", "## Probability of improvement", "",
              "P(row > column): the chance that a random seed of the row's setting ends with a higher "
              f"`{metric}` than a random seed of the column's (ties count one half), with its 95 % CI. "
              "0.5 = no difference; a CI that contains 0.5 means the seeds cannot tell the two apart.", "",
              "| | " + " | ".join(f"`{r.label}`" for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for r, cells in zip(rows, matrix):
        text = []
        for cell in cells:
            if cell is None:
                text.append("—")
            else:
                ci = "" if cell["ci"] is None else f" [{cell['ci'][0]:.2f}, {cell['ci'][1]:.2f}]"
                text.append(f"{cell['p']:.2f}{ci}")
        lines.append(f"| `{r.label}` | " + " | ".join(text) + " |")
    ranked = sorted((r for r in rows if r.iqm is not None), key=lambda r: -r.iqm)
    if len(ranked) >= 2:
        a, b = ranked[0], ranked[1]
        cell = matrix[rows.index(a)][rows.index(b)]
        sure = cell is not None and cell["ci"] is not None and cell["ci"][0] > 0.5
        verdict = " — its CI excludes 0.5." if sure else " — not distinguishable from the runner-up with these seeds."
        lines += ["", f"Highest IQM: `{a.label}`; P(`{a.label}` > `{b.label}`) = {cell['p']:.2f}{verdict}"]
    return lines


def _trials_table(outcomes: list[TrialOutcome]) -> list[str]:
    """One row per trial: status (with the guard stop or error), verdict, steps, final value, report link."""
    lines = ["", "## Trials", "", "| trial | seed | status | verdict | steps | final | report |",
             "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        note = o.error or o.guard_stop
        note = "" if not note else f" ({note[:117]}...)" if len(note) > 120 else f" ({note})"
        note = note.replace("|", "\\|")  # a pipe inside a cell would end it
        link = f"[report]({o.run_dir}/report.md)" if o.verdict else "—"
        steps = "—" if o.steps is None else f"{o.steps:,}"
        lines.append(
            f"| {o.name} | {o.seed} | {o.status}{note} | {o.verdict or '—'} | {steps} | {_fmt(o.final)} | {link} |"
        )
    return lines


def to_markdown(spec: dict, metric: str, rows: list[SettingSummary], matrix: list[list[dict | None]],
                outcomes: list[TrialOutcome], reps: int, plot: str | None) -> str:
    n_settings, n_seeds = len(spec["settings"]), len(spec["seeds"])
    lines = [
        f"# Sweep report: {n_settings} setting{'s' * (n_settings != 1)} x {n_seeds} seed{'s' * (n_seeds != 1)}",
        "",
        f"Metric: `{metric}`, final value = each trial's last evaluation. IQM = mean of the middle 50 % "
        f"of the seeds' final values; 95 % CI from a stratified bootstrap ({reps:,} replicates, percentile). "
        "Trials the guard stopped keep their last evaluation; crashed or unfinished trials are counted as "
        "missing.",
        "",
        "| setting | seeds used | IQM [95% CI] | mean ± std | GO | GO w/ warnings | NO-GO | guard stops | missing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = "" if r.ci is None else f" [{_fmt(r.ci[0])}, {_fmt(r.ci[1])}]"
        spread = _fmt(r.mean) + ("" if r.std is None else f" ± {_fmt(r.std)}")
        lines.append(f"| `{r.label}` | {r.used}/{r.seeds} | {_fmt(r.iqm)}{ci} | {spread} | "
                     f"{r.go}/{r.seeds} | {r.go_with_warnings} | {r.no_go} | {r.guard_stops} | {r.missing} |")
    if len(rows) > 1:
        lines += _improvement_section(rows, matrix, metric)
    lines += _trials_table(outcomes)
    if plot:
        lines += ["", f"![{metric} across seeds]({plot})"]
    return "\n".join(lines) + "\n"


def plot_curves(spec: dict, outcomes: list[TrialOutcome], metric: str, path: Path, reps: int, seed: int) -> bool:
    """PNG: IQM of ``metric`` vs env steps per setting, shaded 95 % bootstrap CI. False if nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for i, setting in enumerate(spec["settings"]):
        band = curve_bands(outcomes, i, reps, seed)
        if not band:
            continue
        (line,) = ax.plot(band["steps"], band["iqm"], marker="o", ms=3, label=setting["label"])
        ax.fill_between(band["steps"], band["lo"], band["hi"], color=line.get_color(), alpha=0.2, linewidth=0)
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"{metric} (IQM across seeds)")
    ax.set_title(f"{len(spec['seeds'])} seeds per setting, 95% stratified-bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return True


@dataclass
class SweepReport:
    markdown: str
    data: dict[str, Any]
    outcomes: list[TrialOutcome]
    rows: list[SettingSummary]
    warnings: list[str]


def build(root: str | Path, metric: str = tags.EVAL_MEAN_REWARD, reps: int = 10_000, seed: int = 0,
          plot: bool = True) -> SweepReport:
    """Read a sweep directory and write sweep_report.md/.json (and sweep_curves.png) into it."""
    root = Path(root)
    spec = load_spec(root)
    if reps < 100:
        raise SweepReportError(f"--reps {reps}: use at least 100 bootstrap replicates")
    warnings: list[str] = []
    seen: set[str] = set()
    outcomes = [read_trial(root, t, metric, warnings, seen) for t in spec["trials"]]
    evaluated = any(t.startswith("eval/") for t in seen)
    if seen and metric not in seen and (evaluated or not metric.startswith("eval/")):
        # A typo. A sweep whose trials never got to evaluate is reported instead, every value missing.
        others = sorted(t for t in seen if t.startswith("eval/")) or sorted(seen)[:8]
        raise SweepReportError(f"--metric '{metric}': no trial logged it; logged: {', '.join(others)}")
    finals = final_values(spec, outcomes)
    rows = summarize(spec, outcomes, finals, reps, seed)
    matrix = improvement_matrix(finals, reps, seed)
    png = root / "sweep_curves.png"
    drawn = plot and plot_curves(spec, outcomes, metric, png, min(reps, 2000), seed)
    markdown = to_markdown(spec, metric, rows, matrix, outcomes, reps, png.name if drawn else None)
    data = {
        "schema": REPORT_SCHEMA, "metric": metric, "reps": reps, "grid": spec["grid"], "seeds": spec["seeds"],
        "settings": [{**asdict(r), "ci": list(r.ci) if r.ci else None} for r in rows],
        "probability_of_improvement": [[None if c is None else {"p": c["p"], "ci": list(c["ci"]) if c["ci"] else None}
                                        for c in row] for row in matrix],
        "trials": [{k: v for k, v in asdict(o).items() if k != "curve"} for o in outcomes],
        "reader_warnings": warnings,
    }
    atomic_write(root / "sweep_report.md", markdown)
    write_json(root / "sweep_report.json", data)
    return SweepReport(markdown, data, outcomes, rows, warnings)
