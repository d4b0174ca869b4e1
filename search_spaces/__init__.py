"""Backend-neutral search spaces and the Keras builders they configure.

Builders take a plain mapping of values and return a compiled `keras.Model`; they know nothing of
KerasTuner or Optuna, whose drivers translate a `SearchSpace` at the edge.
"""

from importlib import import_module

from search_spaces._params import MAX_GRID, Bool, Choice, Condition, Fixed, Float, Int, Param
from search_spaces._space import SearchSpace, configuration_key
from search_spaces.keys import BUILDER_KEYS, TRAIN_KEYS, KeySpec, defaults
from search_spaces.presets import PRESETS, exploratory_space, regularization_grid

# Imported on first use, so that reading a campaign file does not load Keras (and TensorFlow).
_KERAS_MODULES = {
    "build_cnn": "search_spaces.architecture",
    "build_mlp": "search_spaces.architecture",
    "build_model": "search_spaces.architecture",
    "kernel_regularizer": "search_spaces.regularizers",
    "regularizer_family": "search_spaces.regularizers",
}


def __getattr__(name: str):
    if name == "BUILDERS":
        value = {"mlp": __getattr__("build_mlp"), "cnn": __getattr__("build_cnn")}
    elif name in _KERAS_MODULES:
        value = getattr(import_module(_KERAS_MODULES[name]), name)
    else:
        raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "BUILDERS",
    "BUILDER_KEYS",
    "Bool",
    "Choice",
    "Condition",
    "Fixed",
    "Float",
    "Int",
    "KeySpec",
    "MAX_GRID",
    "PRESETS",
    "Param",
    "SearchSpace",
    "TRAIN_KEYS",
    "build_cnn",
    "build_model",
    "build_mlp",
    "configuration_key",
    "defaults",
    "exploratory_space",
    "kernel_regularizer",
    "regularization_grid",
    "regularizer_family",
]
