"""`SearchSpace`: an ordered mapping of names to hyperparameter types.

It counts its grid by arithmetic and enumerates it (up to MAX_GRID configurations) in a
deterministic order (parameters in insertion order, the last one varying fastest, as
`itertools.product`), samples with a seed, and round-trips to JSON. A conditional parameter is
absent from a configuration whose parent value does not activate it, so the grid holds no
configurations that differ only in an unused value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from search_spaces._params import MAX_GRID, Bool, Choice, Condition, Fixed, Float, Int, Param

_TYPES = {cls.__name__: cls for cls in (Float, Int, Choice, Bool, Fixed)}


class SearchSpace:
    """Named hyperparameters; a parameter's condition may name only parameters before it."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        self.params: dict[str, Param] = dict(params)
        seen: set[str] = set()
        for name, param in self.params.items():
            if param.condition is not None and param.condition.parent not in seen:
                raise ValueError(
                    f"{name}: its condition names {param.condition.parent!r}, "
                    "which must be a parameter listed before it"
                )
            seen.add(name)

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and list(self.params.items()) == list(
            other.params.items()
        )

    @property
    def searched(self) -> list[str]:
        """Names of the parameters that take more than one value."""
        return [n for n, p in self.params.items() if not isinstance(p, Fixed)]

    def is_active(self, name: str, chosen: Mapping[str, Any]) -> bool:
        condition = self.params[name].condition
        return condition is None or condition.holds(dict(chosen))

    # --- grid -------------------------------------------------------------------------------
    def grid(self) -> Iterator[dict[str, Any]]:
        """Every configuration of the grid, in a deterministic order; refused above MAX_GRID."""
        size = self.grid_size()
        if size > MAX_GRID:
            raise ValueError(f"the grid has {size:,} configurations, more than {MAX_GRID:,}")
        names = list(self.params)

        def extend(i: int, chosen: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(names):
                yield dict(chosen)
                return
            name = names[i]
            if not self.is_active(name, chosen):
                yield from extend(i + 1, chosen)
                return
            for value in self.params[name].grid_values():
                chosen[name] = value
                yield from extend(i + 1, chosen)
                del chosen[name]

        yield from extend(0, {})

    def grid_size(self) -> int:
        """The number of configurations `grid` lists, counted without listing them.

        A parent's values that some condition names are followed one by one; its other values
        activate the same parameters, so they are followed once, as one group of that many.
        """
        names = list(self.params)
        named: dict[str, list[Any]] = {name: [] for name in names}
        for param in self.params.values():
            if param.condition is not None:
                named[param.condition.parent] += param.condition.values
        groups = {name: _value_groups(self.params[name], named[name]) for name in names}
        # Parents whose value decides the activity of parameter i or of one after it.
        parents_from = [
            sorted({p.condition.parent for p in list(self.params.values())[i:] if p.condition})
            for i in range(len(names) + 1)
        ]
        memo: dict[tuple, int] = {}

        def count(i: int, chosen: dict[str, Any]) -> int:
            if i == len(names):
                return 1
            key = (i, tuple(chosen.get(p, _ABSENT) for p in parents_from[i]))
            if key not in memo:
                name = names[i]
                if not self.is_active(name, chosen):
                    memo[key] = count(i + 1, chosen)
                else:
                    memo[key] = sum(
                        n * count(i + 1, {**chosen, name: value}) for value, n in groups[name]
                    )
            return memo[key]

        return count(0, {})

    # --- sampling ---------------------------------------------------------------------------
    def from_unit(self, units: Mapping[str, float]) -> dict[str, Any]:
        """The configuration for one unit number per parameter (inactive ones are skipped)."""
        chosen: dict[str, Any] = {}
        for name, param in self.params.items():
            if self.is_active(name, chosen):
                chosen[name] = param.from_unit(float(units[name]))
        return chosen

    def sample(self, seed: int) -> dict[str, Any]:
        """A configuration drawn uniformly (per each parameter's scale) with its own seed."""
        rng = np.random.default_rng(seed)
        return self.from_unit({name: rng.random() for name in self.params})

    # --- JSON -------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {name: _param_to_dict(p) for name, p in self.params.items()}, sort_keys=False
        )

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls({name: _param_from_dict(d) for name, d in json.loads(text).items()})


_ABSENT = object()  # a parent left out of the configuration (its own condition does not hold)
_OTHERS = object()  # stands for a parent's values that no condition names


def _value_groups(param: Param, named: list[Any]) -> list[tuple[Any, int]]:
    """(value, how many values it stands for): each named grid value alone, the others as one."""
    points = param.points_among(named) if named else []
    others = param.count() - len(points)
    return [(value, 1) for value in points] + ([(_OTHERS, others)] if others else [])


def configuration_key(values: Mapping[str, Any]) -> str:
    """A short stable name of a configuration: equal values give an equal key."""
    canonical = json.dumps(dict(values), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _param_to_dict(param: Param) -> dict[str, Any]:
    fields = {f.name: getattr(param, f.name) for f in dataclasses.fields(param)}
    if fields.get("condition") is not None:
        fields["condition"] = {
            "parent": param.condition.parent,
            "values": list(param.condition.values),
        }
    if "values" in fields:
        fields["values"] = list(fields["values"])
    return {"type": type(param).__name__, **fields}


def _param_from_dict(data: Mapping[str, Any]) -> Param:
    fields = dict(data)
    cls = _TYPES[fields.pop("type")]
    if fields.get("condition") is not None:
        cond = fields["condition"]
        fields["condition"] = Condition(cond["parent"], tuple(cond["values"]))
    if "values" in fields:
        fields["values"] = tuple(fields["values"])
    return cls(**fields)
