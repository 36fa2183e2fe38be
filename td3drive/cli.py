"""Command line: parse, validate, call a function that a test can call too.

Exit codes (``td3drive.core.verdicts``): 0 success / GO; 1 NO-GO, a failed run or a guard stop; 2 bad input,
with a one-line message that names the value and what is allowed, and nothing written; 130/143 after
Ctrl-C / SIGTERM (checkpoint written first). Library errors become exit codes in one place,
:data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

# Before torch loads libgomp: its worker threads spin about 300,000 rounds (> 3 ms) after each parallel region,
# so between two act() calls of a training run one core spun through the whole env step (CPU/wall 1.99), and
# with the evaluation process or another run on the cores an act()+step took 58 ms instead of 4. At 10,000
# rounds the back-to-back kernels of an update still find their threads awake (updates/s and act() latency
# unchanged) and the core is free during env steps (CPU/wall 1.13). docs/BENCHMARKS.md section 17.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from td3drive.core.verdicts import EXIT_BAD_INPUT, EXIT_NO_GO, EXIT_OK

# Exception (module.Class, matched along its MRO, so that nothing heavy is imported to catch it) ->
# exit code. Bad input (a value, file or backend the user named) is 2; a run that failed once started is 1.
EXIT_CODES: dict[str, int] = {
    "td3drive.core.errors.ConfigError": EXIT_BAD_INPUT,
    "td3drive.checkpoint.CheckpointError": EXIT_BAD_INPUT,
    "td3drive.agent.replay.ReplayMemoryError": EXIT_BAD_INPUT,
    "td3drive.envs.contract.BackendUnavailable": EXIT_BAD_INPUT,
    "td3drive.validate.ValidationError": EXIT_BAD_INPUT,
    "td3drive.sweep.SweepError": EXIT_BAD_INPUT,
    "td3drive.envs.contract.BlankFrameError": EXIT_NO_GO,
    "td3drive.eval_process.EvaluationError": EXIT_NO_GO,
}


class UsageError(Exception):
    """Bad user input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: {message}")


def _add_run_options(p: argparse.ArgumentParser, seed: bool = True, backend_flags: bool = True) -> None:
    """Options shared by train, validate, baseline and sweep: what to train and with which config;
    ``backend_flags``: also the backends' option flags (reading them imports every backend's module)."""
    from td3drive.core.options import value_type
    from td3drive.envs import BACKENDS, flag_options, options_class

    p.add_argument("--env", help=f"backend: {', '.join(BACKENDS)} (default: {next(iter(BACKENDS))})")
    p.add_argument("--scenario", type=int,
                   help="backend scenario: traffic density 0/1/2 = light/medium/heavy for the backends with traffic, "
                        "0 for the others")
    if seed:
        p.add_argument("--seed", type=int)
    p.add_argument("--eval-freq", type=int)
    p.add_argument("--checkpoint-freq", type=int)
    p.add_argument("--config", metavar="FILE", help="YAML config (sections env, agent, training, logging, guard)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key (repeatable)"
    )
    p.add_argument("--device", help="auto, cpu or cuda")
    for key, f, owners in flag_options() if backend_flags else []:  # the backend options declared flag=True
        p.add_argument("--" + key.replace("_", "-"), type=value_type(options_class(owners[0]), key)[0],
                       help=f"{'/'.join(owners)}: {f.metadata['doc']} (default {f.default})")


def _add_train(sub, backend_flags: bool = True) -> None:
    p = sub.add_parser("train", help="train a TD3 agent")
    _add_run_options(p, backend_flags=backend_flags)
    p.add_argument("--max-timesteps", type=int)
    p.add_argument("--run-dir", metavar="DIR", help="default runs/<env>-s<scenario>-seed<seed>-<timestamp>")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from checkpoints/latest.pt")
    p.add_argument("--save-replay", action="store_true", default=None, help="also checkpoint the replay contents")
    p.add_argument("--criteria", metavar="FILE", help="criteria YAML for the end-of-run report")


def _add_validate(sub, backend_flags: bool = True) -> None:
    p = sub.add_parser("validate", help="staged runs (5K, 50K, ...) that advance only when the report says GO")
    _add_run_options(p, backend_flags=backend_flags)
    p.add_argument("--stages", help="env steps at the end of each stage, e.g. 5000,50000,1000000")
    p.add_argument("--criteria", metavar="FILE", help="criteria YAML; its stages section names stages by step count")
    p.add_argument("--run-dir", metavar="DIR", help="default runs/validate-<env>-s<scenario>-seed<seed>-<timestamp>")
    p.add_argument("--resume", metavar="DIR", help="continue the validation in DIR, skipping stages already passed")
    p.add_argument("--strict", action="store_true", help="advance on GO only, not on GO WITH WARNINGS")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="run a checkpoint's deterministic policy")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .pt file or a run directory (uses latest.pt)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--device", default="cpu", help="auto, cpu or cuda")
    p.add_argument(
        "--video",
        metavar="FILE.gif",
        help="write the first episode as a GIF: the simulator's colour view (where the backend has one) "
        "beside the agent's 84x84 input",
    )
    p.add_argument("--workers", type=int, default=0, help="env processes (0: one per CPU core)")
    p.add_argument("--ablate", action="store_true",
                   help="also evaluate on the same seeds with the camera frozen (the episode's first frames) and "
                   "with the ego vector neutralised (its mean): the return each input carries")


def _add_baseline(sub, backend_flags: bool = True) -> None:
    p = sub.add_parser("baseline", help="PID speed + pure-pursuit steering through the agent's evaluation")
    _add_run_options(p, backend_flags=backend_flags)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--workers", type=int, default=0, help="env processes (0: one per CPU core)")
    p.add_argument("--run-dir", metavar="DIR", help="default runs/baseline-<env>-s<scenario>-seed<seed>-<timestamp>")


def _add_sweep(sub, backend_flags: bool = True) -> None:
    p = sub.add_parser("sweep", help="many settings x seeds on Ray Tune (extra 'sweep'), then sweep-report")
    _add_run_options(p, seed=False, backend_flags=backend_flags)
    p.add_argument("--max-timesteps", type=int)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="config key and its values; repeat for a cartesian product")
    p.add_argument("--seeds", default="0", help="seeds per setting: 0-4, or 0,3,7 (default 0)")
    p.add_argument("--address", help="an existing Ray cluster ('auto': the local one); default: start a local Ray")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="Ray CPUs per trial; also its torch threads and evaluation processes (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU fraction per trial, e.g. 0.25 (default 0)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: as many as the resources allow)")
    p.add_argument("--criteria", metavar="FILE", help="criteria YAML for each trial's report")
    p.add_argument("--run-dir", metavar="DIR", help="default runs/sweep-<env>-s<scenario>-<timestamp>")
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR: finished trials are kept")


RUN_COMMANDS = ("train", "validate", "baseline", "sweep")  # the commands that build a config


def build_parser(backend_flags: bool = True) -> argparse.ArgumentParser:
    """The parser of every command; ``backend_flags=False`` leaves out the backends' option flags (for a command
    that builds no config, so that it imports no simulator)."""
    parser = _Parser(prog="td3drive", description="Visual TD3 driving agents with a health report you can trust.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub, backend_flags)
    _add_eval(sub)
    _add_validate(sub, backend_flags)
    _add_baseline(sub, backend_flags)
    _add_sweep(sub, backend_flags)
    from td3drive.analysis import cli as analysis_cli

    analysis_cli.add_commands(sub)
    return parser


def _flag_keys() -> dict[str, str]:
    """Each config-building flag (its argparse name) -> the config key it sets: the one list of them (the
    backends' flags come from their options)."""
    from td3drive.envs import flag_options

    return {"env": "env.name", "scenario": "env.scenario", "seed": "training.seed",
            "max_timesteps": "training.max_timesteps", "eval_freq": "training.eval_freq",
            "checkpoint_freq": "training.checkpoint_freq", "device": "training.device",
            "save_replay": "training.save_replay", **{key: f"env.{key}" for key, _, _ in flag_options()}}


def _overrides(args: argparse.Namespace) -> dict:
    return {key: getattr(args, name, None) for name, key in _flag_keys().items()}


def _fresh_dir(given: str | None, cfg, command: str, prefix: str = "", resumable: bool = True) -> Path:
    """The run directory to create: ``given`` or a default one; it must not hold files yet."""
    from td3drive.train import default_run_dir

    path = Path(given) if given else default_run_dir(cfg, prefix=prefix)
    if path.exists() and not path.is_dir():
        raise UsageError(f"td3drive {command}: --run-dir '{path}' is a file; give a directory")
    if path.exists() and any(path.iterdir()):
        hint = "use --resume or an empty directory" if resumable else "use an empty directory"
        raise UsageError(f"td3drive {command}: --run-dir '{path}' already holds files; {hint}")
    return path


def _check_criteria(path: str | None, env: str, stages: list[str | None], command: str) -> None:
    """Parse the criteria file (and find each stage in it) before anything is written."""
    from td3drive.analysis.criteria import CriteriaError, resolve

    if path is None:
        return
    try:
        for stage in stages:
            resolve(path, env=env, stage=stage)
    except CriteriaError as e:
        raise UsageError(f"td3drive {command}: --criteria: {e}") from None


def _check_device(name: str, command: str) -> None:
    from td3drive.core.device import resolve_device

    try:
        resolve_device(name)
    except ValueError as e:
        raise UsageError(f"td3drive {command}: {e}") from None


def _check_resume_alone(args: argparse.Namespace, command: str, metavar: str) -> None:
    if args.run_dir or args.config:
        raise UsageError(f"td3drive {command}: --resume {metavar} takes its config from {metavar}; "
                         "do not combine it with --run-dir or --config")


def cmd_train(args: argparse.Namespace) -> int:
    from td3drive.core.signals import record_early_stop_signals

    record_early_stop_signals()  # before the heavy imports below (see td3drive/core/signals.py)
    from td3drive.checkpoint import CHECKPOINT_DIR, LATEST, step_files
    from td3drive.config import build_config, resume_conflicts
    from td3drive.train import Trainer

    overrides = _overrides(args)
    if args.resume:
        run_dir = Path(args.resume)
        _check_resume_alone(args, "train", "RUN_DIR")
        if not (run_dir / "config.yaml").is_file():
            raise UsageError(f"td3drive train: --resume '{run_dir}': not a run directory (no config.yaml)")
        cfg = build_config(run_dir / "config.yaml", args.set, overrides)
        if conflicts := resume_conflicts(build_config(run_dir / "config.yaml"), cfg):
            raise UsageError(f"td3drive train: --resume cannot change {'; '.join(conflicts)} (the checkpoint holds "
                             "networks, replay and env of the saved value)")
    else:
        cfg = build_config(args.config, args.set, overrides)
        run_dir = _fresh_dir(args.run_dir, cfg, "train")
    _check_device(cfg.training.device, "train")
    _check_criteria(args.criteria, cfg.env.name, [None], "train")
    resume = bool(args.resume)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    if resume and not (ckpt_dir / LATEST).exists() and not step_files(ckpt_dir):
        # Killed before its first checkpoint: the run can only start over, with its own config.
        print(f"td3drive train: --resume '{run_dir}': no checkpoint yet; starting it from step 0 with its config.yaml",
              file=sys.stderr)
        resume = False
    trainer = Trainer(cfg, run_dir, resume=resume, criteria_file=args.criteria)
    print(f"run directory: {run_dir}", file=sys.stderr)
    return trainer.train().exit_code


def cmd_eval(args: argparse.Namespace) -> int:
    from td3drive.envs import observation_name
    from td3drive.inference import evaluate_checkpoint
    from td3drive.video import step_ms, write_gif

    _check_counts(args, "eval")
    if args.video and not args.video.endswith(".gif"):
        raise UsageError(f"td3drive eval: --video '{args.video}': must be a .gif file")
    if args.video and not Path(args.video).resolve().parent.is_dir():  # check before the evaluation runs
        raise UsageError(f"td3drive eval: --video '{args.video}': directory '{Path(args.video).parent}' does not exist")
    _check_device(args.device, "eval")
    e = evaluate_checkpoint(args.checkpoint, args.episodes, args.workers, args.device, video=bool(args.video),
                            ablate=args.ablate)
    _print_result(f"episodes: {args.episodes}  (checkpoint step {e.step}, env {e.cfg.env.name}, observation "
                  f"{observation_name(e.cfg)})", e.result, e.cfg.env.name)
    if e.result.ablated:
        _print_ablation(e.result, e.cfg.env.name)
    if args.video:
        per_step_ms = step_ms(e.cfg.env.name, e.cfg.env.action_repeat)
        write_gif(args.video, e.frames, per_step_ms)
        shows = "simulator view beside the agent's 84x84 input" if e.has_view else "the agent's 84x84 input"
        print(f"video:    {args.video} ({len(e.frames)} agent steps, {per_step_ms:.0f} ms each; {shows})")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from td3drive.core.signals import record_early_stop_signals

    record_early_stop_signals()  # before the heavy imports below (see td3drive/core/signals.py)

    from td3drive.config import build_config
    from td3drive.validate import ValidationError, load_summary, parse_stages, validate

    if args.resume:
        root = Path(args.resume)
        _check_resume_alone(args, "validate", "DIR")
        summary = load_summary(root)
        stages = parse_stages(args.stages) if args.stages else summary["stages"]
        if stages[: len(summary["results"])] != summary["stages"][: len(summary["results"])]:
            raise ValidationError(f"--stages '{args.stages}': DIR '{root}' ran stages {summary['stages']}")
        cfg = build_config(root / "config.yaml", args.set, _overrides(args))
    else:
        if not args.stages:
            raise UsageError("td3drive validate: --stages is required, e.g. --stages 5000,50000,1000000")
        stages = parse_stages(args.stages)
        cfg = build_config(args.config, args.set, _overrides(args))
        root = _fresh_dir(args.run_dir, cfg, "validate", prefix="validate-")
    _check_device(cfg.training.device, "validate")
    _check_criteria(args.criteria, cfg.env.name, [str(s) for s in stages], "validate")
    print(f"validation directory: {root}", file=sys.stderr)
    return validate(cfg, stages, root, args.criteria, strict=args.strict, resume=bool(args.resume)).exit_code


def _check_counts(args: argparse.Namespace, command: str) -> None:
    if args.workers < 0:
        raise UsageError(f"td3drive {command}: --workers {args.workers}: must be an integer >= 0")
    if args.episodes < 1:
        raise UsageError(f"td3drive {command}: --episodes {args.episodes}: must be an integer >= 1")


def _print_result(header: str, result, env_name: str) -> None:
    """The one printer of evaluation results (``eval``, ``baseline``): returns, lengths, success, driving.
    ``env_name`` names the backend, whose word for a lane invasion is used (CarRacing: a road exit)."""
    from td3drive.core import tags
    from td3drive.envs import lane_invasion_label

    r = result
    print(header)
    print(
        f"return:   {r.mean_reward:.2f} ± {r.returns.std():.2f}  (min {r.returns.min():.2f}, max {r.returns.max():.2f})"
    )
    frames = f" ({r.frames.mean():.0f} simulator frames)" if r.frames is not None else ""
    print(f"length:   {r.mean_length:.1f} ± {r.lengths.std():.1f} agent steps{frames}")
    print(f"success:  {r.success_rate:.0%}")
    if not r.driving:
        return
    d = r.driving
    print(f"route:    {d[tags.EVAL_ROUTE_COMPLETION]:.1f}% completed, driving score {d[tags.EVAL_DRIVING_SCORE]:.1f}")
    print(f"per km:   {d[tags.EVAL_COLLISIONS_PER_KM]:.2f} collisions, "
          f"{d[tags.EVAL_LANE_INVASIONS_PER_KM]:.2f} {lane_invasion_label(env_name)}")
    print(f"speed:    {d[tags.EVAL_MEAN_SPEED]:.1f} m/s")


def _print_ablation(result, env_name: str) -> None:
    """The ablation table of ``eval --ablate``: each condition's return and drop, its driving metrics, the verdict."""
    from td3drive.ablation import Ablation
    from td3drive.core import tags
    from td3drive.envs import lane_invasion_label

    a = Ablation(result, result.ablated)
    print("input ablation (same seeds; drop = normal - ablated, paired bootstrap):")
    for line in a.lines():
        print("  " + line)
    if result.driving:
        for name, r in {"given": result, **result.ablated}.items():
            d = r.driving or {}
            print(f"  {name:<15} route {d.get(tags.EVAL_ROUTE_COMPLETION, 0.0):5.1f}%, per km "
                  f"{d.get(tags.EVAL_COLLISIONS_PER_KM, 0.0):.2f} collisions, "
                  f"{d.get(tags.EVAL_LANE_INVASIONS_PER_KM, 0.0):.2f} {lane_invasion_label(env_name)}")
    print(f"verdict:  {a.verdict()}")


def cmd_baseline(args: argparse.Namespace) -> int:
    from td3drive.baseline import route_backends, run_baseline
    from td3drive.config import build_config
    from td3drive.evaluate import eval_workers

    _check_counts(args, "baseline")
    cfg = build_config(args.config, args.set, _overrides(args))
    if cfg.env.name not in route_backends():
        raise UsageError(f"td3drive baseline: --env {cfg.env.name}: needs a route backend "
                         f"({', '.join(route_backends())})")
    run_dir = _fresh_dir(args.run_dir, cfg, "baseline", prefix="baseline-", resumable=False)
    cfg = cfg.replace(**{"training.num_eval_episodes": args.episodes, "training.eval_workers": args.workers})
    result = run_baseline(cfg, run_dir, args.episodes, eval_workers(cfg.training, cfg.env.name))
    _print_result(f"baseline: PID speed + pure pursuit, env {cfg.env.name}, scenario {cfg.env.scenario}, "
                  f"{args.episodes} episodes", result, cfg.env.name)
    print(f"run:      {run_dir} (td3drive compare AGENT_RUN {run_dir})")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from td3drive import sweep
    from td3drive.config import build_config

    try:
        if args.resume:
            given = [f"--{k.replace('_', '-')}" for k in ("run_dir", "config", "grid", "set", "criteria", *_flag_keys())
                     if (value := getattr(args, k, None)) is not None and value != []]
            if given:
                raise UsageError(f"td3drive sweep: --resume DIR takes its config, grid and seeds from DIR; "
                                 f"do not combine it with {', '.join(given)}")
            base, spec = sweep.load(args.resume)
            root = Path(args.resume)
        else:
            base = build_config(args.config, args.set, _overrides(args))
            resources = sweep.Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent)
            spec = sweep.plan(
                base, sweep.parse_grid(args.grid), sweep.parse_seeds(args.seeds), resources, args.criteria
            )
            root = _fresh_dir(str(args.run_dir or sweep.default_sweep_dir(base)), base, "sweep")
        if args.num_cpus is not None and (args.num_cpus < 1 or args.address):
            raise sweep.SweepError(f"--num-cpus {args.num_cpus}: must be >= 1, and only for a local Ray (no --address)")
    except sweep.SweepError as e:
        raise UsageError(f"td3drive sweep: {e}") from None
    _check_criteria(args.criteria, base.env.name, [None], "sweep")
    try:
        return sweep.run_sweep(base, spec, root, address=args.address, num_cpus=args.num_cpus,
                               resume=bool(args.resume)).exit_code
    except sweep.SweepError as e:
        raise UsageError(f"td3drive sweep: {e}") from None


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "validate": cmd_validate,
    "baseline": cmd_baseline,
    "sweep": cmd_sweep,
}


def exit_code_of(e: BaseException) -> int | None:
    """The exit code :data:`EXIT_CODES` gives ``e`` (None: not an error the CLI reports in one line).
    :class:`UsageError` is matched by type: under ``python -m td3drive.cli`` its module is ``__main__``."""
    if isinstance(e, UsageError):
        return EXIT_BAD_INPUT
    for cls in type(e).__mro__:
        if (code := EXIT_CODES.get(f"{cls.__module__}.{cls.__qualname__}")) is not None:
            return code
    return None


def main(argv: Sequence[str] | None = None) -> int:
    command = "td3drive"
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(backend_flags=not words or words[0] in RUN_COMMANDS).parse_args(words)
        command = f"td3drive {args.command}"
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        from td3drive.analysis import cli as analysis_cli

        return analysis_cli.run(args)
    except Exception as e:
        code = exit_code_of(e)
        if code is None:
            raise
        message = str(e)
        print(message if message.startswith("td3drive") else f"{command}: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
