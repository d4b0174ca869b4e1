"""Regularizers from plain values: the kernel regularizer's family and strengths, and Dropout.

Public for a custom builder (search_spaces.custom): `kernel_regularizer(values)` and
`dropout_layer(values)` read the campaign's `regularizer`, `l1`, `l2` and `dropout` keys as the
built-in builders do, so the diagnostics and the regularizer comparison mean the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def regularizer_family(values: Mapping[str, Any]) -> str:
    """`regularizer` when given, else inferred from which of `l1` and `l2` are positive."""
    family = values.get("regularizer")
    if family is not None:
        return family
    l1, l2 = values.get("l1", 0.0) > 0, values.get("l2", 0.0) > 0
    return {(False, False): "none", (True, False): "l1", (False, True): "l2"}.get((l1, l2), "l1l2")


def kernel_regularizer(values: Mapping[str, Any]) -> keras.regularizers.Regularizer | None:
    """The Keras regularizer of the family, or None for "none"; a missing `l1` or `l2` is 0."""
    family = regularizer_family(values)
    l1, l2 = float(values.get("l1", 0.0)), float(values.get("l2", 0.0))
    if family == "none":
        return None
    if family == "l1":
        return keras.regularizers.L1(l1)
    if family == "l2":
        return keras.regularizers.L2(l2)
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def dropout_layer(
    values: Mapping[str, Any], key: str = "dropout", name: str | None = None
) -> keras.layers.Dropout:
    """A Dropout layer at the rate `values[key]` (0, a no-op, when the key is missing)."""
    return keras.layers.Dropout(float(values.get(key, 0.0)), name=name)
