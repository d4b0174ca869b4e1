"""`build_cnn`: a convolutional network from plain values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from search_spaces._common import compile_model, normalize_and_activate, output_layer, per_layer
from search_spaces.keys import CNN_KEYS
from search_spaces.regularizers import kernel_regularizer


def build_cnn(
    values: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    task: str = "classification",
) -> keras.Model:
    """A compiled CNN: blocks of (Conv2D [-> BatchNorm] -> activation) x convs_per_block -> pooling
    -> Dropout or SpatialDropout2D, then a dense head with Dropout.

    `values` holds any of `search_spaces.keys.CNN_KEYS` and `TRAIN_KEYS`; missing keys take their
    defaults. The kernel regularizer applies to every conv and Dense kernel.
    """
    v = {k: spec.default for k, spec in CNN_KEYS.items()} | dict(values)
    if len(input_shape) != 3:
        raise ValueError(f"build_cnn needs images (height, width, channels), got {input_shape}")
    regularizer = kernel_regularizer(v)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for b, filters in enumerate(per_layer(v["filters"], v["conv_blocks"], "filters"), start=1):
        for c in range(1, v["convs_per_block"] + 1):
            x = keras.layers.Conv2D(
                filters,
                v["kernel_size"],
                padding="same",
                kernel_regularizer=regularizer,
                use_bias=not v["batch_norm"],
                name=f"conv_{b}_{c}",
            )(x)
            x = normalize_and_activate(x, v, f"{b}_{c}")
        if v["pooling"] != "none" and min(x.shape[1:3]) >= 2:
            pool = (
                keras.layers.MaxPooling2D
                if v["pooling"] == "max"
                else keras.layers.AveragePooling2D
            )
            x = pool(2, name=f"pool_{b}")(x)
        if v["block_dropout"] > 0:
            drop = keras.layers.SpatialDropout2D if v["spatial_dropout"] else keras.layers.Dropout
            x = drop(v["block_dropout"], name=f"block_dropout_{b}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i in range(1, v["dense_layers"] + 1):
        x = keras.layers.Dense(
            v["dense_units"],
            kernel_regularizer=regularizer,
            use_bias=not v["batch_norm"],
            name=f"dense_{i}",
        )(x)
        x = normalize_and_activate(x, v, f"dense_{i}")
        if v["dropout"] > 0:
            x = keras.layers.Dropout(v["dropout"], name=f"dropout_{i}")(x)
    outputs = output_layer(n_outputs, task, regularizer)(x)
    return compile_model(keras.Model(inputs, outputs, name="cnn"), v, task)
