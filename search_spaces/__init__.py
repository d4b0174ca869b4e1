"""Backend-neutral search spaces and the Keras builders they configure.

Builders take a plain mapping of values and return a compiled `keras.Model`; they know nothing of
KerasTuner or Optuna, whose drivers translate a `SearchSpace` at the edge.
"""

from search_spaces._params import Bool, Choice, Condition, Fixed, Float, Int, Param
from search_spaces._space import SearchSpace, configuration_key
from search_spaces.architecture import build_cnn, build_mlp, build_model
from search_spaces.keys import BUILDER_KEYS, TRAIN_KEYS, KeySpec, defaults
from search_spaces.presets import PRESETS, exploratory_space, regularization_grid
from search_spaces.regularizers import kernel_regularizer, regularizer_family

BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}

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
