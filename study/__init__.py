"""regstudy: hyperparameter search and regularization studies for Keras.

`study.run(...)`, `study.load(...)` and `study.keras_tuner_hypermodel(...)` are the Python API
(study.api, study.models); the command line is `study` (study.cli). Importing `study` loads
nothing heavy: Keras loads when a run trains.
"""

from __future__ import annotations

from typing import Any

__all__ = ["keras_tuner_hypermodel", "load", "run"]
_HOMES = {"load": "study.api", "run": "study.api", "keras_tuner_hypermodel": "study.models"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")
