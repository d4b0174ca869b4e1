"""regstudy: hyperparameter search and regularization studies for Keras.

`study.run(...)` and `study.load(...)` are the Python API (study.api); the command line is
`study` (study.cli). Importing `study` loads nothing heavy: Keras loads when a run trains.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from study import api

        return getattr(api, name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")
