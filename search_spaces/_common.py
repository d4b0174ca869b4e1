"""What every builder shares: optimizer, loss and metrics, the output layer, normalization.

Each function reads complete values (`search_spaces.architecture.Builder.complete`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def make_optimizer(values: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    name, rate = values["optimizer"], float(values["learning_rate"])
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=float(values["momentum"]))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    if name == "adam":
        return keras.optimizers.Adam(rate)
    raise ValueError(f"optimizer: unknown {name!r}")


def compile_model(model: keras.Model, values: Mapping[str, Any], task: str) -> keras.Model:
    """Compile for `task`: cross-entropy and accuracy, or mean squared error and MAE."""
    if task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        loss, metrics = "mean_squared_error", ["mae"]
    model.compile(optimizer=make_optimizer(values), loss=loss, metrics=metrics)
    return model


def output_layer(n_outputs: int, task: str, regularizer: Any) -> keras.layers.Dense:
    activation = "softmax" if task == "classification" else None
    # float32 whatever the dtype policy (study.trial.fresh_session): a softmax or a regression
    # output in float16 loses precision, as Keras's mixed-precision guide says.
    return keras.layers.Dense(
        n_outputs,
        activation=activation,
        kernel_regularizer=regularizer,
        name="output",
        dtype="float32",
    )


def normalize_and_activate(x: Any, values: Mapping[str, Any], suffix: str) -> Any:
    """[BatchNormalization ->] activation, named after the layer they follow."""
    if values["batch_norm"]:
        x = keras.layers.BatchNormalization(name=f"batch_norm_{suffix}")(x)
    return keras.layers.Activation(values["activation"], name=f"activation_{suffix}")(x)
