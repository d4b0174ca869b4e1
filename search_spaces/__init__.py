"""Backend-neutral search spaces and the Keras builders they configure.

Builders take a plain mapping of values and return a compiled `keras.Model`; they know nothing of
KerasTuner or Optuna, whose drivers translate a `SearchSpace` at the edge. A campaign resolves its
builder's name to one `Builder` (`BUILDERS`); Keras is imported when it builds a model.
"""

from importlib import import_module

from search_spaces._params import MAX_GRID, Bool, Choice, Condition, Fixed, Float, Int, Param
from search_spaces._space import SearchSpace, configuration_key
from search_spaces.architecture import BUILDERS, CNN, MLP, Builder
from search_spaces.custom import CustomBuilder, ModelSpec
from search_spaces.keys import TRAIN_KEYS, KeySpec, regularizer_of
from search_spaces.presets import PRESETS, exploratory_space, regularization_grid

build_mlp, build_cnn = MLP.build, CNN.build

# Imported on first use, so that reading a campaign file does not load Keras (and TensorFlow).
_KERAS_MODULES = {
    "dropout_layer": "search_spaces.regularizers",
    "kernel_regularizer": "search_spaces.regularizers",
    "regularizer_family": "search_spaces.regularizers",
}


def __getattr__(name: str):
    if name not in _KERAS_MODULES:
        raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
    value = getattr(import_module(_KERAS_MODULES[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BUILDERS",
    "Bool",
    "Builder",
    "CNN",
    "Choice",
    "Condition",
    "CustomBuilder",
    "Fixed",
    "Float",
    "Int",
    "KeySpec",
    "MAX_GRID",
    "MLP",
    "ModelSpec",
    "PRESETS",
    "Param",
    "SearchSpace",
    "TRAIN_KEYS",
    "build_cnn",
    "build_mlp",
    "configuration_key",
    "dropout_layer",
    "exploratory_space",
    "kernel_regularizer",
    "regularization_grid",
    "regularizer_family",
    "regularizer_of",
]
