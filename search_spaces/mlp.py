"""`build_mlp`: a multilayer perceptron from plain values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from search_spaces._common import compile_model, normalize_and_activate, output_layer, per_layer
from search_spaces.keys import MLP_KEYS
from search_spaces.regularizers import kernel_regularizer


def build_mlp(
    values: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    task: str = "classification",
) -> keras.Model:
    """A compiled MLP: [input Dropout] -> (Dense [-> BatchNorm] -> activation -> Dropout) x N
    -> output.

    `values` holds any of `search_spaces.keys.MLP_KEYS` and `TRAIN_KEYS`; missing keys take their
    defaults. The kernel regularizer applies to every Dense kernel, the output's included.
    """
    v = {k: spec.default for k, spec in MLP_KEYS.items()} | dict(values)
    regularizer = kernel_regularizer(v)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    if v["input_dropout"] > 0:
        x = keras.layers.Dropout(v["input_dropout"], name="input_dropout")(x)
    for i, units in enumerate(per_layer(v["units"], v["hidden_layers"], "units"), start=1):
        x = keras.layers.Dense(
            units,
            kernel_regularizer=regularizer,
            use_bias=not v["batch_norm"],
            name=f"dense_{i}",
        )(x)
        x = normalize_and_activate(x, v, str(i))
        if v["dropout"] > 0:
            x = keras.layers.Dropout(v["dropout"], name=f"dropout_{i}")(x)
    outputs = output_layer(n_outputs, task, regularizer)(x)
    return compile_model(keras.Model(inputs, outputs, name="mlp"), v, task)
