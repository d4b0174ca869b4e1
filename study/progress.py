"""The progress of `study run`: runs finished of all, the run (or population) training and its
epoch, the best configuration so far.

On a terminal (or in a notebook) it is a tqdm bar; elsewhere, a log file say, plain lines
(`study: 12/27 runs, best val_accuracy 0.9722`), at most one every `interval_s` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm.auto import tqdm

LINE_INTERVAL_S = 10.0  # plain lines: at most one per this many seconds (and the last one)


class Progress:
    """Counts configuration x seed runs; each run once, those `finished` before this session from
    the start. A population's runs finish together: until then it shows their shared epoch."""

    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool = True,
        finished: Iterable[tuple[int, int]] = (),
        stream: TextIO | None = None,
        interval_s: float = LINE_INTERVAL_S,
    ) -> None:
        self.total, self.enabled = total, enabled
        self.stream = sys.stderr if stream is None else stream
        self.interval_s = interval_s
        self.counted = set(finished)  # (trial, seed)
        self.training: dict[str, Any] = {}  # the run or population training now, and its epoch
        self.best_so_far: dict[str, str] = {}
        self._bar: tqdm | None = None
        self._printed: tuple[Any, ...] | None = None
        self._printed_at = float("-inf")

    def __enter__(self) -> Progress:
        # "ipykernel": a notebook's stderr is no terminal, but shows tqdm.auto's widget
        if self.enabled and (self.stream.isatty() or "ipykernel" in sys.modules):
            self._bar = tqdm(
                total=self.total,
                initial=len(self.counted),
                unit="run",
                file=self.stream,
                dynamic_ncols=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._show(force=True)

    def start_run(self, trial: int, seed: int, epochs: int, *, runs: int = 1) -> None:
        """A run starts training, or `runs` > 1 of them together as a population."""
        self._epochs = epochs
        alone = {"trial": trial, "seed": seed}
        self.training = {"population": f"{runs} runs"} if runs > 1 else alone
        self.training["epoch"] = f"0/{epochs}"
        self._show()

    def working(self, fields: dict[str, Any]) -> None:
        """What is going on, when it is not one run or population (workers, their runs)."""
        self.training = dict(fields)
        self._show()

    def epoch(self, epoch: int) -> None:
        self.training["epoch"] = f"{epoch}/{self._epochs}"
        self._show()

    def best(self, objective: str, value: float) -> None:
        self.best_so_far = {f"best {objective}": f"{value:.4f}"}
        self._show()

    def finish_run(self, trial: int, seed: int) -> None:
        """A run is finished (trained here, or found finished): counted once."""
        if (trial, seed) in self.counted:
            return
        self.counted.add((trial, seed))
        self.training = {}
        if self._bar is not None:
            self._bar.update(1)
            self._show()
        # a plain line waits for what comes next (a run starts, a new best, the end), so the
        # runs of a population, which finish together, give one line

    def note(self, message: str) -> None:
        """A line for the user (also with progress off), printed above the bar if there is one."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def skip(self, runs: int) -> None:
        """Runs that will not happen (the other seeds of a failed configuration)."""
        if runs and self.total is not None:
            self.total -= runs
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def _show(self, *, force: bool = False) -> None:
        fields = self.training | self.best_so_far
        if self._bar is not None:
            self._bar.set_postfix(fields)
            return
        state = (len(self.counted), self.total, tuple(fields.items()))
        now = time.monotonic()
        due = force or now - self._printed_at >= self.interval_s
        if not self.enabled or not due or state == self._printed:
            return
        self._printed, self._printed_at = state, now
        print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        """`study: 12/27 runs, population 27 runs, epoch 5/20, best val_accuracy 0.9722`."""
        of = "" if self.total is None else f"/{self.total}"
        fields = [f"{name} {value}" for name, value in (self.training | self.best_so_far).items()]
        return ", ".join([f"study: {len(self.counted)}{of} runs", *fields])
