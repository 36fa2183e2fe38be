"""``td3drive compare RUN_A RUN_B``: every shared metric side by side, and which findings changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from td3drive.analysis.report import _clean, _fmt, analyze, strict_json


def compare(run_a: str | Path, run_b: str | Path, criteria_file: str | Path | None = None) -> dict[str, Any]:
    """Analyze both runs; return verdicts, a row per shared metric and the findings that (dis)appeared."""
    a, b = analyze(run_a, criteria_file), analyze(run_b, criteria_file)
    ma = {m["tag"]: m for m in a.metrics}
    mb = {m["tag"]: m for m in b.metrics}
    rows = []
    for tag in sorted(set(ma) & set(mb)):
        fa, fb = ma[tag]["final"], mb[tag]["final"]
        rows.append({
            "tag": tag, "a_final": fa, "b_final": fb, "change": fb - fa,
            "ratio": (fb / fa) if fa not in (0.0,) else None,
            "a_mean": ma[tag]["mean"], "b_mean": mb[tag]["mean"],
            "a_max": ma[tag]["max"], "b_max": mb[tag]["max"],
        })
    key = lambda r: {(f.id, f.tag): f for f in r.findings if f.severity != "info"}
    fa, fb = key(a), key(b)
    brief = lambda f: {"id": f.id, "severity": f.severity, "title": f.title, "tag": f.tag}
    return _clean({
        "run_a": str(run_a), "run_b": str(run_b), "verdict_a": a.verdict, "verdict_b": b.verdict,
        "metrics": rows,
        "only_in_a": sorted(set(ma) - set(mb)), "only_in_b": sorted(set(mb) - set(ma)),
        "findings_resolved": [brief(f) for k, f in fa.items() if k not in fb],
        "findings_new": [brief(f) for k, f in fb.items() if k not in fa],
        "findings_persisting": [brief(f) for k, f in fb.items() if k in fa],
    })


def to_markdown(c: dict[str, Any]) -> str:
    lines = [f"# Compare: A = {c['run_a']}, B = {c['run_b']}", "",
             f"Verdict A: **{c['verdict_a']}** · Verdict B: **{c['verdict_b']}**", "",
             "| tag | A final | B final | change | ratio B/A | A mean | B mean | A max | B max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in c["metrics"]:
        lines.append(
            "| "
            + " | ".join(
                [r["tag"]]
                + [_fmt(r[k]) for k in ("a_final", "b_final", "change", "ratio", "a_mean", "b_mean", "a_max", "b_max")]
            )
            + " |"
        )
    for title, key in (("Findings new in B", "findings_new"), ("Findings resolved in B", "findings_resolved"),
                       ("Findings in both", "findings_persisting")):
        lines += ["", f"## {title}", ""]
        lines += [f"- [{f['severity']}] {f['title']} (`{f['id']}`)" for f in c[key]] or ["None."]
    for title, key in (("Only in A", "only_in_a"), ("Only in B", "only_in_b")):
        if c[key]:
            lines += ["", f"{title}: " + ", ".join(c[key])]
    return "\n".join(lines) + "\n"


def to_json(c: dict[str, Any]) -> str:
    return strict_json(c)
