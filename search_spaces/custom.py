"""A model of the user's own: ``model.builder = "package.module:function"``.

The function is called as ``function(values, spec)``: `values` is a plain dict of every fixed and
searched key of the configuration (the training keys included), `spec` a `ModelSpec` (what the
data implies). It returns a Keras model; an uncompiled one is compiled from the training keys as
the built-in builders are, a compiled one is kept as it is. Its keys are the campaign file's own
(`study.config` types them by their values). Such a model trains one run at a time: population
training stacks the built-in builders' layers (`search_spaces.stacked`), which it cannot know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search_spaces.architecture import Builder
from search_spaces.keys import TRAIN_KEYS
from search_spaces.user_code import UserCodeError, find_function, importable_from, raised

if TYPE_CHECKING:
    import keras
    import numpy as np


@dataclass(frozen=True)
class ModelSpec:
    """What the data implies for a model: the shape of one example (no batch axis), the number of
    outputs (classes, or regression targets) and the task ("classification" or "regression")."""

    input_shape: tuple[int, ...]
    outputs: int
    task: str


def _no_plan(values: Mapping[str, Any], input_shape: tuple[int, ...]) -> Any:
    raise TypeError("a custom builder's layers are its own: it has no layer plan")


@dataclass(frozen=True)
class CustomBuilder(Builder):
    """`name` is the import path; `keys` the campaign's own model keys; `folder` where the
    module is looked for before sys.path (the campaign file's folder)."""

    plan: Any = field(default=_no_plan, repr=False)
    folder: str | None = None
    stacks = False  # population training cannot stack it (class attribute, not a field)

    @property
    def member_keys(self) -> frozenset[str]:
        return frozenset()

    def defaults(self) -> dict[str, Any]:
        """The fixed keys and the training defaults (a searched key has no default)."""
        specs = {**self.keys, **TRAIN_KEYS}
        return {key: spec.default for key, spec in specs.items() if spec.default is not None}

    def function(self) -> Any:
        """The user's function (imported; UserCodeError when it cannot be)."""
        return find_function(self.name, self.folder)

    def build(
        self,
        values: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        n_outputs: int,
        task: str = "classification",
    ) -> keras.Model:
        """The user's model for `values` (missing keys take their defaults), compiled from the
        training keys unless it came compiled. Raises what the user's function raises, and
        UserCodeError when it returns something other than a Keras model."""
        import keras

        from search_spaces._common import compile_model

        values = self.complete(values)
        spec = ModelSpec(tuple(input_shape), n_outputs, task)
        with importable_from(self.folder):  # for modules the builder imports as it runs
            model = self.function()(dict(values), spec)
        if not isinstance(model, keras.Model):
            raise UserCodeError(
                f"the builder returned {type(model).__name__}, not a Keras model (keras.Model)"
            )
        return model if model.compiled else compile_model(model, values, task)

    def check(self, values: Mapping[str, Any], spec: ModelSpec, examples: np.ndarray) -> None:
        """Build the model for one configuration and call it on `examples`; UserCodeError with
        one line when it cannot be built or its output does not fit the data."""
        import keras

        try:
            model = self.build(
                values, input_shape=spec.input_shape, n_outputs=spec.outputs, task=spec.task
            )
        except UserCodeError:
            raise
        except Exception as error:
            raise UserCodeError(raised("building the model", error)) from error
        try:
            output = keras.ops.convert_to_numpy(model(examples, training=False))
        except Exception as error:
            raise UserCodeError(
                raised(f"calling the model on a batch of shape {examples.shape}", error)
            ) from error
        wanted = (len(examples), spec.outputs)
        if tuple(output.shape) != wanted:
            unit = "classes" if spec.task == "classification" else "targets"
            raise UserCodeError(
                f"the model's output has shape {tuple(output.shape)} for a batch of "
                f"{len(examples)}; the data needs {wanted} ({spec.outputs} {unit})"
            )
        keras.utils.clear_session(free_memory=False)
