"""Timestamps at the phase boundaries of a `study run`, for benchmarks/phases.py.

Off unless `enable(path)` was called (the command line does, when STUDY_PHASES=path is set):
then `mark(name)` notes `time.perf_counter()` (CLOCK_MONOTONIC on Linux: comparable between
processes on one machine), and `write()` saves the marks to `path` as a JSON list of
[name, seconds]. Nothing a user sees changes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

_marks: list[tuple[str, float]] = []
_path: list[Path] = []  # the file to write; empty: off


def enable(path: str | Path) -> None:
    _path[:] = [Path(path)]
    _marks.clear()


def mark(name: str) -> None:
    if _path:
        _marks.append((name, time.perf_counter()))


def write() -> None:
    if _path:
        _path[0].write_text(json.dumps(_marks))
