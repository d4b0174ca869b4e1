"""Running a campaign: freeze it in its folder, ask the engine, train every configuration once
per seed, record everything, and evaluate the chosen configuration on the test split.

Folder layout: campaign.json (the resolved campaign, frozen), campaign.toml (the file as given),
manifest.json (the data's fingerprint, and what ran on what: one entry per session),
records.sqlite (study.store), weights/ (best-epoch weights of each run, .npz), and the engine's
own state (optuna.sqlite or keras_tuner/).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_spaces import configuration_key
from study.atomic import write_atomically
from study.backend import set_determinism
from study.config import Campaign, check_against_data
from study.data import Dataset, load_dataset
from study.drivers import Chief, Driver, Proposal, make_driver
from study.isolate import IsolatedRunner
from study.manifest import MANIFEST_FILE, session_manifest
from study.population import (
    Member,
    plan_populations,
    population_arithmetic,
    population_size,
    train_population,
)
from study.progress import Progress
from study.records import (
    CAMPAIGN_FILE,
    check_writable,
    load,
    rank_configurations,
    read_frozen_campaign,
    read_json_file,
    read_manifest,
    summarize_history,
)
from study.results import COMPLETE, FAILED, FINISHED, RunResult
from study.seeding import derive_seed
from study.store import STORE_NAME, RecordStore, StoredRun, StoreError, check_sqlite_file
from study.trial import evaluate_run, train_run

# The engines' own state in a folder (study.drivers): checked before a session writes anything.
ENGINE_SQLITE_FILES = ("optuna.sqlite",)
KERAS_TUNER_DIR = "keras_tuner"
CLAIM_POLL_S = 1.0  # how often a worker looks whether a run another worker holds has finished


class CampaignError(RuntimeError):
    """The campaign cannot go on (a changed campaign file, too many failures)."""


def run_campaign(
    campaign: Campaign,
    directory: str | Path,
    *,
    source_text: str | None = None,
    command: str = "",
    progress: bool = True,
    isolate: int = 0,
    record: bool = True,
    evaluate: bool = True,
    shared: bool = False,
    chief: Chief | None = None,
) -> dict[str, Any] | None:
    """Run (or resume) `campaign` in `directory`; returns the chosen configuration's summary.

    `isolate` > 0 trains each run in a worker subprocess, replaced after that many runs, so this
    process's memory stays bounded whatever the backend leaks (study.isolate).
    A worker that joins a campaign (study.workers) runs with `record=False` when the process
    that launched it recorded the session, and `evaluate=False`: the test evaluation is done once;
    `shared` says other workers train the same campaign (`population = "auto"` then trains one
    run at a time, study.population.population_size). `chief`: where a KerasTuner worker asks
    the oracle that its launching process serves.
    """
    directory = Path(directory)
    data = prepare_folder(
        campaign, directory, source_text=source_text, command=command, record=record
    )
    store = open_store(campaign, directory)
    driver = make_driver(campaign, directory, chief=chief)
    runner = IsolatedRunner(data, campaign.deterministic, isolate) if isolate > 0 else None
    try:
        driver.open()
        n_configurations = campaign.n_configurations()
        total = None if n_configurations is None else n_configurations * len(campaign.seeds)
        with Progress(total=total, enabled=progress, finished=store.finished_runs()) as bar:
            _TrialLoop(
                campaign, data, store, driver, directory, bar, runner=runner, shared=shared
            ).run()
        return evaluate_chosen(campaign, data, store, directory) if evaluate else None
    finally:
        if runner is not None:
            runner.close()
        driver.close()
        store.close()


def load_campaign_data(campaign: Campaign) -> Dataset:
    """The campaign's data, split as it says and checked against its model and objective."""
    data = load_dataset(
        campaign.dataset,
        validation_fraction=campaign.validation_fraction,
        test_fraction=campaign.test_fraction,
        seed=campaign.seed,
        limit=campaign.limit,
    )
    check_against_data(campaign, data.input_shape, data.task)
    return data


def prepare_folder(
    campaign: Campaign, directory: Path, *, source_text: str | None, command: str, record: bool
) -> Dataset:
    """Set the backend's determinism, check the folder and load the data (a damaged folder and
    bad data are refused before anything is written), then freeze the campaign in `directory`
    and, with `record`, add this session to its manifest."""
    set_determinism(campaign.deterministic)  # before the session records it
    check_folder(directory, record=record)
    data = load_campaign_data(campaign)
    directory.mkdir(parents=True, exist_ok=True)
    freeze_campaign(campaign, directory, source_text)
    if record:
        record_session(campaign, directory, data_fingerprint=data.fingerprint(), command=command)
    return data


def check_folder(directory: Path, *, record: bool) -> None:
    """Refuse, before anything is written or trained, a folder a session could not finish in:
    one that cannot be written in, or whose files are unreadable or damaged. With `record`,
    also one whose records have lost their manifest (the data it checks would go unchecked)."""
    check_writable(directory)
    if not directory.exists():
        return
    if (directory / CAMPAIGN_FILE).exists() or (directory / CAMPAIGN_FILE).is_symlink():
        read_frozen_campaign(directory)
    manifest = read_manifest(directory)
    for name in ENGINE_SQLITE_FILES:
        check_sqlite_file(directory / name)
    for path in sorted((directory / KERAS_TUNER_DIR).glob("**/*.json")):
        read_json_file(path)
    runs = _recorded_runs(directory / STORE_NAME)
    engine_state = [p.name for p in _engine_state(directory)]
    if runs is None and engine_state:
        raise StoreError(
            f"{directory / STORE_NAME}: holds no records, but the engine's state "
            f"({engine_state[0]}) says this campaign ran: its records were lost. Restore the "
            "file (from a backup or a copy of the folder), or run the campaign into a new --out "
            "folder"
        )
    if record and manifest is None and runs:
        raise CampaignError(
            f"{directory / MANIFEST_FILE}: missing, but {STORE_NAME} holds {runs} run(s): "
            "without it the data they were trained on cannot be checked. Restore the file "
            "(from a backup or a copy of the folder), or run the campaign into a new --out folder"
        )


def _engine_state(directory: Path) -> list[Path]:
    """The engine's files in a folder (written after the record store's tables)."""
    files = [directory / name for name in ENGINE_SQLITE_FILES]
    files.append(directory / KERAS_TUNER_DIR / "oracle.json")
    return [f for f in files if f.is_file() and f.stat().st_size > 0]


def _recorded_runs(path: Path) -> int | None:
    """Runs in a folder's record store; None when it has no tables yet (none, or a session
    killed while creating it). A store that is damaged or of another version is refused
    (StoreError)."""
    check_sqlite_file(path)
    if not path.is_file():
        return None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return None
    store = RecordStore(path, create=False)
    try:
        return sum(store.status_counts().values())
    finally:
        store.close()


def freeze_campaign(campaign: Campaign, directory: Path, source_text: str | None) -> None:
    """Write the resolved campaign, or refuse to resume one whose trials would differ."""
    frozen = directory / CAMPAIGN_FILE
    if frozen.exists():
        before = read_frozen_campaign(directory)
        changed = _changed_keys(before, campaign.resolved)
        if changed:
            raise CampaignError(
                f"{directory}: holds a different campaign; changed keys: {', '.join(changed)}. "
                "Use another --out folder, or restore the file."
            )
        return
    if source_text is not None:
        write_atomically(directory / "campaign.toml", source_text)
    write_atomically(frozen, json.dumps(campaign.resolved, indent=2, allow_nan=False))


def record_session(
    campaign: Campaign, directory: Path, *, data_fingerprint: str, command: str
) -> None:
    """Add this session (versions, devices, command) to the manifest; refuse changed data."""
    path = directory / MANIFEST_FILE
    manifest = read_manifest(directory) or (
        {  # a new folder (check_folder refused records without a manifest)
            "campaign_fingerprint": campaign.fingerprint,
            "data_fingerprint": data_fingerprint,
            "engine": campaign.engine,
            "seeds": list(campaign.seeds),
            "campaign_seed": campaign.seed,
            "sessions": [],
        }
    )
    if manifest["data_fingerprint"] != data_fingerprint:
        raise CampaignError(
            f"{directory}: the data of {campaign.dataset} changed since this campaign started "
            f"(fingerprint {data_fingerprint[:12]}, recorded {manifest['data_fingerprint'][:12]})"
        )
    manifest["sessions"].append(session_manifest(command))
    write_atomically(path, json.dumps(manifest, indent=2))


def _changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.fromkeys([*before, *after]))
        return [
            c for k in keys for c in _changed_keys(before.get(k), after.get(k), f"{prefix}{k}.")
        ]
    return [] if before == after else [prefix.rstrip(".")]


class _TrialLoop:
    """Ask, train each seed (or find it in the store), tell; stop after too many failures."""

    def __init__(
        self,
        campaign: Campaign,
        data: Dataset,
        store: RecordStore,
        driver: Driver,
        directory: Path,
        bar: Progress,
        *,
        runner: Callable[..., RunResult] | None = None,
        shared: bool = False,
    ) -> None:
        self.campaign, self.data, self.store, self.driver = campaign, data, store, driver
        self.directory, self.bar = directory, bar
        self.runner = runner  # None: study.trial.train_run in this process
        self.shared = shared  # other workers train this campaign too
        self.best: float | None = None

    def run(self) -> None:
        failures = 0
        c = self.campaign
        size, why_not = population_size(
            c.population,
            pruner=c.pruner,
            isolated=self.runner is not None,
            shared=self.shared,
        )
        if why_not:  # said once per campaign (and process), not once per configuration
            self.bar.note(f"population: {why_not}")
        elif size > 1 and c.population == "auto":
            self.bar.note(
                f'population: "auto": runs that share an architecture train together, up to '
                f"{size} at a time (campaign.population = 1: one at a time)"
            )
        n_asked = -(-size // len(c.seeds))  # configurations whose runs fill one population
        while batch := self._ask(n_asked):
            outcomes = self._train_together(batch, size) if size > 1 else [self.train(batch[0])]
            for proposal, (objective, status, failure) in zip(batch, outcomes, strict=True):
                self.driver.tell(proposal, objective, status, failure)
                failures = failures + 1 if status == FAILED else 0
                if failures >= c.max_consecutive_failures:
                    raise CampaignError(
                        f"{failures} configurations failed in a row "
                        f"(campaign.max_consecutive_failures); the last: {failure}"
                    )

    def _ask(self, n: int) -> list[Proposal]:
        """Up to `n` proposals (fewer when the engine waits for tells or is done)."""
        batch: list[Proposal] = []
        while len(batch) < n and (proposal := self.driver.ask()) is not None:
            batch.append(proposal)
        return batch

    def _train_together(
        self, batch: list[Proposal], size: int
    ) -> list[tuple[float | None, str, str]]:
        """`train` for several configurations: their unfinished runs that share an architecture
        train as populations of up to `size` (study.population), the others one at a time.

        Runs another live worker holds are waited for only after this worker's own are trained,
        so that two workers never wait for each other's claims."""
        c, ended = self.campaign, {}
        claimed, held = [], []  # ((proposal index, trial, seed, key), values)
        for p, proposal in enumerate(batch):
            values = c.values(proposal.values)
            key = configuration_key(values)
            trial = self.store.trial_for(key, values)
            for seed in c.seeds:
                run = self.store.run(trial, seed)
                if run is not None and run.status in FINISHED:
                    ended[p, seed] = run.status, run.history, run.failure
                    self.bar.finish_run(trial, seed)
                else:
                    mine = self.store.start_run(trial, seed)
                    (claimed if mine else held).append(((p, trial, seed, key), values))
        values_of = dict(claimed + held)

        def train(tags: list[tuple[int, int, int, str]]) -> None:
            first = tags[0]
            self.bar.start_run(first[1], first[2], int(values_of[first]["epochs"]), runs=len(tags))
            members = [
                Member(
                    values_of[t],
                    derive_seed(c.seed, t[3], t[2]),
                    weights_path(self.directory, t[1], t[2]),
                )
                for t in tags
            ]
            population = None  # what `study verify` replays: the members, in order, and how
            if len(tags) > 1:
                arithmetic = population_arithmetic(masks=c.population_masks)
                population = {"members": [[t[1], t[2]] for t in tags], **arithmetic}
                results = train_population(
                    members,
                    builder=c.builder,
                    data=self.data,
                    objective=c.objective,
                    direction=c.direction,
                    on_epoch=self.bar.epoch,
                    **arithmetic,
                )
            else:
                results = [
                    (self.runner or train_run)(
                        members[0].values,
                        builder=c.builder,
                        data=self.data,
                        seed=members[0].seed,
                        objective=c.objective,
                        direction=c.direction,
                        weights_path=members[0].weights_path,
                        on_epoch=lambda epoch, value: self.bar.epoch(epoch),
                    )
                ]
            for (p, trial, seed, _), result in zip(tags, results, strict=True):
                self.store.finish_run(trial, seed, result, population=population)
                share_weights(self.store, self.directory, trial, seed)
                self.bar.finish_run(trial, seed)
                ended[p, seed] = result.status, result.history, result.failure

        populations, alone = plan_populations(claimed, builder=c.builder, size=size)
        if alone and not getattr(self, "_said_alone", False):
            self._said_alone = True
            self.bar.note(
                f"population: {len(alone)} run(s) share their architecture with no other "
                "waiting run (or use batch normalization); they train one at a time"
            )
        for tags in [*populations, *([tag] for tag in alone)]:
            train(tags)
        for tag, _ in held:
            run = self._finished_or_claimed(tag[1], tag[2])
            if run is None:  # its worker died: claimed now
                train([tag])
            else:
                ended[tag[0], tag[2]] = run.status, run.history, run.failure
                self.bar.finish_run(tag[1], tag[2])
        outcomes = []
        for p in range(len(batch)):
            runs = [ended[p, seed] for seed in c.seeds]
            failed = next((run for run in runs if run[0] != COMPLETE), None)
            if failed is not None:
                outcomes.append((None, failed[0], failed[2]))
                continue
            objective = statistics.fmean(
                summarize_history(history, c.objective, c.direction)[f"best_{c.objective}"]
                for _, history, _ in runs
            )
            self._note_best(objective)
            outcomes.append((objective, COMPLETE, ""))
        return outcomes

    def train(self, proposal: Proposal) -> tuple[float | None, str, str]:
        """The objective (mean over seeds), status and failure reason of one configuration."""
        c = self.campaign
        values = c.values(proposal.values)
        key = configuration_key(values)
        trial = self.store.trial_for(key, values)
        scores = []
        for i, seed in enumerate(c.seeds):
            run = self._finished_or_claimed(trial, seed)
            if run is None:  # claimed by this worker: train it
                self.bar.start_run(trial, seed, int(values["epochs"]))
                result = (self.runner or train_run)(
                    values,
                    builder=c.builder,
                    data=self.data,
                    seed=derive_seed(c.seed, key, seed),
                    objective=c.objective,
                    direction=c.direction,
                    weights_path=weights_path(self.directory, trial, seed),
                    on_epoch=self._epoch_hook(proposal, prune=i == 0),
                )
                self.store.finish_run(trial, seed, result)
                share_weights(self.store, self.directory, trial, seed)
                status, history, failure = result.status, result.history, result.failure
            else:
                status, history, failure = run.status, run.history, run.failure
            self.bar.finish_run(trial, seed)
            if status != COMPLETE:  # the configuration is failed or pruned: skip its other seeds
                self.bar.skip(len(c.seeds) - i - 1)
                return None, status, failure
            scores.append(
                summarize_history(history, c.objective, c.direction)[f"best_{c.objective}"]
            )
        objective = statistics.fmean(scores)
        self._note_best(objective)
        return objective, COMPLETE, ""

    def _finished_or_claimed(self, trial: int, seed: int) -> StoredRun | None:
        """The run if it is finished, or None once this worker has claimed it; a run another
        live worker holds is waited for (engines may hand one configuration to two workers)."""
        while True:
            run = self.store.run(trial, seed)
            if run is not None and run.status in FINISHED:
                return run
            if self.store.start_run(trial, seed):
                return None
            time.sleep(CLAIM_POLL_S)

    def _epoch_hook(self, proposal: Proposal, *, prune: bool):
        def hook(epoch: int, value: float) -> bool:
            self.bar.epoch(epoch)
            # Pruning compares configurations on their first seed, epoch by epoch.
            return prune and self.driver.should_prune(proposal, epoch, value)

        return hook

    def _note_best(self, objective: float) -> None:
        better = self.best is None or (
            objective > self.best
            if self.campaign.direction == "maximize"
            else objective < self.best
        )
        if better:
            self.best = objective
            self.bar.best(self.campaign.objective, objective)


def weights_path(directory: Path, trial: int, seed: int) -> Path:
    return directory / "weights" / f"trial-{trial}-seed-{seed}.npz"


def open_store(campaign: Campaign, directory: Path) -> RecordStore:
    """The campaign's record store; in a shared database, refuse a different campaign that has
    the same name (the database keys campaigns by name)."""
    store = RecordStore.for_campaign(directory, campaign.name, campaign.storage)
    if store.shares_weights:
        unshared = {"storage": None}  # each machine may spell the database's address its own way
        resolved = campaign.resolved | {"campaign": campaign.resolved["campaign"] | unshared}
        mine = json.loads(json.dumps(resolved))  # as it comes back from the store
        before = store.meta("campaign")
        if before is None:
            store.set_meta("campaign", mine)
        elif changed := _changed_keys(before, mine):
            store.close()
            raise CampaignError(
                f"{campaign.storage}: holds another campaign named {campaign.name!r}; "
                f"changed keys: {', '.join(changed)}. Rename the campaign (campaign.name)."
            )
    return store


def share_weights(store: RecordStore, directory: Path, trial: int, seed: int) -> None:
    """Copy a run's best-epoch weights into a store that other machines share."""
    path = weights_path(directory, trial, seed)
    if store.shares_weights and path.exists():
        store.put_weights(trial, seed, path.read_bytes())


def fetch_weights(store: RecordStore, directory: Path, trial: int, seed: int) -> Path:
    """A run's weights file, fetched from a shared store when another machine trained it."""
    path = weights_path(directory, trial, seed)
    if not path.exists() and store.shares_weights:
        data = store.weights(trial, seed)
        if data is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
    return path


def evaluate_chosen(
    campaign: Campaign, data: Dataset, store: RecordStore, directory: Path
) -> dict[str, Any] | None:
    """Choose the best configuration on validation (mean over seeds), then evaluate it once per
    seed on the test split. The test split chooses nothing."""
    trials = load(directory).trials
    ranking = rank_configurations(trials, campaign.objective, campaign.direction)
    if ranking.empty:
        return None
    chosen = int(ranking.loc[0, "trial"])
    values = store.configurations()[chosen]
    test: dict[int, dict[str, float]] = {}
    for seed in campaign.seeds:
        test[seed] = store.run(chosen, seed).test  # evaluated already by an earlier session
        if test[seed] is None:
            test[seed] = evaluate_run(
                values,
                builder=campaign.builder,
                data=data,
                weights_path=fetch_weights(store, directory, chosen, seed),
            )
            store.set_test(chosen, seed, test[seed])
    store.set_meta("chosen_trial", chosen)
    return {
        "trial": chosen,
        "values": {k: values[k] for k in campaign.space.params if k in values},
        "validation": {"mean": float(ranking.loc[0, "mean"]), "std": float(ranking.loc[0, "std"])},
        "test": test,
    }
