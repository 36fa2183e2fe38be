"""Sweeps on Ray Tune: one trial per (setting, seed), each a normal td3drive run directory.

``td3drive sweep --grid agent.max_grad_norm=5,10,40 --seeds 0-4`` expands the grid (the cartesian
product of every ``--grid`` key), validates every resulting config before anything is written, and
runs one Ray Tune trial per (setting, seed) with the CPUs / GPU fraction given per trial. Ray is the
extra ``sweep`` and is imported only here, only when a sweep runs.

Each trial trains ``DIR/trials/<setting>/seed<k>/`` with :class:`td3drive.train.Trainer`, reports
every evaluation and, at the end, the health verdict to Tune, and writes ``trial.json`` (its
outcome: finished, guard stop or crashed). A guard stop is a result, reported like any other; an
exception is recorded as crashed and re-raised so that Tune marks the trial ERROR while the other
trials go on. ``--resume DIR`` restores the Tune experiment: finished trials are kept, unfinished and
crashed ones run again and continue from their own ``checkpoints/latest.pt`` (exact resume).

On a multi-node cluster (``--address``) the sweep directory must be on a filesystem that every node
mounts, and td3drive must be installed on every node.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from td3drive import checkpoint
from td3drive.analysis.sweep_report import (
    CRASHED,
    FINISHED,
    GUARD_STOP,
    SWEEP_FILE,
    SWEEP_SCHEMA,
    TRIAL_FILE,
    SweepReportError,
    load_spec,
)
from td3drive.config import Config, ConfigError, build_config, parse_set, save_yaml
from td3drive.core import tags
from td3drive.core.files import read_json, write_json
from td3drive.core.verdicts import EXIT_NO_GO, EXIT_OK, GO

EXPERIMENT = "tune"  # Ray Tune's experiment name under DIR/ray/


class SweepError(ValueError):
    """Bad input to a sweep (grid, seeds, resources, directory); exit code 2."""


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0  # Ray CPUs per trial; also the trial's torch threads and evaluation processes
    gpu: float = 0.0  # GPU fraction per trial (0.25: four trials share one GPU)
    max_concurrent: int | None = None  # None: as many as the resources allow

    def check(self) -> None:
        if not self.cpu > 0:
            raise SweepError(f"--cpus-per-trial {self.cpu}: must be > 0")
        if not 0 <= self.gpu:
            raise SweepError(f"--gpus-per-trial {self.gpu}: must be >= 0 (a fraction shares one GPU)")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise SweepError(f"--max-concurrent {self.max_concurrent}: must be >= 1")


@dataclass
class SweepResult:
    directory: Path
    statuses: dict[str, str]  # trial name -> finished | guard stop | crashed | incomplete | not started
    exit_code: int
    tune: dict[str, dict[str, Any]]  # trial name -> {"error": bool, "metrics": last result reported to Tune}


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7-8"`` -> [0, 3, 7, 8]. Non-negative, no repeats."""
    seeds: list[int] = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SweepError(f"--seeds '{text}': '{item.strip()}' is not a seed or a range like 0-4")
        lo = int(m.group(1))
        seeds.extend(range(lo, int(m.group(2) if m.group(2) is not None else lo) + 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds '{text}': a seed is listed twice")
    return seeds


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["agent.max_grad_norm=5,10,40"]`` -> ``{"agent.max_grad_norm": [5, 10, 40]}`` (YAML values)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise SweepError(f"--grid '{item}': must be KEY=V1,V2,..., e.g. agent.max_grad_norm=5,10,40")
        if key == "training.seed":
            raise SweepError("--grid training.seed: seeds are a dimension of their own; use --seeds")
        if key in grid:
            raise SweepError(f"--grid '{item}': key '{key}' is given twice")
        values = [parse_set(f"{key}={v.strip()}")[1] for v in raw.split(",")]
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"--grid '{item}': a value is listed twice")
        grid[key] = values
    return grid


def _label_value(v: Any) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def settings_of(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid: ``[{"label": "max_grad_norm=5", "overrides": {...}}, ...]``.

    Labels use the last part of each key where that is unambiguous; they name the setting's directory.
    """
    if not grid:
        return [{"label": "base", "overrides": {}}]
    leaves = [k.rsplit(".", 1)[-1] for k in grid]
    names = [leaf if leaves.count(leaf) == 1 else key for key, leaf in zip(grid, leaves)]
    out = []
    for combo in itertools.product(*grid.values()):
        label = ",".join(f"{n}={_label_value(v)}" for n, v in zip(names, combo))
        out.append({"label": label, "overrides": dict(zip(grid, combo))})
    return out


def _dir_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", label)


def trial_config(base: Config, overrides: dict[str, Any], seed: int, resources: Resources) -> Config:
    """The config one trial trains with; raises :class:`ConfigError` naming the bad setting."""
    cfg = base.replace(**overrides, **{"training.seed": seed})
    return cfg.replace(**{
        # Parallel trials cannot share one terminal's progress bar; the log lines stay.
        "logging.progress": False,
        # "One evaluation process per core" means per core of the trial, not of the machine.
        "training.eval_workers": cfg.training.eval_workers or max(1, int(resources.cpu)),
    })


def plan(base: Config, grid: dict[str, list[Any]], seeds: list[int], resources: Resources,
         criteria: str | None = None) -> dict[str, Any]:
    """The sweep spec (``sweep.json``): settings, trials and resources, every trial config validated."""
    resources.check()
    if not seeds:
        raise SweepError("--seeds: at least one seed")
    settings = settings_of(grid)
    trials = []
    for i, setting in enumerate(settings):
        for seed in seeds:
            try:
                cfg = trial_config(base, setting["overrides"], seed, resources)
            except ConfigError as e:
                raise SweepError(f"--grid setting '{setting['label']}': {e}") from None
            training = cfg.training
            if not 0 < training.eval_freq <= training.max_timesteps:
                raise SweepError(f"setting '{setting['label']}': training.eval_freq {training.eval_freq} with "
                                 f"max_timesteps {training.max_timesteps} never evaluates; a sweep compares "
                                 "evaluations, so use 0 < eval_freq <= max_timesteps")
            if training.device == "cuda" and resources.gpu == 0:
                raise SweepError(
                    "training.device cuda needs --gpus-per-trial > 0 (Ray hides GPUs from trials without one)"
                )
            name = f"{_dir_name(setting['label'])}/seed{seed}"
            if any(t["name"] == name for t in trials):
                raise SweepError(f"--grid: two settings map to the directory '{name}'; use values that differ "
                                 "in letters, digits or ._=,+-")
            trials.append({"name": name, "setting": i, "seed": seed, "run_dir": f"trials/{name}"})
    return {
        "schema": SWEEP_SCHEMA, "created": datetime.now().isoformat(timespec="seconds"),
        "grid": grid, "seeds": seeds, "settings": settings, "trials": trials,
        "resources": {"cpu": resources.cpu, "gpu": resources.gpu, "max_concurrent": resources.max_concurrent},
        "criteria": str(Path(criteria).resolve()) if criteria else None,
    }


def default_sweep_dir(cfg: Config, root: str | Path = "runs") -> Path:
    return Path(root) / f"sweep-{cfg.env.name}-s{cfg.env.scenario}-{datetime.now():%Y%m%d-%H%M%S}"


def _final_metrics(info: dict) -> dict[str, Any]:
    ret = info.get("final_eval_return")
    return {"env_steps": info["steps"], "eval_return": float("nan") if ret is None else ret, "status": info["status"],
            "verdict": info.get("verdict") or "none", "go": int(info.get("verdict") == GO),
            "guard_stop": info.get("guard_stop") or ""}


def run_trial(params: dict[str, Any], trials: dict[str, dict[str, Any]]) -> None:
    """The Ray Tune function trainable: train trial ``params["trial"]`` (a name in ``trials``) into its
    run directory."""
    import torch
    from ray import tune
    from rich.text import Text

    from td3drive.config import from_dict
    from td3drive.train import Trainer

    t = trials[params["trial"]]
    run = Path(t["run_dir"])
    if not Path(t["root"]).is_dir():
        raise SweepError(f"sweep directory '{t['root']}' is not visible on this node; on a cluster it "
                         "must be on a filesystem every node mounts")
    done = read_json(run / TRIAL_FILE)
    if done and done.get("status") in (FINISHED, GUARD_STOP):  # resumed sweep: keep the result
        tune.report(_final_metrics(done))
        return
    resume = (run / checkpoint.CHECKPOINT_DIR / checkpoint.LATEST).exists()
    if not resume and run.exists():
        shutil.rmtree(run)  # an earlier start that ended before its first checkpoint: start clean
    run.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, int(t["cpus"])))
    name = t["name"]

    def on_eval(step: int, values: dict[str, float]) -> None:
        tune.report({"env_steps": step, "eval_return": values[tags.EVAL_MEAN_REWARD], "status": "running"})

    def log(msg: str) -> None:
        print(f"[{name}] {Text.from_markup(msg).plain}", flush=True)

    start = time.perf_counter()
    try:
        trainer = Trainer(from_dict(t["config"]), run, resume=resume, log=log,
                          criteria_file=t["criteria"], on_eval=on_eval)
        result = trainer.train()
    except Exception as e:
        write_json(run / TRIAL_FILE, {"status": CRASHED, "error": f"{type(e).__name__}: {e}", "steps": None,
                                       "wall_s": round(time.perf_counter() - start, 1)})
        raise
    info = {
        "status": GUARD_STOP if result.guard_stop else FINISHED, "verdict": result.verdict,
        "guard_stop": result.guard_stop, "steps": result.steps, "episodes": result.episodes,
        "final_eval_return": (result.last_eval or {}).get(tags.EVAL_MEAN_REWARD),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    write_json(run / TRIAL_FILE, info)
    tune.report(_final_metrics(info))


def _import_ray():
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError("td3drive sweep needs Ray Tune, the extra 'sweep': pip install 'td3drive[sweep]'") from None
    return ray, tune


def start(base: Config, spec: dict[str, Any], root: str | Path) -> Path:
    """Create the sweep directory: base config.yaml and sweep.json (nothing else is written before)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    save_yaml(base, root / "config.yaml")
    write_json(root / SWEEP_FILE, spec)
    return root


def load(root: str | Path) -> tuple[Config, dict[str, Any]]:
    """Base config and spec of an existing sweep directory (for ``--resume``)."""
    try:
        spec = load_spec(root)
    except SweepReportError as e:
        raise SweepError(f"--resume {e}") from None
    return build_config(Path(root) / "config.yaml"), spec


def run_sweep(
    base: Config,
    spec: dict[str, Any],
    root: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Create (unless ``resume``) and run the sweep in ``root`` on Ray Tune, then write the sweep report.

    ``address`` = an existing Ray cluster ("auto" finds the local one); otherwise a local Ray with
    ``num_cpus`` CPUs (default: all) is started and shut down again.
    """
    ray, tune = _import_ray()
    from td3drive.analysis import sweep_report

    shown = Path(root)  # as the user gave it, for the log
    root = shown.resolve()
    res = Resources(**spec["resources"])
    trials = {}
    for t in spec["trials"]:
        cfg = trial_config(base, spec["settings"][t["setting"]]["overrides"], t["seed"], res)
        trials[t["name"]] = {"name": t["name"], "run_dir": str(root / t["run_dir"]), "config": cfg.to_dict(),
                             "criteria": spec["criteria"], "cpus": res.cpu, "root": str(root)}
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     logging_level="WARNING", log_to_driver=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise SweepError(f"--address {address}: cannot start or reach Ray ({str(e).splitlines()[0]})") from None
    if not resume:
        start(base, spec, root)  # only now: a sweep that cannot reach Ray leaves nothing behind
    log(f"sweep directory: {shown} ({len(spec['trials'])} trials)")
    try:
        grid = _tuner(tune, trials, res, root, resume, log).fit()
        tune_view = {r.config["trial"]: {"error": r.error is not None, "metrics": dict(r.metrics or {})}
                     for r in grid if r.config}
    finally:
        if started:
            ray.shutdown()
    report = sweep_report.build(root)
    statuses = {o.name: o.status for o in report.outcomes}
    failed = [n for n, s in statuses.items() if s not in (FINISHED, GUARD_STOP)]
    for n in failed:
        log(f"trial {n}: {statuses[n]}")
    log(f"sweep report: {shown / 'sweep_report.md'}")
    return SweepResult(root, statuses, EXIT_NO_GO if failed else EXIT_OK, tune_view)


def _tuner(tune, trials: dict[str, dict], res: Resources, root: Path, resume: bool, log: Callable[[str], None]):
    """The Tune experiment of the sweep in ``root``: restored when ``resume`` and Tune can, else new."""
    # Tune sees only the trial names (its tables stay readable); the configs travel with the trainable.
    trainable = tune.with_resources(tune.with_parameters(run_trial, trials=trials), {"cpu": res.cpu, "gpu": res.gpu})
    experiment = root / "ray" / EXPERIMENT
    if resume and tune.Tuner.can_restore(str(experiment)):
        log(f"resuming the Tune experiment in {experiment}")
        return tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, restart_errored=True)
    if experiment.exists():  # an experiment too young to restore: start it again
        shutil.rmtree(experiment)
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(trials))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=res.max_concurrent,
            trial_name_creator=lambda trial: trial.config["trial"],
            trial_dirname_creator=lambda trial: trial.config["trial"].replace("/", "-"),
        ),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(root / "ray"), verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
