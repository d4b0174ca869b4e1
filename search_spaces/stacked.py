"""`StackedModel`: K models of one architecture (an MLP or a CNN) as one Keras model.

Each layer's kernels are stacked along a leading member axis, shape (K, *kernel shape): Dense
layers multiply as one batched product, Conv2D layers convolve member by member or as one grouped
convolution (`CONVOLUTIONS`). Each member has its own Dropout rates and masks and its own L1/L2
strengths, and the loss is the sum of the members' losses, so each member's gradients (and an
element-wise optimizer's state) are its own; `member_optimizer` gives each its learning rate.
`member_initial_state` draws the initial weights and Dropout seeds `Builder.build` would draw for
one member; `study.population` trains the model. Every member's values are complete
(`Builder.complete`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from search_spaces._common import make_optimizer
from search_spaces.architecture import (
    Activate,
    Builder,
    Conv,
    Dense,
    Dropout,
    Flatten,
    Layer,
    Pool,
)
from search_spaces.regularizers import regularizer_family

# Dropout masks: "member" draws each member's masks from the seed generators its own sequential
# model would own (the same masks as `train_run`; one random op per member and Dropout layer,
# on TensorFlow the rest batched: `_member_dropout_tf`); "population" draws all members' masks
# at once from one generator seeded by their seeds (one op per Dropout layer: a little faster to
# trace and to run; the masks differ from `train_run`'s, so members with Dropout match their
# sequential runs in distribution, not curve for curve).
MASKS = ("member", "population")

# Convolutions: "loop" convolves member by member (one op per member and layer: the fastest on
# CPUs, where XLA's grouped convolution is 50-200x slower, measured); "grouped" puts the members
# side by side along the channels and convolves once with K groups (cuDNN's grouped convolution).
CONVOLUTIONS = ("loop", "grouped")


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


class StackedModel(keras.Model):
    """K models of one builder's architecture (`Builder.layers`) as one.

    Inputs: a shared batch (B, *input_shape), or one batch per member (K, B, *input_shape).
    Outputs: (predictions (K, B, n_outputs), regularization penalty per member (K,)).
    Labels: shared (B, ...) or per member (K, B, ...). `alive` (K,) masks failed members out of
    the loss. Metrics (`loss` and `accuracy` or `mae`) are per member, shape (K,).
    `conv` (`CONVOLUTIONS`) is how the members' convolutions run.
    """

    def __init__(
        self,
        values: Sequence[Mapping[str, Any]],
        seeds: Sequence[int],
        *,
        builder: Builder,
        input_shape: tuple[int, ...],
        n_outputs: int,
        task: str,
        masks: str = "member",
        conv: str = "loop",
    ) -> None:
        if masks not in MASKS:
            raise ValueError(f"masks: {masks!r} is not one of {', '.join(MASKS)}")
        if conv not in CONVOLUTIONS:
            raise ValueError(f"conv: {conv!r} is not one of {', '.join(CONVOLUTIONS)}")
        super().__init__(name=f"stacked_{builder.name}")
        self.size, self.task, self.masks, self.conv = len(values), task, masks, conv
        self.sample_rank = len(input_shape)
        self.plan = builder.layers(values[0], input_shape, n_outputs)
        weighted = [layer for layer in self.plan if isinstance(layer, (Dense, Conv))]
        self.widest = max(layer.activations for layer in weighted)
        self.activation = keras.activations.get(values[0]["activation"])
        inits = [member_initial_state(v, s, self.plan) for v, s in zip(values, seeds, strict=True)]
        self.kernels, self.biases = {}, {}
        for i, layer in enumerate(weighted):
            # Not autocast (mixed precision): `call` casts the weights to the compute dtype of
            # each layer (float32 for the output layer, as in Builder.build), and the penalty
            # reads the kernels in float32, as Keras's regularizers do.
            kernel = self.add_weight(
                shape=(self.size, *layer.kernel_shape),
                initializer="zeros",
                name=f"kernel_{i}",
                autocast=False,
            )
            kernel.assign(np.stack([init["kernels"][i] for init in inits]))
            self.kernels[layer.name] = kernel
            self.biases[layer.name] = self.add_weight(
                shape=(self.size, layer.units),
                initializer="zeros",
                name=f"bias_{i}",
                autocast=False,
            )
        # Dropout: per member and per Dropout layer, a rate and the seed generator the member's
        # own Dropout layer would own ("member"), or one generator for all ("population").
        self.rates = {
            layer.name: [float(v[layer.key]) for v in values]
            for layer in self.plan
            if isinstance(layer, Dropout)
        }
        self.seed_generators = []
        self._generator_index: dict[tuple[str, int], int] = {}
        # On TensorFlow, "member" masks come from one step counter per layer and the members'
        # seeds (`_member_dropout_tf`): member k's generator would hold [seed k, step].
        self._batched_member_masks = masks == "member" and keras.backend.backend() == "tensorflow"
        self._member_seeds: dict[str, np.ndarray] = {}
        for name, rates in self.rates.items():
            members = [k for k in range(self.size) if rates[k] > 0]
            if masks == "population" and members:  # one draw for all members
                member_seeds = [inits[k]["dropout_seeds"][name] for k in members]
                seed = int(np.random.default_rng(member_seeds).integers(1, 2**31))
                self._generator_index[name, -1] = len(self.seed_generators)
                self.seed_generators.append(keras.random.SeedGenerator(seed))
            if self._batched_member_masks and members:
                self._member_seeds[name] = np.asarray(
                    [[inits[k]["dropout_seeds"].get(name, 0), 0] for k in range(self.size)],
                    "int64",
                )
                self._generator_index[name, -1] = len(self.seed_generators)
                self.seed_generators.append(keras.random.SeedGenerator(0))  # state: [0, step]
                continue
            for k in members if masks == "member" else ():
                self._generator_index[name, k] = len(self.seed_generators)
                self.seed_generators.append(
                    keras.random.SeedGenerator(inits[k]["dropout_seeds"][name])
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
        self._step_for_any_batch: Any = None
        self.built = True

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """`train_on_batch(x, y, return_dict=True)`, with the training step traced once for every
        batch size on TensorFlow. Keras traces it again for each new size: an epoch's shorter last
        batch cost a second trace, about 1 s on a 2-core CPU. The weights come out the same; the
        loss reported for members with an L1/L2 penalty can differ from that graph's in its last
        bits (docs/reproducibility.md), the two graphs' float arithmetic not being identical."""
        if keras.backend.backend() != "tensorflow":
            return self.train_on_batch(x, y, return_dict=True)
        if self._step_for_any_batch is None:
            import tensorflow as tf

            # Built now: TensorFlow traces a step again when its first trace created variables.
            self.optimizer.build(self.trainable_variables)
            axis = x.ndim - 1 - self.sample_rank  # the batch: (K, B, ...) or shared (B, ...)

            def any_batch(a: np.ndarray) -> tf.TensorSpec:
                return tf.TensorSpec((*a.shape[:axis], None, *a.shape[axis + 1 :]), a.dtype)

            self._step_for_any_batch = tf.function(
                lambda x, y: self.train_step((x, y)),
                input_signature=[any_batch(x), any_batch(y)],
                jit_compile=self.jit_compile,
            )
        self.reset_metrics()
        return {name: np.asarray(value) for name, value in self._step_for_any_batch(x, y).items()}

    def call(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        # `shared`: x is one batch for all members (B, ...), else one per member (K, B, ...).
        shared = len(x.shape) == 1 + self.sample_rank
        for layer in self.plan:
            if isinstance(layer, Flatten):
                features = math.prod(x.shape[1:] if shared else x.shape[2:])
                x = ops.reshape(x, (-1, features) if shared else (self.size, -1, features))
            elif isinstance(layer, Dropout):
                x, shared = self._dropout(x, layer, shared, training)
            elif isinstance(layer, Dense):
                x, shared = self._dense(x, layer, shared), False
            elif isinstance(layer, Conv):
                x, shared = self._convolve(x, layer, shared), False
            elif isinstance(layer, Activate):
                x = self.activation(x)
            elif isinstance(layer, Pool):
                x = self._pool(x, layer, shared)
        return x, self._penalty()

    def _dense(self, x: Any, layer: Dense, shared: bool) -> Any:
        if shared:  # a batched product beats einsum's transposes of the stacked kernel
            x = ops.broadcast_to(x[None], (self.size, *ops.shape(x)))
        dtype = "float32" if layer.output else self.compute_dtype
        x = ops.matmul(ops.cast(x, dtype), ops.cast(self.kernels[layer.name], dtype))
        x = x + ops.cast(self.biases[layer.name], dtype)[:, None, :]
        if layer.output and self.task == "classification":
            x = ops.softmax(x)
        return x

    def _convolve(self, x: Any, layer: Conv, shared: bool) -> Any:
        """Each member's convolution of its maps (K, B, H, W, C), or of the shared ones."""
        dtype = self.compute_dtype
        x = ops.cast(x, dtype)
        kernel = ops.cast(self.kernels[layer.name], dtype)
        bias = ops.cast(self.biases[layer.name], dtype)[:, None, None, None, :]
        if self.conv == "loop":
            parts = [
                ops.conv(x if shared else x[k], kernel[k], padding="same") for k in range(self.size)
            ]
            return ops.stack(parts) + bias
        # "grouped": members side by side along the channels, one convolution with K groups
        # (one group, K * filters wide, when the maps are shared).
        height, width = layer.height, layer.width
        if not shared:
            x = ops.transpose(x, (1, 2, 3, 0, 4))  # (B, H, W, K, C)
            x = ops.reshape(x, (-1, height, width, self.size * layer.channels))
        folded = ops.transpose(kernel, (1, 2, 3, 0, 4))  # (h, w, C, K, F)
        folded = ops.reshape(folded, (*layer.kernel_shape[:3], self.size * layer.filters))
        y = ops.conv(x, folded, padding="same")
        y = ops.reshape(y, (-1, height, width, self.size, layer.filters))
        return ops.transpose(y, (3, 0, 1, 2, 4)) + bias

    def _pool(self, x: Any, layer: Pool, shared: bool) -> Any:
        pool = ops.max_pool if layer.kind == "max" else ops.average_pool
        if shared:
            return pool(x, 2, strides=2, padding="valid")
        y = pool(ops.reshape(x, (-1, *ops.shape(x)[2:])), 2, strides=2, padding="valid")
        return ops.reshape(y, (self.size, -1, *ops.shape(y)[1:]))

    def _dropout(self, x: Any, layer: Dropout, shared: bool, training: bool) -> tuple[Any, bool]:
        rates = self.rates[layer.name]
        if not training or not any(r > 0 for r in rates):
            return x, shared
        if self.masks == "population":
            if shared:
                x = ops.broadcast_to(x[None], (self.size, *ops.shape(x)))
            shape = ops.shape(x)
            if layer.spatial:  # one draw per feature map, as SpatialDropout2D
                shape = (shape[0], shape[1], 1, 1, shape[4])
            keep_rates = np.asarray([1.0 - r for r in rates], "float32")
            keep_rates = ops.convert_to_tensor(
                keep_rates.reshape((-1,) + (1,) * (len(shape) - 1)), x.dtype
            )
            generator = self.seed_generators[self._generator_index[layer.name, -1]]
            keep = keras.random.uniform(shape, seed=generator) < keep_rates
            return ops.where(keep, x / keep_rates, ops.zeros_like(x)), False
        if self._batched_member_masks:
            return self._member_dropout_tf(x, layer, shared), False
        parts = []
        for k, rate in enumerate(rates):
            part = x if shared else x[k]
            if rate > 0:
                shape = ops.shape(part)
                noise = (shape[0], 1, 1, shape[3]) if layer.spatial else None
                generator = self.seed_generators[self._generator_index[layer.name, k]]
                part = keras.random.dropout(part, rate, noise_shape=noise, seed=generator)
            parts.append(part)
        return ops.stack(parts), False

    def _member_dropout_tf(self, x: Any, layer: Dropout, shared: bool) -> Any:
        """Each member's Dropout as `keras.random.dropout` does it on TensorFlow, member by member
        (`tf.nn.experimental.stateless_dropout` with the seed its generator draws: a uniform draw
        kept where >= rate, kept values times 1 / (1 - rate)), to the bit: one draw per member,
        the seeds, comparison, scaling and gradient batched (a dozen ops per member otherwise)."""
        import tensorflow as tf

        rates = self.rates[layer.name]
        step = self.seed_generators[self._generator_index[layer.name, -1]].next()
        seeds = self._member_seeds[layer.name] + step
        seeds = tf.cast(tf.math.floormod(seeds, tf.int32.max - 1), "int32")  # as Keras's
        shape = tf.shape(x)[0 if shared else 1 :]
        if layer.spatial:  # one draw per feature map, as SpatialDropout2D
            shape = tf.stack([shape[0], 1, 1, shape[3]])
        uniforms = []
        for seed, rate in zip(tf.unstack(seeds), rates, strict=True):
            if rate == 0:  # kept: 0 >= 0
                uniforms.append(tf.zeros(shape, x.dtype))
                continue
            # tf.random.stateless_uniform's ops ("auto_select" algorithm, 3), less its
            # "* (1 - 0) + 0" (exact anyway)
            key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
            draw = tf.raw_ops.StatelessRandomUniformV2
            uniforms.append(draw(shape=shape, key=key, counter=counter, alg=3, dtype=x.dtype))
        per_member = (-1,) + (1,) * (len(x.shape) - (0 if shared else 1))
        keep = tf.stack(uniforms) >= tf.reshape(tf.constant(rates, x.dtype), per_member)
        scales = tf.reshape(tf.constant([1 / (1 - r) for r in rates], x.dtype), per_member)
        return tf.where(keep, (x[None] if shared else x) * scales, tf.zeros((), x.dtype))

    def _penalty(self) -> Any:
        """Each member's L1/L2 penalty, as Keras's regularizers compute it, summed over layers."""
        penalty = ops.zeros((self.size,))
        for kernel in self.kernels.values():
            axes = tuple(range(1, len(kernel.shape)))
            if self.l1.any():
                penalty = penalty + self.l1 * ops.sum(ops.abs(kernel), axis=axes)
            if self.l2.any():
                penalty = penalty + self.l2 * ops.sum(ops.square(kernel), axis=axes)
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
        """The stacked weights in the builder's order (kernel, bias per layer); member k's
        weights, as its model alone has them, are `[w[k] for w in get_weights()]`."""
        return [
            np.asarray(ops.convert_to_numpy(w))
            for name in self.kernels
            for w in (self.kernels[name], self.biases[name])
        ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the stacked weights, given in `get_weights`'s order and shapes."""
        variables = [w for name in self.kernels for w in (self.kernels[name], self.biases[name])]
        for variable, value in zip(variables, weights, strict=True):
            variable.assign(value)


def member_optimizer(values: Sequence[Mapping[str, Any]]) -> keras.optimizers.Optimizer:
    """The members' optimizer: the kind and settings of `values[0]`'s, with member k's learning
    rate applied to member k's slice of every stacked variable (Adam, RMSprop and SGD scale
    their step by the learning rate element by element, so each member steps as it would alone:
    its rate, in float32, is what its own optimizer would multiply by)."""
    rates = np.asarray([float(v["learning_rate"]) for v in values], "float32")
    unit = make_optimizer(dict(values[0]) | {"learning_rate": 1.0})

    class PerMember(type(unit)):
        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            scale = rates.reshape((-1,) + (1,) * (len(variable.shape) - 1))
            super().update_step(gradient, variable, learning_rate * ops.convert_to_tensor(scale))

    return PerMember.from_config(unit.get_config())


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
    l1 = float(values["l1"]) if family in ("l1", "l1l2") else 0.0
    l2 = float(values["l2"]) if family in ("l2", "l1l2") else 0.0
    return l1, l2


def member_initial_state(
    values: Mapping[str, Any], seed: int, plan: Sequence[Layer]
) -> dict[str, Any]:
    """The initial kernels, and the Dropout seeds by layer name, that `Builder.build` draws for
    `values` under `seed_everything(seed)`, without building the model (`plan`: its layers).

    Keras seeds each kernel initializer and each Dropout layer's seed generator from Python's
    `random`, in the order the layers are created (a Dropout layer of rate 0 is not created).
    Drawing in that order gives the same seeds, and a Glorot-uniform kernel drawn from the same
    seed with one member's kernel shape is the same kernel. (`tests/study/test_population.py`
    checks this against `Builder.build` bit for bit.)
    """
    draws = random.Random(seed)

    def draw() -> int:
        return draws.randint(1, int(1e9))  # keras.src.random.seed_generator.make_default_seed

    kernels, dropout_seeds = [], {}
    for layer in plan:
        if isinstance(layer, Dropout) and values[layer.key] > 0:
            dropout_seeds[layer.name] = draw()
        elif isinstance(layer, (Dense, Conv)):
            initializer = keras.initializers.GlorotUniform(seed=draw())
            kernels.append(ops.convert_to_numpy(initializer(layer.kernel_shape)))
    return {"kernels": kernels, "dropout_seeds": dropout_seeds}
