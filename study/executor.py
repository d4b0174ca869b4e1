"""Executors: what trains a set of runs. The trial loop (study.campaign) hands an executor a group
of runs that may train together and records what comes back; how they trained is the executor's.

- `InProcess`: one run alone (`study.trial.train_run`), or several that share an architecture
  as one population (`study.population.train_population`), in this process.
- `Isolated`: each run alone in a worker subprocess (`study.isolate`, `--isolate`), so this
  process's memory stays bounded; with an explicit `population = K`, populations still train in
  this process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from study.config import Campaign
from study.data import Dataset
from study.isolate import IsolatedRunner
from study.population import Member, population_arithmetic, population_size, train_population
from study.results import RunResult
from study.trial import train_run

# Called after each epoch with (epoch, objective value); True stops the run as PRUNED. A
# population calls it with NaN for the value (its members have one each) and goes on.
EpochHook = Callable[[int, float], bool]


class InProcess:
    """Trains runs in this process: one alone, several as one population."""

    isolated = False  # each run alone in a worker subprocess

    def __init__(
        self,
        campaign: Campaign,
        data: Dataset,
        *,
        shared: bool = False,
        arithmetic: Mapping[str, Any] | None = None,
    ) -> None:
        self.campaign, self.data = campaign, data
        # How many runs one `train` call takes at most (1: one at a time), and why not more.
        self.size, self.why_not = population_size(
            campaign.population,
            pruner=campaign.pruner,
            isolated=self.isolated,
            shared=shared,
            builder=campaign.builder,
        )
        # How populations train, "auto" resolved: what `study verify` replays (and passes here).
        self.arithmetic = dict(arithmetic or population_arithmetic(masks=campaign.population_masks))

    def train(
        self, members: Sequence[Member], on_epoch: EpochHook | None = None
    ) -> list[RunResult]:
        """One result per member, in order."""
        c = self.campaign
        if len(members) > 1:
            return train_population(
                members,
                builder=c.builder,
                data=self.data,
                objective=c.objective,
                direction=c.direction,
                on_epoch=on_epoch and (lambda epoch: on_epoch(epoch, math.nan)),
                **self.arithmetic,
            )
        return [self.train_alone(members[0], on_epoch)]

    def train_alone(self, member: Member, on_epoch: EpochHook | None) -> RunResult:
        return train_run(
            member.values, seed=member.seed, on_epoch=on_epoch, **self._options(member)
        )

    def _options(self, member: Member) -> dict[str, Any]:
        c = self.campaign
        return {
            "builder": c.builder,
            "data": self.data,
            "objective": c.objective,
            "direction": c.direction,
            "weights_path": member.weights_path,
        }

    def close(self) -> None:
        pass


class Isolated(InProcess):
    """Trains each run alone in a worker subprocess, replaced after `runs_per_worker` runs."""

    isolated = True

    def __init__(
        self, campaign: Campaign, data: Dataset, *, runs_per_worker: int, shared: bool = False
    ) -> None:
        super().__init__(campaign, data, shared=shared)
        self.runner = IsolatedRunner(data, campaign.deterministic, runs_per_worker)

    def train_alone(self, member: Member, on_epoch: EpochHook | None) -> RunResult:
        return self.runner(
            member.values, seed=member.seed, on_epoch=on_epoch, **self._options(member)
        )

    def close(self) -> None:
        self.runner.close()


def make_executor(
    campaign: Campaign, data: Dataset, *, isolate: int = 0, shared: bool = False
) -> InProcess:
    """The executor for `study run` flags: `--isolate N` (> 0) trains each run in a worker
    subprocess replaced after N runs."""
    if isolate > 0:
        return Isolated(campaign, data, runs_per_worker=isolate, shared=shared)
    return InProcess(campaign, data, shared=shared)
