"""What one run produces, and the vocabulary the records share (no Keras, no engine)."""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    """How a run (configuration x seed) stands; the values are the strings the records store."""

    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    PRUNED = "PRUNED"
    RUNNING = "RUNNING"


FINISHED = frozenset({Status.COMPLETE, Status.FAILED, Status.PRUNED})

DIRECTIONS = ("maximize", "minimize")
_MINIMIZED = ("loss", "error", "mae", "mse")


def direction_of(objective: str) -> str:
    """ "minimize" for losses and errors, else "maximize"."""
    return "minimize" if objective.endswith(_MINIMIZED) else "maximize"


def check_direction(direction: str) -> str:
    """`direction` when it is "maximize" or "minimize", else ValueError."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: {direction!r} is not one of maximize, minimize")
    return direction


def direction_sign(direction: str) -> float:
    """1.0 when maximizing, -1.0 when minimizing: `sign * value` is larger when better."""
    return 1.0 if check_direction(direction) == "maximize" else -1.0


# The score, defined once. A run's best objective is its best finite value over epochs (the first
# epoch on ties). A configuration's objective is the mean over its seeds of their runs' best
# objectives, and exists only when every seed is COMPLETE with a finite best objective; otherwise
# it is NaN: the configuration found nothing, is not ranked and cannot be chosen. NaN is never
# better than anything; among equal objectives the earlier (lower trial, earlier epoch) wins.


def is_better(a: float, b: float, direction: str) -> bool:
    """Whether `a` is strictly better than `b`: a NaN `a` never is; any other `a` beats a NaN
    `b`."""
    maximize = check_direction(direction) == "maximize"
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a > b if maximize else a < b


def best_index(values: Iterable[float], direction: str) -> int | None:
    """The position of the best finite value (the first on ties), None when no value is finite:
    a run's best epoch (0-based) from its per-epoch objective, or the best of configurations."""
    check_direction(direction)
    best: int | None = None
    best_value = math.nan
    for i, value in enumerate(values):
        value = float(value)
        if math.isfinite(value) and is_better(value, best_value, direction):
            best, best_value = i, value
    return best


def configuration_objective(statuses: Iterable[str], run_objectives: Iterable[float]) -> float:
    """A configuration's objective from its seeds' statuses and runs' best objectives (in the same
    order): their mean (`statistics.fmean`), NaN unless every seed is COMPLETE with a finite
    value (and there is at least one seed)."""
    statuses, values = list(statuses), [float(v) for v in run_objectives]
    if len(statuses) != len(values):
        raise ValueError(f"{len(statuses)} statuses for {len(values)} objectives")
    usable = all(s == Status.COMPLETE for s in statuses) and all(map(math.isfinite, values))
    return statistics.fmean(values) if values and usable else math.nan


class CurveTracker:
    """One run's curves as its epochs end: it fails on a non-finite training loss or a missing
    objective, and knows whether the epoch just added is the best so far (`best_index`'s rule).
    `study.trial` (a run alone) and `study.population` (each member) both record through it."""

    def __init__(self, objective: str, direction: str) -> None:
        self.objective, self.direction = objective, check_direction(direction)
        self.history: dict[str, list[float]] = {}
        self.best = math.nan
        self.status, self.failure = Status.COMPLETE, ""

    def record(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """Add epoch `epoch` (0-based) of `train_<metric>`/`val_<metric>` values; True when it is
        the best epoch so far (keep its weights). A failed run records no more epochs."""
        for column, value in logs.items():
            self.history.setdefault(column, []).append(value)
        loss = logs.get("train_loss", 0.0)
        if not math.isfinite(loss):
            self.status = Status.FAILED
            self.failure = f"diverged: training loss {loss} at epoch {epoch + 1}"
            return False
        if self.objective not in self.history:
            self.status = Status.FAILED
            self.failure = (
                f"objective {self.objective} is not among the metrics: {sorted(self.history)}"
            )
            return False
        value = self.history[self.objective][-1]
        if math.isfinite(value) and is_better(value, self.best, self.direction):
            self.best = value
            return True
        return False

    def fail(self, error: Exception) -> None:
        """An exception ends the run FAILED with its reason (unless it ended already)."""
        if self.status == Status.COMPLETE:
            self.status, self.failure = Status.FAILED, f"{type(error).__name__}: {error}".strip()

    def result(self, duration_s: float) -> RunResult:
        return RunResult(self.status, self.history, duration_s, self.failure)


@dataclass
class RunResult:
    """The outcome of one configuration x seed: its per-epoch history and how it ended."""

    status: str
    history: dict[str, list[float]] = field(default_factory=dict)  # "train_loss": [...], ...
    duration_s: float = 0.0
    failure: str = ""
