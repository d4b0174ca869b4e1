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
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces import CustomBuilder, configuration_key
from search_spaces.user_code import source_hash
from study import phases
from study.atomic import write_atomically
from study.backend import set_determinism
from study.config import Campaign, check_against_data, check_custom_model
from study.data import Dataset, load_dataset
from study.drivers import Chief, ConfigurationRecord, Driver, Proposal, make_driver
from study.executor import EpochHook, InProcess, make_executor
from study.manifest import MANIFEST_FILE, session_manifest
from study.population import Member, evaluate_population, plan_populations
from study.progress import Progress
from study.records import (
    CAMPAIGN_FILE,
    check_writable,
    chosen_configuration,
    load,
    rank_configurations,
    read_frozen_campaign,
    read_json_file,
    read_manifest,
    summarize_history,
)
from study.results import FINISHED, RunResult, Status, configuration_objective, is_better
from study.seeding import derive_seed
from study.store import STORE_NAME, RecordStore, StoredRun, StoreError, check_sqlite_file
from study.trial import evaluate_run

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
    driver = make_driver(campaign, directory, chief=chief, liveness=store, shared=shared)
    executor = make_executor(campaign, data, isolate=isolate, shared=shared)
    try:
        driver.open()
        phases.mark("setup")
        n_configurations = campaign.n_configurations()
        total = None if n_configurations is None else n_configurations * len(campaign.seeds)
        with Progress(total=total, enabled=progress, finished=store.finished_runs()) as bar:
            _TrialLoop(campaign, data, store, driver, directory, bar, executor).run()
        phases.mark("trained")
        chosen = evaluate_chosen(campaign, data, store, directory) if evaluate else None
        phases.mark("evaluated")
        if chosen is not None:
            driver.describe_chosen(chosen)
            driver.save_models(data, store)
        return chosen
    finally:
        executor.close()
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
        folder=campaign.folder,  # where a `py:` dataset's module may live
    )
    check_against_data(campaign, data.input_shape, data.task)
    check_custom_model(campaign, data)
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
    phases.mark("data")
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
            "builder_source": builder_source(campaign),
            "sessions": [],
        }
    )
    if manifest["data_fingerprint"] != data_fingerprint:
        raise CampaignError(
            f"{directory}: the data of {campaign.dataset} changed since this campaign started "
            f"(fingerprint {data_fingerprint[:12]}, recorded {manifest['data_fingerprint'][:12]})"
        )
    check_builder_source(campaign, manifest, directory, CampaignError)
    session = session_manifest(command)
    if campaign.folder is not None:  # where study verify finds the campaign's own modules
        session["campaign_folder"] = str(campaign.folder)
    manifest["sessions"].append(session)
    write_atomically(path, json.dumps(manifest, indent=2))


def builder_source(campaign: Campaign) -> str | None:
    """sha256 of a custom builder's module source (None for a built-in builder)."""
    builder = campaign.builder
    return source_hash(builder.function()) if isinstance(builder, CustomBuilder) else None


def check_builder_source(
    campaign: Campaign, manifest: dict[str, Any], directory: Path, error: type[Exception]
) -> None:
    """Refuse (raise `error`) a folder whose custom builder's source changed since it started:
    its runs would no longer be the model it records."""
    recorded, now = manifest.get("builder_source"), builder_source(campaign)
    if recorded and now and recorded != now:
        raise error(
            f"model.builder: the source of {campaign.builder.name} changed since the campaign in "
            f"{directory} started (sha256 {now[:12]}, recorded {recorded[:12]}); restore it, or "
            "run the campaign into a new --out folder"
        )


def _changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.fromkeys([*before, *after]))
        return [
            c for k in keys for c in _changed_keys(before.get(k), after.get(k), f"{prefix}{k}.")
        ]
    return [] if before == after else [prefix.rstrip(".")]


@dataclass
class _Run:
    """One configuration x seed of the batch the trial loop is training."""

    index: int  # the configuration's place in the batch
    proposal: Proposal
    trial: int
    seed: int
    key: str  # the configuration's key (search_spaces.configuration_key)
    values: dict[str, Any]


class _TrialLoop:
    """Ask the engine for configurations, train their runs (one per seed) through the executor,
    record each run, tell the engine each configuration's objective; stop after too many failures.

    One path for every executor: the runs of a batch of configurations are grouped (populations
    of runs that share an architecture, up to the executor's size, or one run a group), each
    group is claimed in the record store and trained; runs another live worker holds are waited
    for after this worker's own. A configuration stops at its first run that does not complete:
    its runs not started yet are skipped, and it is told FAILED (or PRUNED) with that run's reason.
    """

    def __init__(
        self,
        campaign: Campaign,
        data: Dataset,
        store: RecordStore,
        driver: Driver,
        directory: Path,
        bar: Progress,
        executor: InProcess,
    ) -> None:
        self.campaign, self.data, self.store, self.driver = campaign, data, store, driver
        self.directory, self.bar, self.executor = directory, bar, executor
        self.best = math.nan  # the best configuration's objective so far
        self._said_alone = False

    def run(self) -> None:
        failures = 0
        c, size = self.campaign, self.executor.size
        if self.executor.why_not:  # said once per campaign (and process)
            self.bar.note(f"population: {self.executor.why_not}")
        elif size > 1 and c.population == "auto":
            self.bar.note(
                f'population: "auto": runs that share an architecture train together, up to '
                f"{size} at a time (campaign.population = 1: one at a time)"
            )
        n_asked = -(-size // len(c.seeds))  # configurations whose runs fill one population
        while batch := self._ask(n_asked):
            for proposal, (objective, status, failure) in zip(
                batch, self._train(batch), strict=True
            ):
                self.driver.tell(proposal, objective, status, failure)
                failures = failures + 1 if status == Status.FAILED else 0
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

    def _train(self, batch: list[Proposal]) -> list[tuple[float | None, str, str]]:
        """Each configuration's objective (mean over seeds), status and failure reason."""
        c = self.campaign
        ended: dict[tuple[int, int], tuple[str, dict, str]] = {}  # (index, seed) -> how it ended
        pending = []
        for index, proposal in enumerate(batch):
            values = c.values(proposal.values)
            key = configuration_key(values)
            trial = proposal.trial = self.store.trial_for(key, values)
            for seed in c.seeds:
                run = _Run(index, proposal, trial, seed, key, values)
                stored = self.store.run(trial, seed)
                if stored is not None and stored.status in FINISHED:
                    self._ended(ended, run, stored)
                else:
                    pending.append(run)
        held = []
        for group in self._groups(pending):
            mine = []
            for run in group:
                if self._skipped(ended, run):
                    continue
                stored = self.store.run(run.trial, run.seed)
                if stored is not None and stored.status in FINISHED:
                    self._ended(ended, run, stored)
                elif self.store.start_run(run.trial, run.seed):
                    mine.append(run)
                else:
                    held.append(run)
            if mine:
                self._train_group(mine, ended)
        for run in held:  # another worker's: waited for now, trained if that worker died
            if self._skipped(ended, run):
                continue
            stored = self._finished_or_claimed(run.trial, run.seed)
            if stored is None:
                self._train_group([run], ended)
            else:
                self._ended(ended, run, stored)
        for index, proposal in enumerate(batch):  # each is told next
            self.driver.describe(proposal, self._record(ended, index))
        return [self._outcome(ended, index) for index in range(len(batch))]

    def _groups(self, runs: list[_Run]) -> list[list[_Run]]:
        """Runs that train together: populations up to the executor's size, in order, then the
        runs that share their architecture with no other; one run a group at size 1."""
        if self.executor.size == 1:
            return [[run] for run in runs]
        populations, alone = plan_populations(
            [(run, run.values) for run in runs],
            builder=self.campaign.builder,
            size=self.executor.size,
        )
        if alone and not self._said_alone:
            self._said_alone = True
            self.bar.note(
                f"population: {len(alone)} run(s) share their architecture with no other "
                "waiting run (or use batch normalization); they train one at a time"
            )
        return [*populations, *([run] for run in alone)]

    def _train_group(self, group: list[_Run], ended: dict) -> None:
        """Train runs this worker has claimed, together, and record each."""
        c, first = self.campaign, group[0]
        self.bar.start_run(first.trial, first.seed, int(first.values["epochs"]), runs=len(group))
        members = [
            Member(
                run.values,
                derive_seed(c.seed, run.key, run.seed),
                weights_path(self.directory, run.trial, run.seed),
            )
            for run in group
        ]
        # Pruning compares configurations on their first seed, epoch by epoch.
        prune = len(group) == 1 and first.seed == c.seeds[0]
        results = self.executor.train(members, self._epoch_hook(first.proposal, prune=prune))
        population = None  # what `study verify` replays: the members, in order, and how
        if len(group) > 1:
            population = {
                "members": [[run.trial, run.seed] for run in group],
                **self.executor.arithmetic,
            }
        for run, result in zip(group, results, strict=True):
            self.store.finish_run(run.trial, run.seed, result, population=population)
            share_weights(self.store, self.directory, run.trial, run.seed)
            self._ended(ended, run, result)

    def _ended(self, ended: dict, run: _Run, result: RunResult | StoredRun) -> None:
        ended[run.index, run.seed] = result.status, result.history, result.failure
        self.bar.finish_run(run.trial, run.seed)

    def _skipped(self, ended: dict, run: _Run) -> bool:
        """Whether `run`'s configuration has a run that did not complete: then `run` is not
        trained (nor waited for)."""
        stopped = any(
            ended.get((run.index, seed), (Status.COMPLETE,))[0] != Status.COMPLETE
            for seed in self.campaign.seeds
        )
        if stopped:
            self.bar.skip(1)
        return stopped

    def _record(self, ended: dict, index: int) -> ConfigurationRecord:
        """Per seed of configuration `index` that trained: its objective's curve and best."""
        c = self.campaign
        histories = {seed: ended[index, seed][1] for seed in c.seeds if (index, seed) in ended}
        return ConfigurationRecord(
            curves={seed: list(h.get(c.objective, [])) for seed, h in histories.items()},
            objectives={
                seed: summarize_history(h, c.objective, c.direction).get(
                    f"best_{c.objective}", math.nan
                )
                for seed, h in histories.items()
            },
        )

    def _outcome(self, ended: dict, index: int) -> tuple[float | None, str, str]:
        """A configuration's objective (mean over seeds), status and failure reason: those of
        its first run in seed order that did not complete, if one did not."""
        c = self.campaign
        runs = [ended[index, seed] for seed in c.seeds if (index, seed) in ended]
        failed = next((run for run in runs if run[0] != Status.COMPLETE), None)
        if failed is not None:
            return None, failed[0], failed[2]
        objective = configuration_objective(
            [status for status, _, _ in runs],
            [
                summarize_history(history, c.objective, c.direction)[f"best_{c.objective}"]
                for _, history, _ in runs
            ],
        )
        if is_better(objective, self.best, c.direction):
            self.best = objective
            self.bar.best(c.objective, objective)
        return objective, Status.COMPLETE, ""

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

    def _epoch_hook(self, proposal: Proposal, *, prune: bool) -> EpochHook:
        def hook(epoch: int, value: float) -> bool:
            phases.mark("epoch")
            self.bar.epoch(epoch)
            return prune and self.driver.should_prune(proposal, epoch, value)

        return hook


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
    seed on the test split; its summary (`study.records.chosen_configuration`). The test split
    chooses nothing."""
    ranking = rank_configurations(load(directory).trials, campaign.objective, campaign.direction)
    if ranking.empty:
        return None
    chosen = int(ranking.loc[0, "trial"])
    values = store.configurations()[chosen]
    # Not evaluated yet (else by an earlier session).
    seeds = [seed for seed in campaign.seeds if store.run(chosen, seed).test is None]
    paths = [fetch_weights(store, directory, chosen, seed) for seed in seeds]
    populations = store.populations()
    if len(seeds) > 1 and all((chosen, seed) in populations for seed in seeds):
        # They trained in a population: evaluated in one pass, the way they trained.
        tests = evaluate_population(
            [Member(values, seed, path) for seed, path in zip(seeds, paths, strict=True)],
            builder=campaign.builder,
            data=data,
            conv=populations[chosen, seeds[0]]["conv"],
        )
    else:
        tests = [
            evaluate_run(values, builder=campaign.builder, data=data, weights_path=path)
            for path in paths
        ]
    for seed, metrics in zip(seeds, tests, strict=True):
        store.set_test(chosen, seed, metrics)
    store.set_meta("chosen_trial", chosen)
    return chosen_configuration(
        load(directory).trials,
        store.configurations(),
        objective=campaign.objective,
        direction=campaign.direction,
        searched=campaign.space.params,
    )
