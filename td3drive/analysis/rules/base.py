"""What every health rule shares: severities, the finding and criteria-row types, the data a rule
reads (:class:`RunData`) and what it returns (:class:`Outcome`), and small series helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from td3drive.analysis import learning
from td3drive.analysis.criteria import Thresholds
from td3drive.analysis.events import Series

CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, INFO: 2}


@dataclass
class Finding:
    id: str
    severity: str
    title: str
    evidence: dict[str, Any]
    explanation: str
    steps: list[int] = field(default_factory=list)
    tag: str | None = None


@dataclass
class Criterion:
    id: str
    criterion: str
    value: float | None
    threshold: str
    weight: int
    status: str  # "pass" | "fail" | "not measured"
    gate: bool = True  # False: reported, but a stage does not gate on it (learning progress, update budget)


@dataclass(frozen=True)
class RunData:
    """What every rule reads: the run's series (canonical tags), its thresholds, the clipping threshold it
    trained with (None: unknown) and its update budget (None: not derivable)."""

    series: dict[str, Series]
    th: Thresholds
    max_grad_norm: float | None = None
    budget: learning.UpdateBudget | None = None


@dataclass
class Outcome:
    """What every rule returns: its findings and its rows of the criteria matrix (built by :func:`row`)."""

    findings: list[Finding] = field(default_factory=list)
    rows: list[Criterion] = field(default_factory=list)


def row(id: str, criterion: str, value: float | None, threshold: str, weight: int, measured: bool, ok: bool,
        gate: bool = True) -> Criterion:
    """A criteria-matrix row: "not measured" when the rule lacked the data, else pass or fail."""
    return Criterion(id, criterion, value, threshold, weight,
                     "not measured" if not measured else ("pass" if ok else "fail"), gate)


def _r(x: float) -> float:
    """Round for evidence: 4 significant digits."""
    return float(f"{x:.4g}") if np.isfinite(x) else float(x)


def _finite(s: Series) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(s.values)
    return s.steps[ok], s.values[ok]


def _window(n: int) -> int:
    return max(3, n // 5)
