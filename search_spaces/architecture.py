"""The builders' networks as plain data, and the Keras models made from them.

`layers(builder, values, input_shape)` lists the layers `build_mlp` and `build_cnn` create, in the
order they create them, with their shapes. `build_model` turns that list into one compiled Keras
model; `search_spaces.stacked` turns it into K models stacked along a leading member axis. One
description serves both, so a population member and the same configuration trained alone cannot
drift apart (`tests/study/test_population.py` checks them against each other bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras

from search_spaces._common import compile_model, normalize_and_activate, output_layer, per_layer
from search_spaces.keys import defaults
from search_spaces.regularizers import kernel_regularizer


@dataclass(frozen=True)
class Flatten:
    name: str = "flatten"


@dataclass(frozen=True)
class Dropout:
    """Dropout (or SpatialDropout2D) at the rate `values[key]`; no layer when that rate is 0."""

    name: str
    key: str
    spatial: bool = False


@dataclass(frozen=True)
class Dense:
    """A Dense kernel of shape (fan_in, units); the output layer when `output`."""

    name: str
    fan_in: int
    units: int
    output: bool = False

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return (self.fan_in, self.units)

    @property
    def activations(self) -> int:
        """The most activations per example this layer reads or writes."""
        return max(self.fan_in, self.units)


@dataclass(frozen=True)
class Conv:
    """A Conv2D ("same" padding) of `filters` on maps of height x width x channels."""

    name: str
    channels: int
    filters: int
    kernel_size: int
    height: int
    width: int

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return (self.kernel_size, self.kernel_size, self.channels, self.filters)

    @property
    def units(self) -> int:  # the bias length
        return self.filters

    @property
    def activations(self) -> int:
        return self.height * self.width * max(self.channels, self.filters)


@dataclass(frozen=True)
class Activate:
    """[BatchNormalization ->] the activation, named after the layer they follow."""

    suffix: str


@dataclass(frozen=True)
class Pool:
    """2x2 pooling, stride 2, "valid" padding."""

    name: str
    kind: str  # "max" or "average"


Layer = Flatten | Dropout | Dense | Conv | Activate | Pool


def layers(
    builder: str, values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int
) -> list[Layer]:
    """The layers of `builder` ("mlp" or "cnn") for `values` (every key of `defaults(builder)`),
    in the order the builder creates them (the order Keras draws their seeds in)."""
    if builder == "mlp":
        hidden, width = _mlp_layers(values, input_shape)
    elif builder == "cnn":
        hidden, width = _cnn_layers(values, input_shape)
    else:
        raise ValueError(f"builder: unknown {builder!r}")
    return [*hidden, Dense("output", width, n_outputs, output=True)]


def _mlp_layers(v: Mapping[str, Any], input_shape: tuple[int, ...]) -> tuple[list[Layer], int]:
    out: list[Layer] = [Flatten()] if len(input_shape) > 1 else []
    out.append(Dropout("input_dropout", "input_dropout"))
    width = math.prod(input_shape)
    for i, units in enumerate(per_layer(v["units"], v["hidden_layers"], "units"), start=1):
        out += [
            Dense(f"dense_{i}", width, units),
            Activate(str(i)),
            Dropout(f"dropout_{i}", "dropout"),
        ]
        width = units
    return out, width


def _cnn_layers(v: Mapping[str, Any], input_shape: tuple[int, ...]) -> tuple[list[Layer], int]:
    if len(input_shape) != 3:
        raise ValueError(f"build_cnn needs images (height, width, channels), got {input_shape}")
    height, width, channels = input_shape
    out: list[Layer] = []
    for b, filters in enumerate(per_layer(v["filters"], v["conv_blocks"], "filters"), start=1):
        for c in range(1, v["convs_per_block"] + 1):
            out += [
                Conv(f"conv_{b}_{c}", channels, filters, v["kernel_size"], height, width),
                Activate(f"{b}_{c}"),
            ]
            channels = filters
        if v["pooling"] != "none" and min(height, width) >= 2:
            out.append(Pool(f"pool_{b}", v["pooling"]))
            height, width = height // 2, width // 2
        out.append(Dropout(f"block_dropout_{b}", "block_dropout", spatial=v["spatial_dropout"]))
    out.append(Flatten())
    features = height * width * channels
    for i in range(1, v["dense_layers"] + 1):
        out += [
            Dense(f"dense_{i}", features, v["dense_units"]),
            Activate(f"dense_{i}"),
            Dropout(f"dropout_{i}", "dropout"),
        ]
        features = v["dense_units"]
    return out, features


def build_model(
    builder: str,
    values: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    task: str = "classification",
) -> keras.Model:
    """The compiled Keras model of `builder` for `values` (missing keys take their defaults)."""
    v = defaults(builder) | dict(values)
    regularizer = kernel_regularizer(v)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for layer in layers(builder, v, input_shape, n_outputs):
        if isinstance(layer, Flatten):
            x = keras.layers.Flatten(name=layer.name)(x)
        elif isinstance(layer, Dropout) and v[layer.key] > 0:
            kind = keras.layers.SpatialDropout2D if layer.spatial else keras.layers.Dropout
            x = kind(v[layer.key], name=layer.name)(x)
        elif isinstance(layer, Dense) and layer.output:
            x = output_layer(n_outputs, task, regularizer)(x)
        elif isinstance(layer, Dense):
            x = keras.layers.Dense(
                layer.units,
                kernel_regularizer=regularizer,
                use_bias=not v["batch_norm"],
                name=layer.name,
            )(x)
        elif isinstance(layer, Conv):
            x = keras.layers.Conv2D(
                layer.filters,
                layer.kernel_size,
                padding="same",
                kernel_regularizer=regularizer,
                use_bias=not v["batch_norm"],
                name=layer.name,
            )(x)
        elif isinstance(layer, Activate):
            x = normalize_and_activate(x, v, layer.suffix)
        elif isinstance(layer, Pool):
            kind = (
                keras.layers.MaxPooling2D if layer.kind == "max" else keras.layers.AveragePooling2D
            )
            x = kind(2, name=layer.name)(x)
    return compile_model(keras.Model(inputs, x, name=builder), v, task)


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
    return build_model("mlp", values, input_shape=input_shape, n_outputs=n_outputs, task=task)


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
    defaults. The kernel regularizer applies to every conv and Dense kernel. A block skips its
    pooling once the feature map is less than 2 high or wide.
    """
    return build_model("cnn", values, input_shape=input_shape, n_outputs=n_outputs, task=task)
