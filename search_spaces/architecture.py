"""The builders (`Builder`: `MLP`, `CNN`) and their networks as plain data, without Keras.

A campaign resolves its `model.builder` name to one `Builder` (`BUILDERS`) once; training alone,
population training and validation all use that object. `Builder.layers` lists the layers the
model creates, in the order it creates them, with their shapes: `search_spaces.model` turns that
list into one compiled Keras model, `search_spaces.stacked` into K models stacked along a leading
member axis. One description serves both, so a population member and the same configuration
trained alone cannot drift apart (`tests/study/test_population.py` checks them bit for bit).
Keras is imported when a model is built (`Builder.build`), not when a campaign is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search_spaces.keys import CNN_KEYS, MLP_KEYS, TRAIN_KEYS, KeySpec

if TYPE_CHECKING:
    import keras


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


# The hidden layers of a builder for complete values and an input shape, and the width of the
# last one (the output layer's fan-in).
Plan = Callable[[Mapping[str, Any], tuple[int, ...]], tuple[list[Layer], int]]


@dataclass(frozen=True)
class Builder:
    """A model builder: its name (`model.builder`), the model keys it reads (with `TRAIN_KEYS`),
    the hidden layers it plans, and whether its inputs must be images (height, width, channels).
    """

    name: str
    keys: Mapping[str, KeySpec] = field(repr=False)
    plan: Plan = field(repr=False)
    needs_images: bool = False
    stacks = True  # population training can stack its layers (search_spaces.stacked)

    def defaults(self) -> dict[str, Any]:
        """Every model and training key with its default value."""
        return {key: spec.default for key, spec in {**self.keys, **TRAIN_KEYS}.items()}

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` with every missing key at its default: the complete values that the layer
        code (`layers`, `search_spaces.model`, `search_spaces.stacked`) reads."""
        return self.defaults() | dict(values)

    @property
    def member_keys(self) -> frozenset[str]:
        """The keys the members of one population may differ in (KeySpec.per_member)."""
        specs = {**self.keys, **TRAIN_KEYS}
        return frozenset(key for key, spec in specs.items() if spec.per_member)

    def layers(
        self, values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int
    ) -> list[Layer]:
        """The layers for complete `values`, in the order the model creates them (the order
        Keras draws their seeds in)."""
        if self.needs_images and len(input_shape) != 3:
            raise ValueError(
                f"{self.name} needs images (height, width, channels), got {input_shape}"
            )
        hidden, width = self.plan(values, input_shape)
        return [*hidden, Dense("output", width, n_outputs, output=True)]

    def build(
        self,
        values: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        n_outputs: int,
        task: str = "classification",
    ) -> keras.Model:
        """The compiled Keras model for `values` (any of `keys` and `TRAIN_KEYS`; missing keys
        take their defaults). The kernel regularizer applies to every kernel, the output's
        included. Imports Keras."""
        from search_spaces.model import build_model

        return build_model(
            self, self.complete(values), input_shape=input_shape, n_outputs=n_outputs, task=task
        )


def per_layer(value: Any, count: int, key: str) -> list[Any]:
    """One value per layer: a list of exactly `count`, or a single value repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{key}: {len(value)} values for {count} layers")
        return list(value)
    return [value] * count


def _mlp_layers(v: Mapping[str, Any], input_shape: tuple[int, ...]) -> tuple[list[Layer], int]:
    """[input Dropout] -> (Dense [-> BatchNorm] -> activation -> Dropout) x hidden_layers."""
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
    """Blocks of (Conv2D [-> BatchNorm] -> activation) x convs_per_block -> pooling -> Dropout
    or SpatialDropout2D, then a dense head with Dropout. A block skips its pooling once the
    feature map is less than 2 high or wide."""
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


MLP = Builder("mlp", MLP_KEYS, _mlp_layers)
CNN = Builder("cnn", CNN_KEYS, _cnn_layers, needs_images=True)
BUILDERS: dict[str, Builder] = {builder.name: builder for builder in (MLP, CNN)}
