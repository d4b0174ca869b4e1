"""A model and a loader of your own: `builder = "custom_model:build"` and
`dataset = "py:custom_model:load"` in examples/custom_model.toml (this module is found beside it),
or the functions themselves from Python (examples/custom_model_api.py).

`study` calls `build(values, spec)` for every run: `values` holds every fixed and searched key
of the configuration (the [model] and [train] keys, by name), `spec` what the data implies
(`spec.input_shape`, `spec.outputs`, `spec.task`). The model it returns may be uncompiled:
`study` compiles it from [train] (optimizer, learning_rate) as it does its own builders.
`dropout_layer` and `kernel_regularizer` read the campaign's `dropout`, `l1`, `l2` and
`regularizer` keys the way the built-in builders do, so the report's regularizer comparison
and overfitting diagnostics mean the same for this model.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits

from search_spaces import dropout_layer, kernel_regularizer


def build(values, spec):
    """A residual MLP (functional API): Dense -> BatchNorm -> ReLU -> Dropout, twice, with a
    skip connection around the second block."""
    regularizer = kernel_regularizer(values)
    inputs = keras.Input(shape=spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(values["width"], kernel_regularizer=regularizer)(x)
    for block in range(values["blocks"]):
        skip = x
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = dropout_layer(values)(x)
        x = keras.layers.Dense(values["width"], kernel_regularizer=regularizer)(x)
        x = keras.layers.Add(name=f"residual_{block + 1}")([x, skip])
    outputs = keras.layers.Dense(spec.outputs, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="residual_mlp")


def load():
    """scikit-learn's 8x8 digits as flat features in [0, 1]; the test split is held out."""
    digits = load_digits()
    return {"x": (digits.data / 16.0).astype(np.float32), "y": digits.target}
