"""Verified reruns: train finished runs again from the frozen campaign and compare the curves.

`verify(directory)` reads the resolved campaign a folder froze (campaign.json), picks some
COMPLETE configuration x seed runs from its records, trains each again exactly as the campaign
did, and returns, per run, the largest absolute difference between the recorded and the new
per-epoch curves. A run that trained alone is retrained alone (the same `study.trial.train_run`,
the same derived seed, the same data split); a run that trained in a population (the store
records its members, in order, and the settings of its arithmetic) is replayed in that very
population, once for all the chosen runs it holds. With `alone=True` every run is retrained
alone, which matches a population member up to float rounding only (`ALONE_TOLERANCE`).
Nothing in the folder is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from search_spaces import SearchSpace, configuration_key
from study.config import Campaign, ConfigError, parse_campaign
from study.records import (
    CAMPAIGN_FILE,
    FolderError,
    open_records,
    read_frozen_campaign,
    read_manifest,
)
from study.results import RunResult, Status
from study.store import STORE_NAME, StoredRun, StoreError, is_remote

if TYPE_CHECKING:
    from study.data import Dataset

DETERMINISTIC_TOLERANCE = 1e-6  # deterministic ops on the same hardware reproduce bit for bit
NONDETERMINISTIC_TOLERANCE = 1e-2  # campaigns run with `deterministic = false`
# A population member retrained alone (`alone=True`): the stacked model adds and reduces in
# another order, and training amplifies the rounding. Measured on the default campaign (30 runs,
# 40 epochs, CPU): 24 runs within 1.1e-5, four off by one validation example in 200 (0.005),
# two by 0.028 and 0.030 in val_loss at epoch 37.
ALONE_TOLERANCE = 5e-2


class VerifyError(ValueError):
    """The folder cannot be verified (not a campaign folder, changed data, nothing finished)."""


class RunCheck(NamedTuple):
    """One retrained run: the largest absolute difference from its recorded curves, and where."""

    trial: int
    seed: int
    max_difference: float  # inf when the rerun did not complete or its curves differ in shape
    column: str  # the curve (`val_loss`, ...) of the largest difference
    epoch: int  # 1-based epoch of the largest difference (0 when not one epoch)
    failure: str = ""  # why the rerun did not complete
    population: int = 1  # members of the population it was replayed in (1: retrained alone)


def frozen_campaign(directory: str | Path) -> Campaign:
    """The campaign a folder froze when it started (campaign.json), validated again."""
    directory = Path(directory)
    path = directory / CAMPAIGN_FILE
    try:
        resolved = read_frozen_campaign(directory)
    except FolderError as error:
        raise VerifyError(str(error)) from None
    try:
        tables = {  # a key left at None (no storage URL, no limit) is its default
            name: {k: v for k, v in table.items() if v is not None}
            for name, table in resolved.items()
            if name != "space"
        }
        base = parse_campaign(tables, source=str(path), folder=_campaign_folder(directory))
        space = SearchSpace.from_json(json.dumps(resolved.get("space", {})))
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise VerifyError(f"{path}: not a readable campaign ({error})") from None
    if not is_remote(base.storage) and not (directory / STORE_NAME).exists():
        raise VerifyError(f"{directory}: not a campaign folder (no {STORE_NAME})")
    fixed = {k: v for k, v in base.fixed.items() if k not in space.params}
    return dataclasses.replace(base, space=space, fixed=fixed, resolved=resolved)


def _campaign_folder(directory: Path) -> Path | None:
    """The campaign file's folder its last session recorded (where its own modules, a custom
    builder or a `py:` loader, live), when it still exists."""
    try:
        sessions = (read_manifest(directory) or {}).get("sessions") or [{}]
    except FolderError:
        return None  # the damaged manifest is reported where it is read
    folder = sessions[-1].get("campaign_folder") if isinstance(sessions[-1], dict) else None
    return Path(folder) if isinstance(folder, str) and Path(folder).is_dir() else None


def default_tolerance(campaign: Campaign, *, alone: bool = False) -> float:
    """The largest difference that still counts as reproduced; `alone`: population members
    retrained alone (`verify(..., alone=True)`)."""
    tolerance = DETERMINISTIC_TOLERANCE if campaign.deterministic else NONDETERMINISTIC_TOLERANCE
    return max(tolerance, ALONE_TOLERANCE) if alone else tolerance


def choose_runs(runs: Sequence[StoredRun], n_runs: int) -> list[StoredRun]:
    """`n_runs` COMPLETE runs spread evenly over the campaign, in (trial, seed) order."""
    complete = [r for r in runs if r.status == Status.COMPLETE]
    complete.sort(key=lambda r: (r.trial, r.seed))
    if n_runs >= len(complete):
        return complete
    if n_runs == 1:
        return complete[:1]
    step = (len(complete) - 1) / (n_runs - 1)
    return [complete[round(i * step)] for i in range(n_runs)]


def largest_difference(
    recorded: Mapping[str, Sequence[float]], rerun: Mapping[str, Sequence[float]]
) -> tuple[float, str, int]:
    """The largest absolute difference between two histories, its column and 1-based epoch.
    A curve missing from one of them, or of another length, counts as an infinite difference."""
    worst = (0.0, "", 0)
    for column in sorted(set(recorded) | set(rerun)):
        a, b = recorded.get(column), rerun.get(column)
        if a is None or b is None or len(a) != len(b):
            return math.inf, column, 0
        for epoch, (x, y) in enumerate(zip(a, b, strict=True), start=1):
            same = x == y or (math.isnan(x) and math.isnan(y))
            difference = 0.0 if same else abs(x - y)
            if math.isnan(difference):
                difference = math.inf
            if difference > worst[0]:
                worst = (difference, column, epoch)
    return worst


def verify(directory: str | Path, *, n_runs: int = 3, alone: bool = False) -> list[RunCheck]:
    """Retrain `n_runs` COMPLETE runs of the campaign in `directory` and compare their curves:
    each in the population it trained in (or alone), or, with `alone`, each alone."""
    from study.backend import set_determinism
    from study.campaign import check_builder_source, load_campaign_data
    from study.data import DataError

    directory = Path(directory)
    campaign = frozen_campaign(directory)
    try:
        manifest = read_manifest(directory) or {}
        store = open_records(directory, campaign.resolved["campaign"])
        try:
            configurations, runs = store.configurations(), store.runs()
            populations = {} if alone else store.populations()
        finally:
            store.close()
    except (FolderError, StoreError) as error:
        raise VerifyError(str(error)) from None
    chosen = choose_runs(runs, n_runs)
    if not chosen:
        raise VerifyError(f"{directory}: no COMPLETE run to verify yet")
    try:
        data = load_campaign_data(campaign)
        check_builder_source(campaign, manifest, directory, VerifyError)
    except (DataError, ConfigError) as error:
        raise VerifyError(str(error)) from None
    recorded = manifest.get("data_fingerprint")
    if recorded and recorded != data.fingerprint():
        raise VerifyError(
            f"{directory}: the data of {campaign.dataset} changed since the campaign ran "
            f"(fingerprint {data.fingerprint()[:12]}, recorded {recorded[:12]})"
        )
    set_determinism(campaign.deterministic)
    replay = _Replay(campaign, data, configurations)
    # The chosen runs grouped by the population they trained in: each population trains once.
    groups: dict[str, list[StoredRun]] = {}
    for run in chosen:
        population = populations.get((run.trial, run.seed))
        groups.setdefault(json.dumps(population, sort_keys=True), []).append(run)
    checks = {}
    for key, group in groups.items():
        population = json.loads(key)
        if population is None:
            checks |= {(run.trial, run.seed): replay.alone(run) for run in group}
        else:
            checks |= replay.population(population, group)
    return [checks[run.trial, run.seed] for run in chosen]


class _Replay:
    """Trains runs again as the campaign trained them, and compares them with their records."""

    def __init__(
        self, campaign: Campaign, data: Dataset, configurations: Mapping[int, Any]
    ) -> None:
        self.campaign, self.data, self.configurations = campaign, data, configurations

    def _values_and_seed(self, trial: int, seed: int) -> tuple[Mapping[str, Any], int]:
        from study.seeding import derive_seed

        if trial not in self.configurations:
            raise VerifyError(f"trial {trial}: no such configuration in the records")
        values = self.configurations[trial]
        return values, derive_seed(self.campaign.seed, configuration_key(values), seed)

    def alone(self, run: StoredRun) -> RunCheck:
        from study.executor import InProcess
        from study.population import Member

        member = Member(*self._values_and_seed(run.trial, run.seed))
        return _compare(run, InProcess(self.campaign, self.data).train([member])[0])

    def population(
        self, population: Mapping[str, Any], runs: Sequence[StoredRun]
    ) -> dict[tuple[int, int], RunCheck]:
        """Train the recorded population once (same members, order and arithmetic) and compare
        each of `runs` (its members) with its replayed member."""
        from study.executor import InProcess
        from study.population import Member

        members = [tuple(m) for m in population["members"]]
        arithmetic = {k: v for k, v in population.items() if k != "members"}
        results = InProcess(self.campaign, self.data, arithmetic=arithmetic).train(
            [Member(*self._values_and_seed(trial, seed)) for trial, seed in members]
        )
        return {
            (run.trial, run.seed): _compare(
                run, results[members.index((run.trial, run.seed))], len(members)
            )
            for run in runs
        }


def _compare(run: StoredRun, result: RunResult, population: int = 1) -> RunCheck:
    if result.status != Status.COMPLETE:
        failure = result.failure or result.status
        return RunCheck(run.trial, run.seed, math.inf, "", 0, failure, population)
    difference, column, epoch = largest_difference(run.history, result.history)
    return RunCheck(run.trial, run.seed, difference, column, epoch, "", population)
