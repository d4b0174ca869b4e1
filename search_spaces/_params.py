"""Hyperparameter types: backend-neutral descriptions of one searched value.

Every type maps a unit number u in [0, 1) to a value (`from_unit`), which makes seeded random,
quasi-random and grid sampling one mechanism (as KerasTuner's `prob_to_value`), and lists its grid
points when it has finitely many (`grid_values`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Value = bool | int | float | str


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
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")

    def grid_values(self) -> tuple[float, ...]:
        if self.step is None:
            raise ValueError("a float range without a step has no grid; give step or a list")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return tuple(round(self.low + i * self.step, 12) for i in range(n))

    def from_unit(self, u: float) -> float:
        if self.step is not None:
            points = self.grid_values()
            return points[min(int(u * len(points)), len(points) - 1)]
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
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is greater than high {self.high}")
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low}")
        if self.log and self.step != 1:
            raise ValueError("step and log cannot be combined")

    def grid_values(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1, self.step))

    def from_unit(self, u: float) -> int:
        if self.log:
            value = math.exp(
                math.log(self.low) + u * (math.log(self.high + 1) - math.log(self.low))
            )
            return min(int(value), self.high)
        points = self.grid_values()
        return points[min(int(u * len(points)), len(points) - 1)]


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

    def grid_values(self) -> tuple[Value, ...]:
        return self.values

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

    def grid_values(self) -> tuple[Value, ...]:
        return (self.value,)

    def from_unit(self, u: float) -> Value:
        return self.value


Param = Float | Int | Choice | Bool | Fixed
