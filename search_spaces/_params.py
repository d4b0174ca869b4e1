"""Hyperparameter types: backend-neutral descriptions of one searched value.

Every type maps a unit number u in [0, 1) to a value (`from_unit`), which makes seeded random,
quasi-random and grid sampling one mechanism (as KerasTuner's `prob_to_value`), counts its grid
points when it has finitely many (`count`, by arithmetic), and lists them (`grid_values`, refused
above MAX_GRID points so that a tiny step cannot build an astronomical tuple).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

Value = bool | int | float | str

MAX_GRID = 10_000
"""The most points a grid may hold: a parameter's own grid, and a space's configurations."""


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when `parent` takes one of `values`."""

    parent: str
    values: tuple[Value, ...]

    def holds(self, chosen: dict[str, Any]) -> bool:
        return self.parent in chosen and chosen[self.parent] in self.values


@dataclass(frozen=True)
class Float:
    """A float in [low, high]; `log` samples on a log scale; `step` makes it a finite grid."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    condition: Condition | None = None

    def __post_init__(self) -> None:
        _check_finite(low=self.low, high=self.high, step=self.step)
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        if self.step is not None and not math.isfinite((self.high - self.low) / self.step):
            raise ValueError(f"step {self.step} is too small for [{self.low}, {self.high}]")

    def count(self) -> int:
        """Grid points, floor((high - low) / step) + 1, computed without listing them, in
        decimal as Optuna does (0.3 / 0.1 is 3 here, not 2.9999999999999996)."""
        if self.step is None:
            raise ValueError("a float range without a step has no grid; give step or a list")
        span = Decimal(repr(self.high)) - Decimal(repr(self.low))
        with localcontext(prec=400):  # enough digits for any finite quotient of floats
            return int(span // Decimal(repr(self.step))) + 1

    def point(self, index: int) -> float:
        """The grid point `index`, rounded below the step to drop float noise (0.1 + 0.2)."""
        digits = max(12, 6 - math.floor(math.log10(self.step)))
        return round(self.low + index * self.step, digits)

    def grid_values(self) -> tuple[float, ...]:
        return tuple(self.point(i) for i in range(_bounded(self.count())))

    def points_among(self, candidates: Iterable[Any]) -> list[float]:
        """The grid points equal to one of `candidates`."""
        indices, n = set(), self.count()
        for value in filter(_is_finite_number, candidates):
            index = round((value - self.low) / self.step)
            if 0 <= index < n and self.point(index) == value:
                indices.add(index)
        return [self.point(i) for i in sorted(indices)]

    def from_unit(self, u: float) -> float:
        if self.step is not None:
            n = self.count()
            return self.point(min(int(u * n), n - 1))
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (both included) on a grid of `step`, optionally log-scaled."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    condition: Condition | None = None

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be combined")

    def count(self) -> int:
        """Grid points, computed without listing them."""
        return (self.high - self.low) // self.step + 1

    def point(self, index: int) -> int:
        return self.low + index * self.step

    def grid_values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.low + _bounded(self.count()) * self.step, self.step))

    def points_among(self, candidates: Iterable[Any]) -> list[int]:
        """The grid points equal to one of `candidates`."""
        indices = {
            int(value - self.low) // self.step
            for value in filter(_is_finite_number, candidates)
            if value == int(value)
            and self.low <= value <= self.high
            and (int(value) - self.low) % self.step == 0
        }
        return [self.point(i) for i in sorted(indices)]

    def from_unit(self, u: float) -> int:
        if self.log:
            value = math.exp(
                math.log(self.low) + u * (math.log(self.high + 1) - math.log(self.low))
            )
            return min(int(value), self.high)
        n = self.count()
        return self.point(min(int(u * n), n - 1))


@dataclass(frozen=True)
class Choice:
    """One of a finite list of values (numbers, strings or booleans)."""

    values: tuple[Value, ...]
    condition: Condition | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a choice needs at least one value")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ValueError(f"a choice lists a value twice: {list(self.values)}")

    def count(self) -> int:
        return len(self.values)

    def grid_values(self) -> tuple[Value, ...]:
        return self.values

    def points_among(self, candidates: Iterable[Any]) -> list[Value]:
        """The values equal to one of `candidates`."""
        candidates = list(candidates)
        return [v for v in self.values if v in candidates]

    def from_unit(self, u: float) -> Value:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]


@dataclass(frozen=True)
class Bool(Choice):
    """False or True."""

    values: tuple[Value, ...] = (False, True)


@dataclass(frozen=True)
class Fixed:
    """A value that is not searched but recorded with the others."""

    value: Value
    condition: Condition | None = None

    def count(self) -> int:
        return 1

    def grid_values(self) -> tuple[Value, ...]:
        return (self.value,)

    def points_among(self, candidates: Iterable[Any]) -> list[Value]:
        return [self.value] if self.value in list(candidates) else []

    def from_unit(self, u: float) -> Value:
        return self.value


Param = Float | Int | Choice | Bool | Fixed


def _check_finite(**numbers: float | None) -> None:
    for name, number in numbers.items():
        if number is not None and not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, got {number!r}")


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _bounded(count: int) -> int:
    """`count`, when a grid of that many points may be listed."""
    if count > MAX_GRID:
        raise ValueError(f"{count:,} grid points, more than the limit of {MAX_GRID:,}")
    return count
