"""The compiled Keras model of a builder's layers (`search_spaces.architecture`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from search_spaces._common import compile_model, normalize_and_activate, output_layer
from search_spaces.architecture import Activate, Builder, Conv, Dense, Dropout, Flatten, Pool
from search_spaces.regularizers import kernel_regularizer


def build_model(
    builder: Builder,
    values: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    task: str = "classification",
) -> keras.Model:
    """The compiled Keras model of `builder` for complete `values` (`Builder.complete`)."""
    regularizer = kernel_regularizer(values)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for layer in builder.layers(values, input_shape, n_outputs):
        if isinstance(layer, Flatten):
            x = keras.layers.Flatten(name=layer.name)(x)
        elif isinstance(layer, Dropout) and values[layer.key] > 0:
            kind = keras.layers.SpatialDropout2D if layer.spatial else keras.layers.Dropout
            x = kind(values[layer.key], name=layer.name)(x)
        elif isinstance(layer, Dense) and layer.output:
            x = output_layer(n_outputs, task, regularizer)(x)
        elif isinstance(layer, Dense):
            x = keras.layers.Dense(
                layer.units,
                kernel_regularizer=regularizer,
                use_bias=not values["batch_norm"],
                name=layer.name,
            )(x)
        elif isinstance(layer, Conv):
            x = keras.layers.Conv2D(
                layer.filters,
                layer.kernel_size,
                padding="same",
                kernel_regularizer=regularizer,
                use_bias=not values["batch_norm"],
                name=layer.name,
            )(x)
        elif isinstance(layer, Activate):
            x = normalize_and_activate(x, values, layer.suffix)
        elif isinstance(layer, Pool):
            kind = (
                keras.layers.MaxPooling2D if layer.kind == "max" else keras.layers.AveragePooling2D
            )
            x = kind(2, name=layer.name)(x)
    return compile_model(keras.Model(inputs, x, name=builder.name), values, task)
