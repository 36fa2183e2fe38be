"""The health report: verdict, criteria matrix, findings, metric summary; Markdown, JSON and HTML.

JSON schema ``td3drive.report/1`` (stable; ``validate`` reads it)::

    {"schema": "td3drive.report/1", "run": str, "verdict": "GO" | "GO WITH WARNINGS" | "NO-GO",
     "counts": {"critical": int, "warning": int, "info": int},
     "criteria": [{"id", "criterion", "value", "threshold", "weight", "status": "pass"|"fail"|"not measured"}],
     "findings": [{"id", "severity", "title", "tag", "steps": [int], "evidence": {...}, "explanation"}],
     "metrics":  [{"tag", "count", "mean", "min", "max", "first", "final", "trend", "non_finite"}],
     "aliases": {our_tag: their_tag}, "thresholds": {name: number}, "reader_warnings": [str], "files": [str]}

Strict JSON: no NaN or Infinity literals anywhere. A number that is not finite is written as
``null``: in ``thresholds`` it means "no bound" (``episode_length_max`` by default), in ``metrics``
(``first``, ``final``, ``mean``, ...) a value that was NaN or infinite (``non_finite`` counts them),
in ``criteria[].value`` and ``evidence`` a quantity that could not be computed. Criteria rows carry
``gate``: false for rows a stage does not gate on (learning progress, update budget).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from td3drive.analysis import aliases, criteria, learning, rules
from td3drive.analysis.events import ReadResult, Series, read_run
from td3drive.core import tags, verdicts
from td3drive.core.files import atomic_write

SCHEMA = "td3drive.report/1"


@dataclass
class Report:
    run: str
    verdict: str
    criteria: list[rules.Criterion]
    findings: list[rules.Finding]
    metrics: list[dict[str, Any]]
    aliases: dict[str, str]
    thresholds: dict[str, float]
    reader_warnings: list[str]
    files: list[str]
    series: dict[str, Series] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        counts = {
            sev: sum(f.severity == sev for f in self.findings) for sev in (rules.CRITICAL, rules.WARNING, rules.INFO)
        }
        return {
            "schema": SCHEMA,
            "run": self.run,
            "verdict": self.verdict,
            "counts": counts,
            "criteria": [_clean(asdict(c)) for c in self.criteria],
            "findings": [_clean(asdict(f)) for f in self.findings],
            "metrics": [_clean(m) for m in self.metrics],
            "aliases": self.aliases,
            "thresholds": _clean(self.thresholds),
            "reader_warnings": self.reader_warnings,
            "files": self.files,
        }


def _clean(obj: Any) -> Any:
    """Strict-JSON-safe: non-finite floats become None (``null``; see the module docstring)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def _trend(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if len(v) < 3:
        return "n/a"
    w = max(1, len(v) // 5)
    a, b = float(v[:w].mean()), float(v[-w:].mean())
    scale = max(abs(a), abs(b), 1e-12)
    if abs(b - a) / scale < 0.1:
        return "flat"
    return "up" if b > a else "down"


def summarize(series: dict[str, Series]) -> list[dict[str, Any]]:
    """count, mean, min, max, first, final and trend of every series (non-finite values counted apart)."""
    rows = []
    for tag in sorted(series):
        v = series[tag].values
        fin = v[np.isfinite(v)]
        stat = (lambda f: float(f(fin))) if len(fin) else (lambda f: float("nan"))
        rows.append({
            "tag": tag, "count": int(len(v)), "mean": stat(np.mean), "min": stat(np.min), "max": stat(np.max),
            "first": float(v[0]), "final": float(v[-1]), "trend": _trend(v), "non_finite": int(len(v) - len(fin)),
        })
    return rows


def read_run_config(run: Path) -> dict[str, Any] | None:
    """The run's config.yaml if it has one (td3drive runs do); never fails the analysis."""
    f = run / "config.yaml" if run.is_dir() else run.parent / "config.yaml"
    try:
        data = yaml.safe_load(f.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def analyze(
    run: str | Path,
    criteria_file: str | Path | None = None,
    stage: str | None = None,
    env: str | None = None,
    data: ReadResult | None = None,
) -> Report:
    """Read a run's event files and apply the health rules. Raises EventReadError / CriteriaError.

    With ``stage`` the stage's criteria apply and every criterion of the matrix is a gate.
    """
    run = Path(run)
    data = data or read_run(run)
    config = read_run_config(run)
    env = env or ((config or {}).get("env") or {}).get("name")
    thresholds = criteria.resolve(criteria_file, env=env, stage=stage, run_config=config)
    max_grad_norm = ((config or {}).get("agent") or {}).get("max_grad_norm")
    canon, used = aliases.canonical(data.series)
    budget = learning.update_budget(data.series, config)
    findings, matrix = rules.evaluate_rules(canon, thresholds, max_grad_norm, budget)
    return Report(
        run=str(run),
        verdict=rules.verdict(findings, matrix if stage is not None else None),
        criteria=matrix,
        findings=findings,
        metrics=summarize(data.series),
        aliases=used,
        thresholds=thresholds,
        reader_warnings=data.warnings,
        files=[str(f) for f in data.files],
        series=canon,
    )


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _cell(x: Any) -> str:
    """A Markdown table cell: formatted, with pipes escaped."""
    return (x if isinstance(x, str) else _fmt(x)).replace("|", "\\|")


def headline(r: Report) -> list[str]:
    """The report's first lines: learning progress, whether the policy uses its camera (from the input
    ablations; "not measured" when the run logged none), update budget, driving (route backends), and the most
    severe other finding."""
    out = []
    headed = (("learning_progress", "Learning"), ("camera_use", "Camera"), ("update_budget", "Update budget"),
              ("driving", "Driving"))
    for fid, label in headed:
        f = next((f for f in r.findings if f.id == fid), None)
        if f is not None:
            text = f.title if fid == "update_budget" else f.title.split(": ", 1)[1]
            out.append(f"- {label}: {text}" + (f" [{f.severity}]" if f.severity != rules.INFO else ""))
        elif fid == "camera_use":
            out.append("- Camera: not measured (no input ablation logged: training.ablation_freq, or "
                       "`td3drive eval RUN --ablate`)")
    top = next((f for f in r.findings if f.severity != rules.INFO and f.id not in dict(headed)), None)
    if top is not None:
        out.append(f"- Most severe other finding: [{top.severity}] {top.title} (`{top.id}`)")
    skipped = r.series.get(tags.EVALS_SKIPPED)
    if skipped is not None and len(skipped.values) and skipped.values[-1] > 0:
        out.append(f"- Evaluations skipped: {int(skipped.values[-1])} (the evaluator was still busy when newer policy "
                   "snapshots replaced them)")
    return out + [""] if out else []


def to_markdown(r: Report) -> str:
    lines = [f"# Health report: {r.run}", "", f"**Verdict: {r.verdict}**", ""]
    counts = r.to_dict()["counts"]
    lines += [f"{counts['critical']} critical, {counts['warning']} warning, {counts['info']} info findings.", ""]
    lines += headline(r)
    lines += ["## Criteria", "", "| criterion | value | threshold | weight | status |", "|---|---|---|---|---|"]
    for c in r.criteria:
        status = {"pass": "pass", "fail": "**FAIL**", "not measured": "not measured"}[c.status]
        lines.append(f"| {_cell(c.criterion)} | {_cell(c.value)} | {_cell(c.threshold)} | {c.weight} | {status} |")
    lines += ["", "## Findings", ""]
    if not r.findings:
        lines.append("None.")
    for f in r.findings:
        ev = ", ".join(f"{k}={_fmt(v)}" for k, v in f.evidence.items())
        lines += [f"### [{f.severity}] {f.title} (`{f.id}`)", "", f"Evidence: {ev}", ""]
        if f.steps:
            lines += [f"Steps: {', '.join(map(str, f.steps[:20]))}", ""]
        lines += [f.explanation, ""]
    lines += [
        "## Metrics",
        "",
        "| tag | count | mean | min | max | first | final | trend |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in r.metrics:
        nf = f" ({m['non_finite']} non-finite)" if m["non_finite"] else ""
        lines.append(f"| {m['tag']} | {m['count']}{nf} | {_fmt(m['mean'])} | {_fmt(m['min'])} | {_fmt(m['max'])} | "
                     f"{_fmt(m['first'])} | {_fmt(m['final'])} | {m['trend']} |")
    if r.aliases:
        lines += [
            "",
            "Read under our names: " + ", ".join(f"`{theirs}` as `{ours}`" for ours, theirs in r.aliases.items()),
        ]
    if r.reader_warnings:
        lines += ["", "## Reader warnings", ""] + [f"- {w}" for w in r.reader_warnings]
    return "\n".join(lines) + "\n"


def strict_json(obj: Any) -> str:
    """``obj`` as strict JSON (non-finite numbers as null; ``allow_nan=False`` guards against any left)."""
    return json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n"


def to_json(r: Report) -> str:
    return strict_json(r.to_dict())


SPARSE = 30  # a series with at most this many points is drawn with markers (evaluations, short runs)
PANEL_COLUMNS = 3


def _smoothed(values: np.ndarray) -> np.ndarray:
    """Trailing mean over ~2 % of the points (at least 5): the trend of a noisy series, drawn over it."""
    w = max(5, len(values) // 50)
    finite = np.where(np.isfinite(values), values, np.nan)
    csum = np.nancumsum(finite)
    count = np.cumsum(np.isfinite(values))
    lo = np.maximum(np.arange(len(values)) - w, -1)
    total = csum - np.where(lo >= 0, csum[np.maximum(lo, 0)], 0.0)
    n = count - np.where(lo >= 0, count[np.maximum(lo, 0)], 0)
    return np.divide(total, n, out=np.full(len(values), np.nan), where=n > 0)


def _panel_groups(r: Report) -> list[tuple[str, list[str]]]:
    """(section, tags): the return curves first, then one section per tag prefix; alerts are marked, not drawn."""
    first = [t for t in (tags.EVAL_MEAN_REWARD, tags.EPISODE_REWARD) if t in r.series]
    groups: dict[str, list[str]] = {}
    for tag in sorted(r.series):
        prefix = tag.split("/")[0] if "/" in tag else "other"
        if tag not in first and prefix != "alerts":
            groups.setdefault(prefix, []).append(tag)
    return ([("return", first)] if first else []) + list(groups.items())


def _plots(r: Report) -> list[tuple[str, str, int]]:
    """(section, base64 PNG, panels) per section: one small panel per metric with its own y axis (episode
    lengths of 1,000 and losses of 0.05 never share one), markers on sparse series, a smoothed line over
    noisy ones, red lines at steps where an alert fired and red dots at steps findings name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alert_steps = sorted({
        int(s) for t in tags.ALERTS if t in r.series for s, v in zip(r.series[t].steps, r.series[t].values) if v >= 1
    })
    out = []
    for section, members in _panel_groups(r):
        cols = min(PANEL_COLUMNS, len(members))
        rows = -(-len(members) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.5 * rows), squeeze=False)
        for ax, tag in zip(axes.flat, members):
            s = r.series[tag]
            if len(s.values) <= SPARSE:
                ax.plot(s.steps, s.values, marker="o", markersize=3, linewidth=1)
            else:
                ax.plot(s.steps, s.values, linewidth=0.8, alpha=0.3, color="C0")
                ax.plot(s.steps, _smoothed(s.values), linewidth=1.4, color="C0")
            marked = {st for f in r.findings if f.tag == tag and f.severity != rules.INFO for st in f.steps}
            if marked:
                idx = np.isin(s.steps, list(marked))
                ax.scatter(s.steps[idx], s.values[idx], color="red", zorder=3, s=14)
            for st in alert_steps[:200]:
                ax.axvline(st, color="red", alpha=0.15, linewidth=1)
            finite = s.values[np.isfinite(s.values)]
            if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 1e4:
                ax.set_yscale("log")
            elif len(finite) and np.abs(finite).max() > 1e4:
                ax.set_yscale("symlog")
            ax.set_title(tag, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(members):]:
            ax.axis("off")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        out.append((section, base64.b64encode(buf.getvalue()).decode(), len(members)))
    return out


def to_html(r: Report) -> str:
    """One self-contained page: the Markdown content as HTML tables plus embedded plots."""
    esc = html.escape
    counts = r.to_dict()["counts"]
    color = {verdicts.GO: "#1a7f37", verdicts.GO_WITH_WARNINGS: "#9a6700", verdicts.NO_GO: "#cf222e"}[r.verdict]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>td3drive report</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.critical{color:#cf222e}"
        ".warning{color:#9a6700}.info{color:#555}</style></head><body>",
        f"<h1>Health report: {esc(r.run)}</h1><h2 style='color:{color}'>Verdict: {esc(r.verdict)}</h2>",
        f"<p>{counts['critical']} critical, {counts['warning']} warning, {counts['info']} info findings.</p>",
        "<ul>" + "".join(f"<li>{esc(line[2:])}</li>" for line in headline(r) if line) + "</ul>",
        "<h2>Criteria</h2><table><tr><th>criterion</th><th>value</th><th>threshold</th><th>weight</th><th>status</th></tr>",
    ]
    for c in r.criteria:
        parts.append(f"<tr><td>{esc(c.criterion)}</td><td>{esc(_fmt(c.value))}</td><td>{esc(c.threshold)}</td>"
                     f"<td>{c.weight}</td><td>{esc(c.status)}</td></tr>")
    parts.append("</table><h2>Findings</h2>")
    for f in r.findings:
        ev = ", ".join(f"{k}={_fmt(v)}" for k, v in f.evidence.items())
        parts.append(
            f"<h3 class='{f.severity}'>[{f.severity}] {esc(f.title)}</h3><p><code>{esc(ev)}</code></p>"
            f"<p>{esc(f.explanation)}</p>"
        )
    parts.append("<h2>Plots</h2><p>One panel per metric against env steps; sparse series with markers, noisy "
                 "ones raw (faint) with a trailing mean over them; red lines: steps where an alerts/* tag fired; "
                 "red dots: steps named by findings.</p>")
    for group, png, _ in _plots(r):
        parts.append(f"<h3>{esc(group)}</h3><img alt='{esc(group)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Metrics</h2><table><tr><th>tag</th><th>count</th><th>mean</th><th>min</th><th>max</th><th>first</th><th>final</th><th>trend</th></tr>")
    for m in r.metrics:
        parts.append(
            "<tr>"
            + "".join(
                f"<td>{esc(_fmt(m[k]))}</td>" for k in ("tag", "count", "mean", "min", "max", "first", "final", "trend")
            )
            + "</tr>"
        )
    parts.append("</table>")
    if r.reader_warnings:
        parts.append(
            "<h2>Reader warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in r.reader_warnings) + "</ul>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


RENDERERS = {"md": to_markdown, "json": to_json, "html": to_html}


def write_report(r: Report, run_dir: str | Path) -> None:
    """report.md and report.json into a run directory."""
    d = Path(run_dir)
    atomic_write(d / "report.md", to_markdown(r))
    atomic_write(d / "report.json", to_json(r))


def write_run_report(run_dir: str | Path, criteria_file: str | Path | None, stage: str | None,
                     log: Callable[[str], None]) -> str | None:
    """The end-of-run report of a training run: report.md and report.json from its event files (the
    analyzer sees what anyone would). Returns the verdict, or None (logged why) when none could be written."""
    from td3drive.analysis.criteria import CriteriaError
    from td3drive.analysis.events import EventReadError

    try:
        r = analyze(run_dir, criteria_file, stage=stage)
    except (EventReadError, CriteriaError) as e:
        log(f"[yellow]report not written: {e}[/]")
        return None
    write_report(r, run_dir)
    counts = r.to_dict()["counts"]
    log(f"verdict: [bold]{r.verdict}[/] ({counts['critical']} critical, {counts['warning']} warnings) "
        f"- {Path(run_dir) / 'report.md'}")
    camera = next((f for f in r.findings if f.id == "camera_use"), None)
    if camera is not None:  # the question a visual driving run must answer, said where the run ends
        log(camera.title if camera.severity == rules.INFO else f"[yellow]{camera.title}[/]")
    return r.verdict
