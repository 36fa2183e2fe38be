"""Staged validation: train to each stage's step count, analyze with that stage's criteria, go on only on GO.

Layout of a validation directory::

    DIR/config.yaml            the base config (training.max_timesteps is set per stage)
    DIR/validate.json, .md     one row per stage run so far (rewritten atomically after each stage)
    DIR/stage-1-5000/          a normal run directory (events, checkpoints, report.md/json)
    DIR/stage-2-50000/         starts from stage 1's final checkpoint and replay contents

A stage passes when its report (stage criteria, every criterion a gate) says GO, or GO WITH
WARNINGS unless ``strict``. A NO-GO or a guard stop ends the validation with exit code 1 and names
the failed criteria and the findings. ``resume`` skips the stages already passed, re-analyzes a
finished stage that did not pass (the criteria may have changed), and continues an interrupted one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from td3drive import checkpoint
from td3drive.config import Config, save_yaml
from td3drive.core import tags
from td3drive.core.files import atomic_write, read_json, write_json
from td3drive.core.verdicts import EXIT_NO_GO, EXIT_OK, GO, GO_WITH_WARNINGS, NO_GO

SCHEMA = "td3drive.validate/1"


class ValidationError(ValueError):
    """Bad input to a validation (stages, directory); exit code 2."""


@dataclass
class StageResult:
    index: int  # 1-based
    steps: int  # env steps at the end of the stage
    run_dir: str  # relative to the validation directory
    status: str  # "passed" | "NO-GO" | "guard stop" | "interrupted"
    verdict: str | None
    failed_criteria: list[dict] = field(default_factory=list)  # {id, criterion, value, threshold}
    not_measured: list[str] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)  # {id, severity, title}, critical and warning only
    guard_stop: str | None = None
    eval_return: float | None = None
    wall_s: float = 0.0


@dataclass
class ValidationResult:
    directory: Path
    stages: list[int]
    results: list[StageResult]
    exit_code: int


def parse_stages(text: str) -> list[int]:
    """``"5000,50000,1e6"`` -> ``[5000, 50000, 1000000]``: positive, strictly increasing integers."""
    stages = []
    for item in text.split(","):
        item = item.strip().replace("_", "")
        try:
            value = float(item)
        except ValueError:
            value = float("nan")
        if not (value == value and value >= 1 and value == int(value)):
            raise ValidationError(f"--stages '{text}': '{item}' is not a positive whole number of env steps")
        stages.append(int(value))
    if any(b <= a for a, b in zip(stages, stages[1:])):
        raise ValidationError(f"--stages '{text}': stages must be strictly increasing")
    return stages


def stage_dir_name(index: int, steps: int) -> str:
    return f"stage-{index}-{steps}"


def seed_from_previous(prev_run: Path, run: Path) -> None:
    """Make ``run`` resumable from ``prev_run``'s final checkpoint (and its replay file)."""
    source = checkpoint.latest_path(prev_run).resolve()
    step = checkpoint.load(source)["counters"]["step"]
    ckpt_dir = run / checkpoint.CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.link_or_copy(source, ckpt_dir / source.name)
    replay = source.parent / checkpoint.replay_name(step)
    if replay.exists():
        checkpoint.link_or_copy(replay, ckpt_dir / replay.name)
    checkpoint.point_latest(ckpt_dir, ckpt_dir / source.name)


def _stage_result(index: int, steps: int, run: Path, root: Path, strict: bool, guard_stop: str | None,
                  wall_s: float, eval_return: float | None) -> StageResult:
    """Read the stage's report.json (written by the trainer or by a re-analysis)."""
    report = read_json(run / "report.json")
    verdict = report["verdict"] if report else None
    passed = guard_stop is None and (verdict == GO or (verdict == GO_WITH_WARNINGS and not strict))
    status = "passed" if passed else ("guard stop" if guard_stop else NO_GO)
    criteria = report["criteria"] if report else []
    return StageResult(
        index,
        steps,
        str(run.relative_to(root)),
        status,
        verdict,
        failed_criteria=[
            {k: c[k] for k in ("id", "criterion", "value", "threshold")}
            for c in criteria
            if c["status"] == "fail" and c.get("gate", True)
        ],
        not_measured=[c["id"] for c in criteria if c["status"] == "not measured" and c.get("gate", True)],
        findings=[
            {k: f[k] for k in ("id", "severity", "title")}
            for f in (report["findings"] if report else [])
            if f["severity"] in ("critical", "warning")
        ],
        guard_stop=guard_stop,
        eval_return=eval_return,
        wall_s=round(wall_s, 1),
    )


def to_markdown(stages: list[int], results: list[StageResult]) -> str:
    done = [r for r in results if r.status == "passed"]
    stopped = next((r for r in results if r.status != "passed"), None)
    if stopped is None:
        head = f"GO ({len(done)}/{len(stages)} stages passed)" if len(done) == len(stages) else \
            f"in progress ({len(done)}/{len(stages)} stages passed)"
    else:
        head = f"{stopped.status} at stage {stopped.index} ({stopped.steps:,} steps)"
    lines = [
        f"# Staged validation: {head}",
        "",
        "| stage | steps | status | verdict | failed criteria | critical / warning findings | eval return "
        "| wall s | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        crit = sum(f["severity"] == "critical" for f in r.findings)
        warn = len(r.findings) - crit
        failed = ", ".join(c["id"] for c in r.failed_criteria) or "—"
        ret = "—" if r.eval_return is None else f"{r.eval_return:.1f}"
        lines.append(f"| {r.index} | {r.steps:,} | {r.status} | {r.verdict or '—'} | {failed} | {crit} / {warn} | "
                     f"{ret} | {r.wall_s:.0f} | [{r.run_dir}]({r.run_dir}/report.md) |")
    for r in results:
        if r.status == "passed" and not r.not_measured:
            continue
        lines += ["", f"## Stage {r.index} ({r.steps:,} steps): {r.status}", ""]
        if r.guard_stop:
            lines += [f"Guard: {r.guard_stop}", ""]
        for c in r.failed_criteria:
            lines.append(f"- failed `{c['id']}`: {c['criterion']} = {c['value']} (needs {c['threshold']})")
        for cid in r.not_measured:
            lines.append(f"- not measured `{cid}`")
        for f in r.findings:
            lines.append(f"- {f['severity']} `{f['id']}`: {f['title']}")
    return "\n".join(lines) + "\n"


def write_summary(root: Path, stages: list[int], results: list[StageResult], strict: bool) -> None:
    data = {"schema": SCHEMA, "stages": stages, "strict": strict, "results": [asdict(r) for r in results]}
    write_json(root / "validate.json", data)
    atomic_write(root / "validate.md", to_markdown(stages, results))


def load_summary(root: Path) -> dict:
    try:
        data = json.loads((root / "validate.json").read_text())
    except (OSError, ValueError) as e:
        raise ValidationError(f"--resume '{root}': no readable validate.json ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValidationError(f"--resume '{root}': validate.json is not a {SCHEMA} file")
    return data


def validate(
    cfg: Config,
    stages: list[int],
    root: str | Path,
    criteria_file: str | Path | None = None,
    strict: bool = False,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Run (or continue) a staged validation in ``root``; the function the CLI and tests call."""
    from td3drive.train import console

    log = log or console.print
    root = Path(root)
    previous: dict[int, StageResult] = {}
    if resume:
        previous = {r["steps"]: StageResult(**r) for r in load_summary(root)["results"]}
    else:
        root.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, root / "config.yaml")
    results: list[StageResult] = []
    for index, steps in enumerate(stages, start=1):
        done = previous.get(steps)
        if done is not None and done.status == "passed":
            log(f"stage {index} ({steps:,} steps): passed before, skipped")
            results.append(done)
            continue
        result, signal_exit = _run_stage(cfg, stages, index, root, criteria_file, strict, done, log)
        results.append(result)
        write_summary(root, stages, results, strict)
        if signal_exit is not None:  # Ctrl-C / SIGTERM: resumable
            return ValidationResult(root, stages, results, signal_exit)
        log(f"stage {index} ({steps:,} steps): {result.verdict} -> {result.status}")
        if result.status != "passed":
            for c in result.failed_criteria:
                log(f"  failed {c['id']}: {c['criterion']} = {c['value']} (needs {c['threshold']})")
            for f in result.findings:
                log(f"  {f['severity']} {f['id']}: {f['title']}")
            log(f"validation stopped at stage {index}; see {root / 'validate.md'}")
            return ValidationResult(root, stages, results, EXIT_NO_GO)
    log(f"validation: all {len(stages)} stages passed; see {root / 'validate.md'}")
    return ValidationResult(root, stages, results, EXIT_OK)


def _run_stage(cfg: Config, stages: list[int], index: int, root: Path, criteria_file: str | Path | None,
               strict: bool, done: StageResult | None, log: Callable[[str], None]) -> tuple[StageResult, int | None]:
    """Train stage ``index`` (1-based) from the previous stage's final state, or analyze it again when it
    was trained before; returns its result and, when a signal stopped it, the exit code to end with."""
    from td3drive.analysis import report
    from td3drive.train import Trainer

    steps = stages[index - 1]
    run = root / stage_dir_name(index, steps)
    start = time.perf_counter()
    latest = run / checkpoint.CHECKPOINT_DIR / checkpoint.LATEST
    guard_stop, eval_return = (done.guard_stop, done.eval_return) if done else (None, None)
    if latest.exists() and checkpoint.load(latest)["counters"]["step"] >= steps:
        # Trained before (and not passed, or the summary was not written): analyze again.
        log(f"stage {index} ({steps:,} steps): already trained, analyzing again")
        guard_stop = None
        report.write_report(report.analyze(run, criteria_file, stage=str(steps)), run)
    else:
        if not latest.exists() and index > 1:
            seed_from_previous(root / stage_dir_name(index - 1, stages[index - 2]), run)
        log(f"stage {index} ({steps:,} steps): training in {run}")
        out = Trainer(cfg.replace(**{"training.max_timesteps": steps}), run, resume=latest.exists(), log=log,
                      criteria_file=criteria_file, stage=str(steps), replay_at_end=index < len(stages)).train()
        guard_stop = out.guard_stop
        eval_return = (out.last_eval or {}).get(tags.EVAL_MEAN_REWARD, eval_return)
        if out.exit_code not in (EXIT_OK, EXIT_NO_GO):
            return StageResult(index, steps, str(run.relative_to(root)), "interrupted", out.verdict,
                               wall_s=round(time.perf_counter() - start, 1)), out.exit_code
    return _stage_result(index, steps, run, root, strict, guard_stop, time.perf_counter() - start, eval_return), None
