"""Statistics across seeds, as rliable recommends (Agarwal et al., 2021, "Deep RL at the edge of the
statistical precipice"): interquartile mean, stratified-bootstrap confidence intervals and the
probability of improvement.

Scores are arrays of shape ``[runs, tasks]`` (one column per task, one row per seed). A sweep over
one environment has one task; the functions take the general shape so that a grid over several
environments is handled the same way. Stratified bootstrap = every replicate resamples the runs of
each task independently, with replacement, so each task keeps its number of runs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]  # [reps, runs, tasks] -> [reps]


def _as_matrix(scores: np.ndarray | list) -> np.ndarray:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"scores must be [runs] or [runs, tasks] with at least one run, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("scores must be finite")
    return a


def _iqm_batched(x: np.ndarray) -> np.ndarray:
    """IQM of each replicate: ``x`` is [reps, runs, tasks]; all runs and tasks of a replicate pooled."""
    flat = np.sort(x.reshape(x.shape[0], -1), axis=1)
    n = flat.shape[1]
    cut = int(0.25 * n)  # scipy.stats.trim_mean(…, 0.25): drop int(0.25 n) from each end
    return flat[:, cut:n - cut].mean(axis=1)


def iqm(scores: np.ndarray | list) -> float:
    """Interquartile mean: the mean of the middle 50 % of all scores (25 % trimmed from each end).

    With fewer than 4 scores nothing is trimmed (it is the mean), as in ``scipy.stats.trim_mean``.
    """
    a = _as_matrix(scores)
    return float(_iqm_batched(a[None])[0])


def mean(scores: np.ndarray | list) -> float:
    return float(_as_matrix(scores).mean())


def stratified_resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """[reps, runs, tasks]: each replicate draws ``runs`` rows with replacement within every task."""
    runs, tasks = scores.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[idx, np.arange(tasks)]


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _check_bootstrap(reps: int, confidence: float) -> None:
    if reps < 1 or not 0 < confidence < 1:
        raise ValueError(f"reps {reps} must be >= 1 and confidence {confidence} in (0, 1)")


def bootstrap_ci(
    scores: np.ndarray | list,
    statistic: Statistic = _iqm_batched,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile confidence interval of ``statistic`` under the stratified bootstrap.

    ``statistic`` maps a [reps, runs, tasks] batch to [reps] (default: IQM). Deterministic in ``seed``.
    """
    a = _as_matrix(scores)
    _check_bootstrap(reps, confidence)
    return _percentile_interval(statistic(stratified_resample(a, reps, np.random.default_rng(seed))), confidence)


def mean_difference_ci(
    before: np.ndarray, after: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of ``mean(after) - mean(before)``, each sample resampled with replacement."""
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(seed)
    b = stratified_resample(_as_matrix(before), reps, rng).mean(axis=(1, 2))
    a = stratified_resample(_as_matrix(after), reps, rng).mean(axis=(1, 2))
    return _percentile_interval(a - b, confidence)


def _poi_batched(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) for each replicate: x [reps, n, tasks], y [reps, m, tasks] -> [reps]."""
    diff = x[:, :, None, :] - y[:, None, :, :]  # [reps, n, m, tasks]
    wins = (diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))  # Mann-Whitney U / (n m)
    return wins.mean(axis=1)  # averaged over tasks


def probability_of_improvement(x: np.ndarray | list, y: np.ndarray | list) -> float:
    """P(X > Y): the chance that a random run of X scores higher than a random run of Y on the same
    task (ties count one half), averaged over tasks. 0.5 means no difference."""
    a, b = _as_matrix(x), _as_matrix(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x has {a.shape[1]} tasks and y {b.shape[1]}")
    return float(_poi_batched(a[None], b[None])[0])


def probability_of_improvement_ci(
    x: np.ndarray | list, y: np.ndarray | list, reps: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of :func:`probability_of_improvement`, both samples resampled (stratified)."""
    a, b = _as_matrix(x), _as_matrix(y)
    _check_bootstrap(reps, confidence)
    rng = np.random.default_rng(seed)
    return _percentile_interval(_poi_batched(stratified_resample(a, reps, rng), stratified_resample(b, reps, rng)),
                                confidence)
