"""Verified reruns: train finished runs again from the frozen campaign and compare the curves.

`verify(directory)` reads the resolved campaign a folder froze (campaign.json), picks some
COMPLETE configuration x seed runs from its records, trains each again exactly as the trial loop
did (the same `study.trial.train_run`, the same derived seed, the same data split) and returns,
per run, the largest absolute difference between the recorded and the new per-epoch curves.
Nothing in the folder is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from search_spaces import SearchSpace, configuration_key
from study.config import Campaign, ConfigError, parse_campaign
from study.manifest import MANIFEST_FILE
from study.records import CAMPAIGN_FILE
from study.results import COMPLETE
from study.store import STORE_NAME, RecordStore, StoredRun, StoreError, is_remote

DETERMINISTIC_TOLERANCE = 1e-6  # deterministic ops on the same hardware reproduce bit for bit
NONDETERMINISTIC_TOLERANCE = 1e-2  # campaigns run with `deterministic = false`


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


def frozen_campaign(directory: str | Path) -> Campaign:
    """The campaign a folder froze when it started (campaign.json), validated again."""
    directory = Path(directory)
    path = directory / CAMPAIGN_FILE
    if not path.exists():
        raise VerifyError(f"{directory}: not a campaign folder (no {CAMPAIGN_FILE})")
    try:
        resolved = json.loads(path.read_text())
        tables = {  # a key left at None (no storage URL, no limit) is its default
            name: {k: v for k, v in table.items() if v is not None}
            for name, table in resolved.items()
            if name != "space"
        }
        base = parse_campaign(tables, source=str(path))
        space = SearchSpace.from_json(json.dumps(resolved.get("space", {})))
    except (ConfigError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise VerifyError(f"{path}: not a readable campaign ({error})") from None
    if not is_remote(base.storage) and not (directory / STORE_NAME).exists():
        raise VerifyError(f"{directory}: not a campaign folder (no {STORE_NAME})")
    fixed = {k: v for k, v in base.fixed.items() if k not in space.params}
    return dataclasses.replace(base, space=space, fixed=fixed, resolved=resolved)


def default_tolerance(campaign: Campaign) -> float:
    return DETERMINISTIC_TOLERANCE if campaign.deterministic else NONDETERMINISTIC_TOLERANCE


def choose_runs(runs: Sequence[StoredRun], n_runs: int) -> list[StoredRun]:
    """`n_runs` COMPLETE runs spread evenly over the campaign, in (trial, seed) order."""
    complete = sorted((r for r in runs if r.status == COMPLETE), key=lambda r: (r.trial, r.seed))
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


def verify(directory: str | Path, *, n_runs: int = 3) -> list[RunCheck]:
    """Retrain `n_runs` COMPLETE runs of the campaign in `directory` and compare their curves."""
    from study.backend import set_determinism
    from study.campaign import load_campaign_data
    from study.data import DataError
    from study.seeding import derive_seed
    from study.trial import train_run

    directory = Path(directory)
    campaign = frozen_campaign(directory)
    try:
        store = RecordStore.for_campaign(directory, campaign.name, campaign.storage)
    except StoreError as error:
        raise VerifyError(str(error)) from None
    try:
        configurations, runs = store.configurations(), store.runs()
    finally:
        store.close()
    chosen = choose_runs(runs, n_runs)
    if not chosen:
        raise VerifyError(f"{directory}: no COMPLETE run to verify yet")
    try:
        data = load_campaign_data(campaign)
    except DataError as error:
        raise VerifyError(str(error)) from None
    manifest_path = directory / MANIFEST_FILE
    if manifest_path.exists():
        recorded = json.loads(manifest_path.read_text()).get("data_fingerprint")
        if recorded and recorded != data.fingerprint():
            raise VerifyError(
                f"{directory}: the data of {campaign.dataset} changed since the campaign ran "
                f"(fingerprint {data.fingerprint()[:12]}, recorded {recorded[:12]})"
            )
    set_determinism(campaign.deterministic)
    checks = []
    for run in chosen:
        values = configurations[run.trial]
        result = train_run(
            values,
            builder=campaign.builder,
            data=data,
            seed=derive_seed(campaign.seed, configuration_key(values), run.seed),
            objective=campaign.objective,
            direction=campaign.direction,
        )
        if result.status != COMPLETE:
            checks.append(
                RunCheck(run.trial, run.seed, math.inf, "", 0, result.failure or result.status)
            )
            continue
        difference, column, epoch = largest_difference(run.history, result.history)
        checks.append(RunCheck(run.trial, run.seed, difference, column, epoch))
    return checks
