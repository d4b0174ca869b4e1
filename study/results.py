"""What one run produces, and the vocabulary the records share (no Keras, no engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

COMPLETE, FAILED, PRUNED, RUNNING = "COMPLETE", "FAILED", "PRUNED", "RUNNING"
FINISHED = (COMPLETE, FAILED, PRUNED)

_MINIMIZED = ("loss", "error", "mae", "mse")


def direction_of(objective: str) -> str:
    """ "minimize" for losses and errors, else "maximize"."""
    return "minimize" if objective.endswith(_MINIMIZED) else "maximize"


@dataclass
class RunResult:
    """The outcome of one configuration x seed: its per-epoch history and how it ended."""

    status: str
    history: dict[str, list[float]] = field(default_factory=dict)  # "train_loss": [...], ...
    duration_s: float = 0.0
    failure: str = ""
