"""Running a campaign: freeze it in its folder, ask the engine, train every configuration once
per seed, record everything, and evaluate the chosen configuration on the test split.

Folder layout: campaign.json (the resolved campaign, frozen), campaign.toml (the file as given),
manifest.json (the data's fingerprint, and what ran on what: one entry per session),
records.sqlite (study.store), weights/ (best-epoch weights of each run, .npz), and the engine's
own state (optuna.sqlite or keras_tuner/).
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from search_spaces import configuration_key
from study.config import Campaign, check_against_data
from study.data import Dataset, load_dataset
from study.drivers import Driver, Proposal, make_driver
from study.manifest import MANIFEST_FILE, session_manifest
from study.progress import Progress
from study.records import CAMPAIGN_FILE, load, rank_configurations, summarize_history
from study.results import COMPLETE, FAILED, FINISHED
from study.seeding import derive_seed
from study.store import STORE_NAME, RecordStore
from study.trial import evaluate_run, train_run


class CampaignError(RuntimeError):
    """The campaign cannot go on (a changed campaign file, too many failures)."""


def run_campaign(
    campaign: Campaign,
    directory: str | Path,
    *,
    source_text: str | None = None,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any] | None:
    """Run (or resume) `campaign` in `directory`; returns the chosen configuration's summary."""
    directory = Path(directory)
    data = load_dataset(  # bad data is refused before anything is written
        campaign.dataset,
        validation_fraction=campaign.validation_fraction,
        test_fraction=campaign.test_fraction,
        seed=campaign.seed,
        limit=campaign.limit,
    )
    check_against_data(campaign, data.input_shape, data.task)
    directory.mkdir(parents=True, exist_ok=True)
    freeze_campaign(campaign, directory, source_text)
    record_session(campaign, directory, data_fingerprint=data.fingerprint(), command=command)
    store = RecordStore(directory / STORE_NAME)
    driver = make_driver(campaign, directory)
    try:
        driver.open()
        n_configurations = campaign.n_configurations()
        total = None if n_configurations is None else n_configurations * len(campaign.seeds)
        with Progress(total=total, enabled=progress) as bar:
            _TrialLoop(campaign, data, store, driver, directory, bar).run()
        return evaluate_chosen(campaign, data, store, directory)
    finally:
        driver.close()
        store.close()


def freeze_campaign(campaign: Campaign, directory: Path, source_text: str | None) -> None:
    """Write the resolved campaign, or refuse to resume one whose trials would differ."""
    frozen = directory / CAMPAIGN_FILE
    if frozen.exists():
        before = json.loads(frozen.read_text())
        changed = _changed_keys(before, campaign.resolved)
        if changed:
            raise CampaignError(
                f"{directory}: holds a different campaign; changed keys: {', '.join(changed)}. "
                "Use another --out folder, or restore the file."
            )
        return
    if source_text is not None:
        _write_atomically(directory / "campaign.toml", source_text)
    _write_atomically(frozen, json.dumps(campaign.resolved, indent=2))


def record_session(
    campaign: Campaign, directory: Path, *, data_fingerprint: str, command: str
) -> None:
    """Add this session (versions, devices, command) to the manifest; refuse changed data."""
    path = directory / MANIFEST_FILE
    manifest = (
        json.loads(path.read_text())
        if path.exists()
        else {
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
    _write_atomically(path, json.dumps(manifest, indent=2))


def _write_atomically(path: Path, text: str) -> None:
    """A kill mid-write leaves the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


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
    ) -> None:
        self.campaign, self.data, self.store, self.driver = campaign, data, store, driver
        self.directory, self.bar = directory, bar
        self.best: float | None = None

    def run(self) -> None:
        failures = 0
        while (proposal := self.driver.ask()) is not None:
            objective, status, failure = self.train(proposal)
            self.driver.tell(proposal, objective, status, failure)
            failures = failures + 1 if status == FAILED else 0
            if failures >= self.campaign.max_consecutive_failures:
                raise CampaignError(
                    f"{failures} configurations failed in a row "
                    f"(campaign.max_consecutive_failures); the last: {failure}"
                )

    def train(self, proposal: Proposal) -> tuple[float | None, str, str]:
        """The objective (mean over seeds), status and failure reason of one configuration."""
        c = self.campaign
        values = c.values(proposal.values)
        key = configuration_key(values)
        trial = self.store.trial_for(key, values)
        scores = []
        for i, seed in enumerate(c.seeds):
            run = self.store.run(trial, seed)
            if run is None or run.status not in FINISHED:
                self.store.start_run(trial, seed)
                self.bar.start_run(trial, seed, int(values["epochs"]))
                result = train_run(
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
                status, history, failure = result.status, result.history, result.failure
            else:
                status, history, failure = run.status, run.history, run.failure
            self.bar.finish_run()
            if status != COMPLETE:  # the configuration is failed or pruned: skip its other seeds
                self.bar.skip(len(c.seeds) - i - 1)
                return None, status, failure
            scores.append(
                summarize_history(history, c.objective, c.direction)[f"best_{c.objective}"]
            )
        objective = statistics.fmean(scores)
        self._note_best(objective)
        return objective, COMPLETE, ""

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
                weights_path=weights_path(directory, chosen, seed),
            )
            store.set_test(chosen, seed, test[seed])
    store.set_meta("chosen_trial", chosen)
    return {
        "trial": chosen,
        "values": {k: values[k] for k in campaign.space.params if k in values},
        "validation": {"mean": float(ranking.loc[0, "mean"]), "std": float(ranking.loc[0, "std"])},
        "test": test,
    }
