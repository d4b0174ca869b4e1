"""The progress bar of `study run`: runs done of all, the current trial and epoch, best so far."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar counting configuration x seed runs (those found in the store included)."""

    def __init__(self, total: int | None, *, enabled: bool = True) -> None:
        self.total, self.enabled = total, enabled
        self.fields: dict[str, Any] = {}

    def __enter__(self) -> Progress:
        self._bar = tqdm(
            total=self.total,
            unit="run",
            disable=not self.enabled,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def start_run(self, trial: int, seed: int, epochs: int) -> None:
        self._epochs = epochs
        self.fields.update(trial=trial, seed=seed, epoch=f"0/{epochs}")
        self._bar.set_postfix(self.fields, refresh=False)

    def epoch(self, epoch: int) -> None:
        self.fields["epoch"] = f"{epoch}/{self._epochs}"
        self._bar.set_postfix(self.fields)

    def best(self, objective: str, value: float) -> None:
        self.fields[f"best {objective}"] = f"{value:.4f}"
        self._bar.set_postfix(self.fields)

    def finish_run(self) -> None:
        self._bar.update(1)

    def skip(self, runs: int) -> None:
        """Runs that will not happen (the other seeds of a failed configuration)."""
        if runs and self._bar.total is not None:
            self._bar.total -= runs
            self._bar.refresh()
