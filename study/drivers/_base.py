"""The boundary between an engine (what to try next) and the trial loop (how to train it).

Call order: `open()` once (creates or resumes the engine's state in the campaign folder), then
`ask()` and `tell()` until `ask()` returns None with no proposal waiting to be told, then
`close()`. `ask()` may be called several times before the matching `tell()`s, so a batch of
configurations can be trained together; it returns None when the engine has nothing to propose
until the waiting proposals are told (KerasTuner's grid, for one, hands out two at a time).
`describe()` comes just before each `tell()`, and `describe_chosen()` once the campaign has
evaluated its chosen configuration: both only show the study in the engine's own viewers.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from study.config import Campaign


@dataclass
class Proposal:
    """One configuration the engine wants trained: its searched values (active ones only; an
    engine that sets the epoch budget, as Hyperband, puts it in `values["epochs"]`)."""

    values: dict[str, Any]
    handle: Any = None  # the engine's own trial object
    trial: int | None = None  # its trial number in the records, set by the trial loop


@dataclass(frozen=True)
class ConfigurationRecord:
    """What the trial loop recorded of one configuration, per seed it trained: the objective
    after each epoch (`curves`), and its best epoch's (`objectives`, as the records' `best_`
    column)."""

    curves: dict[int, list[float]]
    objectives: dict[int, float]


@dataclass(frozen=True)
class Chief:
    """Where a launched worker finds the engine's state that the launching process serves
    (KerasTuner's chief oracle), and the id it asks under."""

    host: str
    port: int
    tuner_id: str


class Liveness(Protocol):
    """Who is alive, as the record store sees it (study.store.RecordStore): this process's
    `worker` id, and whether another worker `is_gone`. A driver that leases the engine's trials
    follows it rather than keeping leases of its own."""

    worker: str
    stale_after_s: float

    def is_gone(self, worker: str) -> bool: ...


class Driver(abc.ABC):
    """Translates the campaign's search space for one engine and runs its ask/tell loop."""

    def __init__(
        self,
        campaign: Campaign,
        directory: Path,
        *,
        chief: Chief | None = None,
        liveness: Liveness | None = None,
        shared: bool = False,
    ) -> None:
        self.campaign = campaign
        self.directory = Path(directory)
        self.chief = chief  # None: the engine's state is in `directory`, in this process
        self.liveness = liveness
        self.shared = shared  # other workers ask the same study

    @abc.abstractmethod
    def open(self) -> None:
        """Create the engine's state, or resume it; runs left unfinished are asked for again."""

    @abc.abstractmethod
    def ask(self) -> Proposal | None:
        """The next configuration to train, or None (over, or waiting for `tell`s)."""

    @abc.abstractmethod
    def tell(
        self, proposal: Proposal, objective: float | None, status: str, failure: str = ""
    ) -> None:
        """Report a configuration's objective (mean over seeds) and status."""

    def should_prune(self, proposal: Proposal, epoch: int, value: float) -> bool:
        """Report an intermediate objective; True stops the configuration (engines that prune)."""
        return False

    def describe(self, proposal: Proposal, record: ConfigurationRecord) -> None:  # noqa: B027
        """Show what was recorded of a configuration in the engine's own state, for the
        engine's viewers; called just before its `tell`."""

    def describe_chosen(self, chosen: dict[str, Any]) -> None:  # noqa: B027
        """Show the chosen configuration (`study.records.chosen_configuration`, with its test
        metrics) in the engine's own state, once the campaign has evaluated it."""

    def save_models(self, data: Any, store: Any) -> None:  # noqa: B027
        """Write the trained models where the engine's own API loads them (KerasTuner's
        `get_best_models`), from the records `store` and the campaign's `data`; called once the
        campaign has chosen its configuration."""

    def close(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Release the engine's resources."""
