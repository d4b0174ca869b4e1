"""The values each builder and the training loop understand: type, default and valid range.

A campaign file may fix or search only these keys; `check` names what is wrong with one value, so
the same rule validates a fixed value, each element of a choice, and both ends of a range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
REGULARIZERS = ("none", "l1", "l2", "l1l2")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies


@dataclass(frozen=True)
class KeySpec:
    """One key: its type, default, and valid values (`low`/`high` bounds or `choices`)."""

    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    per_layer: bool = False  # may also be a list with one value per layer or block
    # The regularizer whose rate or strength this key sets: "dropout", "l1" or "l2".
    regularizer: str | None = None
    # Members of one population (study.population) may differ in it: the stacked model holds
    # one value per member.
    per_member: bool = False
    doc: str = ""

    def coerce(self, value: Any) -> Any:
        """The value in this key's type (an int where a float is expected becomes a float)."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def check(self, value: Any) -> str | None:
        """None when `value` is valid, else what is wrong with it."""
        if self.per_layer and isinstance(value, list):
            if not value:
                return "an empty list"
            return next((p for p in map(self._check_one, value) if p), None)
        return self._check_one(value)

    def _check_one(self, value: Any) -> str | None:
        if self.kind is float:
            ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok_type = isinstance(value, self.kind) and not (
                self.kind is int and isinstance(value, bool)
            )
        if not ok_type:
            return f"{value!r} is not {_TYPE_NAMES[self.kind]}"
        if self.kind is float and not math.isfinite(value):
            return f"{value!r} is not a finite number"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(str, self.choices))}"
        below = self.low is not None and value < self.low
        above = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if below or above:
            lower = "-inf" if self.low is None else _show(self.low)
            upper = "inf" if self.high is None else _show(self.high)
            return f"{value!r} is outside [{lower}, {upper}{')' if self.high_open else ']'}"
        return None


def _show(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}

_RATE = dict(
    kind=float,
    default=0.0,
    low=0.0,
    high=1.0,
    high_open=True,
    regularizer="dropout",
    per_member=True,
)
_STRENGTH = dict(kind=float, default=0.0, low=0.0, per_member=True)
# Upper bounds of counts and sizes: far above any sensible model, low enough to refuse a typo
# like 10**30 before it builds anything.
_LAYERS, _WIDTH = 1_000, 65_536

# Shared by both builders: regularization and normalization of kernels.
_REGULARIZATION = {
    "regularizer": KeySpec(
        str,
        None,
        choices=REGULARIZERS,
        per_member=True,
        doc="kernel regularizer family; unset: inferred from which of l1, l2 are > 0",
    ),
    "l1": KeySpec(**_STRENGTH, regularizer="l1", doc="L1 strength on every kernel"),
    "l2": KeySpec(**_STRENGTH, regularizer="l2", doc="L2 strength on every kernel"),
    "batch_norm": KeySpec(bool, False, doc="batch normalization before each activation"),
    "activation": KeySpec(str, "relu", choices=ACTIVATIONS),
}

MLP_KEYS: dict[str, KeySpec] = {
    "hidden_layers": KeySpec(int, 2, low=0, high=_LAYERS),
    "units": KeySpec(
        int, 128, low=1, high=_WIDTH, per_layer=True, doc="one value or one per hidden layer"
    ),
    "dropout": KeySpec(**_RATE, doc="Dropout rate after each hidden layer"),
    "input_dropout": KeySpec(**_RATE, doc="Dropout rate on the inputs"),
    **_REGULARIZATION,
}

CNN_KEYS: dict[str, KeySpec] = {
    "conv_blocks": KeySpec(int, 2, low=1, high=_LAYERS),
    "filters": KeySpec(
        int, 32, low=1, high=_WIDTH, per_layer=True, doc="one value or one per block"
    ),
    "kernel_size": KeySpec(int, 3, low=1, high=_LAYERS),
    "convs_per_block": KeySpec(int, 1, low=1, high=_LAYERS),
    "pooling": KeySpec(str, "max", choices=("max", "average", "none")),
    "block_dropout": KeySpec(**_RATE, doc="Dropout rate after each conv block"),
    "spatial_dropout": KeySpec(bool, False, doc="SpatialDropout2D instead of Dropout in blocks"),
    "dense_layers": KeySpec(int, 1, low=0, high=_LAYERS),
    "dense_units": KeySpec(int, 128, low=1, high=_WIDTH),
    "dropout": KeySpec(**_RATE, doc="Dropout rate after each dense layer of the head"),
    **_REGULARIZATION,
}

TRAIN_KEYS: dict[str, KeySpec] = {
    "epochs": KeySpec(int, 20, low=1, high=100_000),
    "batch_size": KeySpec(int, 64, low=1, high=2**20),
    "optimizer": KeySpec(str, "adam", choices=OPTIMIZERS),
    "learning_rate": KeySpec(float, 1e-3, low=1e-12, high=10.0, per_member=True),
    "momentum": KeySpec(float, 0.0, low=0.0, high=1.0, high_open=True, doc="sgd only"),
    "precision": KeySpec(
        str,
        "float32",
        choices=PRECISIONS,
        doc="Keras dtype policy of the run (study.trial.fresh_session sets it); the output "
        "layer computes in float32",
    ),
}

_REGULARIZER_OF = {
    key: spec.regularizer for key, spec in (MLP_KEYS | CNN_KEYS).items() if spec.regularizer
}
# The keys a custom builder's campaign (search_spaces.custom) may use with their meaning kept:
# validated as the built-in builders' are, read by the diagnostics and the regularizer comparison.
REGULARIZATION_KEYS: dict[str, KeySpec] = {
    key: spec
    for key, spec in (MLP_KEYS | CNN_KEYS).items()
    if spec.regularizer or key == "regularizer"
}


def regularizer_of(key: str) -> str | None:
    """The regularizer ("dropout", "l1" or "l2") whose rate or strength the model key `key`
    sets, from its KeySpec; None for any other key (`spatial_dropout` is a flag: None)."""
    return _REGULARIZER_OF.get(key)
