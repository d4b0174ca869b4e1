"""`StackedMLP`: K multilayer perceptrons of `build_mlp`'s architecture as one Keras model.

Each layer's kernels are stacked along a leading member axis, shape (K, fan_in, fan_out), and
multiplied as one batched product; each member has its own Dropout rates and masks and its own
L1/L2 strengths, and the loss is the sum of the members' losses, so each member's gradients (and
an element-wise optimizer's state) are its own. `member_initial_state` draws the initial weights
and Dropout seeds `build_mlp` would draw for one member; `study.population` trains the model.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from search_spaces._common import per_layer
from search_spaces.regularizers import regularizer_family

# Dropout masks: "member" draws each member's masks from the seed generators its own sequential
# model would own (the same masks as `train_run`; one random op per member and Dropout layer);
# "population" draws all members' masks at once from one generator seeded by their seeds (one
# op per Dropout layer: faster to trace and to run; the masks differ from `train_run`'s, so
# members with Dropout match their sequential runs in distribution, not curve for curve).
MASKS = ("member", "population")


class _MemberMean(keras.metrics.Metric):
    """A running mean per member: `update_state(values (K,), weight)`; result has shape (K,)."""

    def __init__(self, size: int, name: str) -> None:
        super().__init__(name=name)
        self.total = self.add_variable(shape=(size,), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values: Any, weight: Any) -> None:
        weight = ops.cast(weight, self.dtype)
        self.total.assign(self.total + ops.cast(values, self.dtype) * weight)
        self.count.assign(self.count + weight)

    def result(self) -> Any:
        return ops.divide_no_nan(self.total, self.count)


class StackedMLP(keras.Model):
    """K MLPs of `search_spaces.build_mlp`'s architecture as one model.

    Inputs: a shared batch (B, *input_shape), or one batch per member (K, B, *input_shape).
    Outputs: (predictions (K, B, n_outputs), regularization penalty per member (K,)).
    Labels: shared (B, ...) or per member (K, B, ...). `alive` (K,) masks failed members out of
    the loss. Metrics (`loss` and `accuracy` or `mae`) are per member, shape (K,).
    """

    def __init__(
        self,
        values: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
        *,
        input_shape: tuple[int, ...],
        n_outputs: int,
        task: str,
        masks: str = "member",
    ) -> None:
        if masks not in MASKS:
            raise ValueError(f"masks: {masks!r} is not one of {', '.join(MASKS)}")
        super().__init__(name="stacked_mlp")
        self.size, self.task = len(values), task
        self.sample_rank = len(input_shape)
        first = values[0]
        widths = per_layer(first["units"], first["hidden_layers"], "units")
        fan_ins = [int(np.prod(input_shape)), *widths]
        fan_outs = [*widths, n_outputs]
        self.widest = max(fan_ins + fan_outs)
        self.activation = keras.activations.get(first["activation"])
        self.output_activation = (
            keras.activations.get("softmax") if task == "classification" else None
        )
        inits = [
            member_initial_state(v, s, fan_ins, fan_outs)
            for v, s in zip(values, seeds, strict=True)
        ]
        self.kernels, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(fan_ins, fan_outs, strict=True)):
            # Not autocast (mixed precision): `call` casts the weights to the compute dtype of
            # each layer (float32 for the output layer, as in build_mlp), and the penalty reads
            # the kernels in float32, as Keras's regularizers do.
            kernel = self.add_weight(
                shape=(self.size, fan_in, fan_out),
                initializer="zeros",
                name=f"kernel_{i}",
                autocast=False,
            )
            kernel.assign(np.stack([init["kernels"][i] for init in inits]))
            bias = self.add_weight(
                shape=(self.size, fan_out), initializer="zeros", name=f"bias_{i}", autocast=False
            )
            self.kernels.append(kernel)
            self.biases.append(bias)
        # Dropout: per member and per place (0: the inputs, i: after hidden layer i), a rate and
        # the seed generator the member's own Dropout layer would own.
        self.rates = [[float(v["input_dropout"]) for v in values]] + [
            [float(v["dropout"]) for v in values] for _ in widths
        ]
        self.masks = masks
        self.seed_generators = []
        self._generator_index: dict[tuple[int, int], int] = {}
        for place in range(len(self.rates)):
            members = [k for k in range(self.size) if self.rates[place][k] > 0]
            if masks == "population" and members:  # one draw for all members
                seeds = [inits[k]["dropout_seeds"][place] for k in members]
                seed = int(np.random.default_rng(seeds).integers(1, 2**31))
                self._generator_index[place, -1] = len(self.seed_generators)
                self.seed_generators.append(keras.random.SeedGenerator(seed))
            for k in members if masks == "member" else ():
                self._generator_index[place, k] = len(self.seed_generators)
                self.seed_generators.append(
                    keras.random.SeedGenerator(inits[k]["dropout_seeds"][place])
                )
        l1, l2 = zip(*(_coefficients(v) for v in values), strict=True)
        self.l1 = np.asarray(l1, dtype="float32")
        self.l2 = np.asarray(l2, dtype="float32")
        self.alive = self.add_weight(
            shape=(self.size,), initializer="ones", dtype="bool", trainable=False, name="alive"
        )
        score = "accuracy" if task == "classification" else "mae"
        self.member_loss = _MemberMean(self.size, "loss")
        self.member_score = _MemberMean(self.size, score)
        self.built = True

    def call(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        shared = len(x.shape) == 1 + self.sample_rank
        features = math.prod(x.shape[-self.sample_rank :])
        x = ops.reshape(x, (-1, features) if shared else (self.size, -1, features))
        x, shared = self._dropout(x, 0, shared, training)
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            if shared:  # a batched product beats einsum's transposes of the stacked kernel
                x = ops.broadcast_to(x[None], (self.size, *ops.shape(x)))
            dtype = self.compute_dtype if i < len(self.kernels) - 1 else "float32"
            x = ops.matmul(ops.cast(x, dtype), ops.cast(kernel, dtype))
            x = x + ops.cast(bias, dtype)[:, None, :]
            shared = False
            if i < len(self.kernels) - 1:
                x = self.activation(x)
                x, _ = self._dropout(x, i + 1, False, training)
        if self.output_activation is not None:
            x = self.output_activation(x)
        return x, self._penalty()

    def _dropout(self, x: Any, place: int, shared: bool, training: bool) -> tuple[Any, bool]:
        rates = self.rates[place]
        if not training or not any(r > 0 for r in rates):
            return x, shared
        if self.masks == "population":
            if shared:
                x = ops.broadcast_to(x[None], (self.size, *ops.shape(x)))
            keep_rates = ops.convert_to_tensor(
                np.asarray([1.0 - r for r in rates], "float32")[:, None, None], x.dtype
            )
            generator = self.seed_generators[self._generator_index[place, -1]]
            keep = keras.random.uniform(ops.shape(x), seed=generator) < keep_rates
            return ops.where(keep, x / keep_rates, ops.zeros_like(x)), False
        parts = []
        for k, rate in enumerate(rates):
            part = x if shared else x[k]
            if rate > 0:
                generator = self.seed_generators[self._generator_index[place, k]]
                part = keras.random.dropout(part, rate, seed=generator)
            parts.append(part)
        return ops.stack(parts), False

    def _penalty(self) -> Any:
        """Each member's L1/L2 penalty, as Keras's regularizers compute it, summed over layers."""
        penalty = ops.zeros((self.size,))
        for kernel in self.kernels:
            if self.l1.any():
                penalty = penalty + self.l1 * ops.sum(ops.abs(kernel), axis=(1, 2))
            if self.l2.any():
                penalty = penalty + self.l2 * ops.sum(ops.square(kernel), axis=(1, 2))
        return penalty

    def _per_member(self, x: Any, y: Any, y_pred: Any) -> tuple[Any, Any]:
        """The members' mean batch losses (with their penalties) and per-example scores."""
        predictions, penalty = y_pred
        per_member = len(x.shape) == 2 + self.sample_rank  # else one batch for all members
        y = _member_labels(y, per_member, self.size, predictions.shape[-1], self.task)
        if self.task == "classification":
            losses = ops.sparse_categorical_crossentropy(y, predictions)
            scores = ops.cast(
                ops.equal(ops.cast(y, "int32"), ops.argmax(predictions, -1)), "float32"
            )
        else:
            y = ops.cast(y, predictions.dtype)
            losses = ops.mean(ops.square(y - predictions), axis=-1)
            scores = ops.mean(ops.abs(y - predictions), axis=-1)
        return ops.mean(losses, axis=1) + penalty, scores

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses, _ = self._per_member(x, y, y_pred)
        return ops.sum(ops.where(self.alive.value, losses, ops.zeros_like(losses)))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        losses, scores = self._per_member(x, y, y_pred)
        batch = ops.shape(scores)[1]
        self.member_loss.update_state(losses, batch)
        self.member_score.update_state(ops.sum(scores, axis=1) / ops.cast(batch, "float32"), batch)
        return self.get_metrics_result()

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.member_loss, self.member_score]

    def get_weights(self) -> list[np.ndarray]:
        """The stacked weights in `build_mlp`'s order (kernel, bias per layer); member k's
        sequential weights are `[w[k] for w in get_weights()]`."""
        return [
            np.asarray(w)
            for pair in zip(self.kernels, self.biases, strict=True)
            for w in (ops.convert_to_numpy(pair[0]), ops.convert_to_numpy(pair[1]))
        ]


def _member_labels(y: Any, per_member: bool, size: int, outputs: int, task: str) -> Any:
    """Labels as (K, B) classes or (K, B, outputs) targets, from per-member (K, B[, ...]) or
    shared (B[, ...]) ones."""
    shape = (size, -1) if task == "classification" else (size, -1, outputs)
    if per_member:
        return ops.reshape(y, shape)
    y = ops.reshape(y, (1, *shape[1:]))
    return ops.broadcast_to(y, (size, *ops.shape(y)[1:]))


def _coefficients(values: Mapping[str, Any]) -> tuple[float, float]:
    """The (l1, l2) a member's regularizer applies, as `kernel_regularizer` builds it."""
    family = regularizer_family(values)
    l1 = float(values.get("l1", 0.0)) if family in ("l1", "l1l2") else 0.0
    l2 = float(values.get("l2", 0.0)) if family in ("l2", "l1l2") else 0.0
    return l1, l2


def member_initial_state(
    values: Mapping[str, Any], seed: int, fan_ins: Sequence[int], fan_outs: Sequence[int]
) -> dict[str, Any]:
    """The initial kernels and Dropout seeds `build_mlp(values)` draws under
    `seed_everything(seed)`, without building the model.

    Keras seeds each initializer and each Dropout layer's seed generator from Python's `random`,
    in the order the layers are created: [input Dropout], (Dense, [Dropout]) per hidden layer,
    the output Dense. Drawing in that order gives the same seeds, and a Glorot-uniform kernel
    drawn from the same seed with one member's fan-in and fan-out is the same kernel.
    (`tests/study/test_population.py` checks this against `build_mlp` bit for bit.)
    """
    draws = random.Random(seed)

    def draw() -> int:
        return draws.randint(1, int(1e9))  # keras.src.random.seed_generator.make_default_seed

    dropout_seeds: dict[int, int] = {}
    if values["input_dropout"] > 0:
        dropout_seeds[0] = draw()
    kernels = []
    for i, (fan_in, fan_out) in enumerate(zip(fan_ins, fan_outs, strict=True)):
        initializer = keras.initializers.GlorotUniform(seed=draw())
        kernels.append(ops.convert_to_numpy(initializer((fan_in, fan_out))))
        if i < len(fan_ins) - 1 and values["dropout"] > 0:
            dropout_seeds[i + 1] = draw()
    return {"kernels": kernels, "dropout_seeds": dropout_seeds}
