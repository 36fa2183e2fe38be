"""``analyze`` and ``compare`` subcommands (kept here so the analysis side never imports torch)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from td3drive.core import tags
from td3drive.core.verdicts import EXIT_BAD_INPUT, EXIT_OK, verdict_exit


def add_commands(sub) -> None:
    p = sub.add_parser("analyze", help="health report (GO / GO WITH WARNINGS / NO-GO) of a run's event files")
    p.add_argument("run", metavar="RUN", help="run directory or event file (ours or any TensorBoard writer's)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here (default: stdout)")
    p.add_argument("--format", choices=["md", "json", "html"], default=None,
                   help="md (default), json or html; inferred from -o's extension when not given")
    p.add_argument("--criteria", metavar="FILE", help="criteria YAML (defaults, envs, stages sections)")
    p.add_argument("--stage", help="use this stage's section of the criteria file")
    p.add_argument("--env", help="use this env's section of the criteria file (default: from the run's config.yaml)")
    p.add_argument("--strict", action="store_true", help="exit 1 on GO WITH WARNINGS too")
    p.add_argument("--csv", metavar="FILE", help="also export every scalar (tag, step, wall_time, value) as CSV")
    p.add_argument("--parquet", metavar="FILE", help="also export every scalar as Parquet (needs pyarrow)")

    p = sub.add_parser("compare", help="two runs side by side: every shared metric, findings that changed")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--format", choices=["md", "json"], default=None)
    p.add_argument("--criteria", metavar="FILE")

    p = sub.add_parser("sweep-report", help="a sweep's statistics across seeds: IQM with 95%% CIs, GO fraction, "
                                            "probability of improvement, curves")
    p.add_argument("sweep_dir", metavar="DIR", help="a sweep directory (td3drive sweep --run-dir)")
    p.add_argument(
        "--metric", default=tags.EVAL_MEAN_REWARD, help=f"the tag to compare (default {tags.EVAL_MEAN_REWARD})"
    )
    p.add_argument("--reps", type=int, default=10_000, help="bootstrap replicates (default 10000)")
    p.add_argument("--no-plot", action="store_true", help="skip sweep_curves.png")


def _format(args: argparse.Namespace, allowed: tuple[str, ...]) -> str:
    if args.format:
        return args.format
    if args.output:
        ext = Path(args.output).suffix.lstrip(".").lower()
        ext = {"markdown": "md", "htm": "html"}.get(ext, ext)
        if ext in allowed:
            return ext
    return "md"


def _check_output(path: str | None, flag: str) -> None:
    if not path:
        return
    if Path(path).is_dir():
        raise ValueError(f"{flag} '{path}': is a directory; give a file path")
    if not Path(path).resolve().parent.is_dir():
        raise ValueError(f"{flag} '{path}': directory '{Path(path).parent}' does not exist")


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def run(args: argparse.Namespace) -> int:
    from td3drive.analysis.criteria import CriteriaError
    from td3drive.analysis.events import EventReadError

    try:
        for flag in ("output", "csv", "parquet"):
            _check_output(getattr(args, flag, None), f"--{flag}")
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "sweep-report":
            return _sweep_report(args)
        return _compare(args)
    except (EventReadError, CriteriaError, ValueError) as e:
        print(f"td3drive {args.command}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _analyze(args: argparse.Namespace) -> int:
    from td3drive.analysis import report
    from td3drive.analysis.events import read_run

    fmt = _format(args, ("md", "json", "html"))
    if args.parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(f"--parquet '{args.parquet}': needs pyarrow (pip install pyarrow)") from None
    data = read_run(args.run)
    if not data.series:
        # A verdict on nothing would let a CI gate pass on a text file or an empty event file.
        why = "; ".join(w.split(": ", 1)[-1] for w in data.warnings) or "no scalars"
        raise ValueError(f"'{args.run}': no readable scalar in {len(data.files)} file(s) ({why}); nothing to analyze")
    for w in data.warnings:
        print(f"warning: {w}", file=sys.stderr)
    r = report.analyze(args.run, args.criteria, stage=args.stage, env=args.env, data=data)
    _emit(report.RENDERERS[fmt](r), args.output)
    if args.csv:
        data.to_frame().to_csv(args.csv, index=False)
    if args.parquet:
        data.to_frame().to_parquet(args.parquet, index=False)
    print(f"verdict: {r.verdict}", file=sys.stderr)
    return verdict_exit(r.verdict, strict=args.strict)


def _compare(args: argparse.Namespace) -> int:
    from td3drive.analysis import compare

    c = compare.compare(args.run_a, args.run_b, args.criteria)
    fmt = _format(args, ("md", "json"))
    _emit(compare.to_json(c) if fmt == "json" else compare.to_markdown(c), args.output)
    return EXIT_OK


def _sweep_report(args: argparse.Namespace) -> int:
    from td3drive.analysis import sweep_report

    r = sweep_report.build(args.sweep_dir, metric=args.metric, reps=args.reps, plot=not args.no_plot)
    for w in r.warnings:
        print(f"warning: {w}", file=sys.stderr)
    sys.stdout.write(r.markdown)
    print(f"wrote {Path(args.sweep_dir) / 'sweep_report.md'} and .json", file=sys.stderr)
    return EXIT_OK
