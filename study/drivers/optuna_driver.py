"""Optuna: grid (every point enqueued once), random, quasi-random (Halton), TPE; median and
Hyperband pruners.

Storage: the campaign's URL when it has one (PostgreSQL); else the journal file
DIR/optuna.journal when the folder has one (study.workers creates it: several processes share
it); else DIR/optuna.sqlite.

Several workers may share one study. The record store decides who is alive (study.store; this
driver keeps no heartbeat of its own): each trial records the store's id of the worker that runs
it, and a RUNNING trial whose worker the store says `is_gone` is failed and its configuration
enqueued again, once (a trial that names no worker yet: once it is older than the store's stale
time). Grid points are popped from the queue atomically, and a worker whose queue is empty waits
while other live workers still run trials (one of them may die and hand its point back).

What optuna-dashboard (or any Optuna client) shows of a campaign (`describe`, docs/engines.md):
the metric's name, each trial's per-epoch curve (intermediate values, the mean over its seeds),
our trial number, each seed's objective and curve as user attributes, and the chosen
configuration's test metrics as a study attribute. The Optuna internals used are in
`study.drivers._optuna_private`.
"""

from __future__ import annotations

import datetime
import math
import sqlite3
import statistics
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import Choice, Fixed, Float, Int, SearchSpace
from study.drivers._base import ConfigurationRecord, Driver, Proposal
from study.drivers._optuna_private import (
    close_storage,
    enqueued_values,
    pop_waiting_trial,
    write_trial_values,
)
from study.results import Status
from study.seeding import derive_seed
from study.store import is_remote

ENGINE_STORE = "optuna.sqlite"
JOURNAL_FILE = "optuna.journal"
WAIT_S = 1.0  # how often a worker with nothing to do looks for work handed back
WORKER = "worker"  # user attribute: the record store's id of the worker that runs the trial


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """The translator: each active parameter of `space` asked of an Optuna trial."""
    chosen: dict[str, Any] = {}
    for name, p in space.params.items():
        if not space.is_active(name, chosen):
            continue
        if isinstance(p, Fixed):
            chosen[name] = p.value
        elif isinstance(p, Float):
            chosen[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, Int):
            chosen[name] = trial.suggest_int(name, p.low, p.high, step=p.step, log=p.log)
        elif isinstance(p, Choice):
            chosen[name] = trial.suggest_categorical(name, list(p.values))
        else:
            raise TypeError(f"{name}: no Optuna translation for {type(p).__name__}")
    return chosen


def _quiet(function):
    """`function` (or class) without its ExperimentalWarning (QMCSampler, set_metric_names and
    retried_trial_number are public and stable in use, experimental in name)."""

    def call(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return function(*args, **kwargs)

    return call


def _sqlite_connection(path: Path) -> sqlite3.Connection:
    """A connection to DIR/optuna.sqlite in WAL mode with synchronous=NORMAL, as the record
    store's: a commit (one per intermediate value) does not wait for the disk, about 20 ms each
    on this project's VMs, and a killed process still loses nothing it committed."""
    connection = sqlite3.connect(path, timeout=60, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class OptunaDriver(Driver):
    def open(self) -> None:
        if self.liveness is None:
            raise TypeError("the Optuna driver needs the record store's liveness")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        c = self.campaign
        # Workers that share a study each draw their own sequence: with one seed they would all
        # propose the same configurations (QMC takes its point from the study's trial count).
        seed = c.seed
        if self.shared:
            seed = derive_seed(c.seed, f"sampler of worker {self.liveness.worker}", 0)
        samplers = {
            "grid": lambda: optuna.samplers.RandomSampler(seed=seed),  # grid points are enqueued
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
            "quasi-random": lambda: _quiet(optuna.samplers.QMCSampler)(
                qmc_type="halton", scramble=True, seed=c.seed, warn_independent_sampling=False
            ),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        }
        pruners = {
            "none": optuna.pruners.NopPruner,
            # Compares a configuration's first seed with the median of completed ones (their
            # mean over seeds, `describe`) at the same epoch, once 2 are done. Steps are epochs
            # from 1, so the warm-up of 1 step lets it stop a configuration from epoch 1 on.
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=c.max_epochs
            ),
        }
        self._mine: set[int] = set()  # numbers of the trials asked here and not yet told
        self.storage = self._open_storage()  # this driver's own reference to the study's storage
        self.study = optuna.create_study(
            study_name=c.name,
            storage=self.storage,
            sampler=samplers[c.strategy](),
            pruner=pruners[c.pruner](),
            direction=c.direction,
            load_if_exists=True,
        )
        self._describe_study()
        self._recover_stale()
        if c.strategy == "grid":
            self._enqueue_grid()

    def _enqueue_grid(self) -> None:
        """Enqueue each grid point the study does not hold yet. `skip_if_exists` reads every
        trial for each point (quadratic: 0.3 s for 16 points on SQLite); a new study in the
        folder's own SQLite file, which no other worker shares, holds none."""
        local = isinstance(self.storage, optuna.storages.RDBStorage) and not is_remote(
            self.campaign.storage
        )
        new = local and not self.shared and not self.study.get_trials(deepcopy=False)
        for values in self.campaign.space.grid():
            self.study.enqueue_trial(values, skip_if_exists=not new)

    def _open_storage(self) -> optuna.storages.BaseStorage:
        url = self.campaign.storage
        if is_remote(url):  # the only storage URL a campaign takes (study.store.check_storage)
            return optuna.storages.RDBStorage(url)
        journal = self.directory / JOURNAL_FILE
        if journal.exists():
            return optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(journal))
            )
        path = self.directory / ENGINE_STORE
        # The schema check reads Optuna's 30 migration scripts (about 0.1 s); a file this Optuna
        # creates has its schema.
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}",
            engine_kwargs={"creator": lambda: _sqlite_connection(path)},
            skip_compatibility_check=not path.exists(),
        )

    def _describe_study(self) -> None:
        """Name the metric and say once, in the study's user attributes, what the values, the
        intermediate values and the trials' user attributes mean (docs/engines.md)."""
        c = self.campaign
        _quiet(self.study.set_metric_names)([c.objective])
        curve = f"{c.objective} after epoch e, the mean over the seeds trained to epoch e"
        if c.pruner != "none":
            curve += "; while the first seed trains, that seed's value (the pruner decides on it)"
        about = {
            "value": f"mean over seeds of each seed's best-epoch {c.objective} ({c.direction})",
            "intermediate_values": f"step e: {curve}",
            "user_attrs": "study_trial: the configuration's trial number in the study's records "
            "(from 1; Optuna numbers trials from 0, and may run a configuration twice); "
            f"seed_objectives: per seed, its best-epoch {c.objective}; seed_objective_std: their "
            "standard deviation; seed_curves: per seed, its curve; worker: the record store's id "
            "of the worker that ran it; failure: why it failed; retry_of: the Optuna trial it "
            "retries (its worker was gone)",
        }
        before = self.study.user_attrs
        for key, text in about.items():
            if before.get(key) != text:
                self.study.set_user_attr(key, text)

    def _recover_stale(self) -> None:
        """Hand the trials of gone workers (as the record store says) back: their
        configurations enqueued again, then the trials failed.

        In that order, so that a process killed between the two steps leaves a trial still
        RUNNING that the next one recovers again (once failed, nothing would retry it), and a
        trial is retried once: a retry is enqueued only if none exists (two workers that race here
        may both enqueue one; `_take` discards the later)."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
        for trial in trials:
            if trial.state != TrialState.RUNNING or trial.number in self._mine:
                continue
            if not self._is_abandoned(trial):
                continue
            values = enqueued_values(trial)
            if values and trial.number not in retried:
                self.study.enqueue_trial(values, user_attrs={"retry_of": trial.number})
            try:
                self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker finished it between the two reads

    def ask(self) -> Proposal | None:
        while True:
            trial = self._take()
            if trial is None:
                return None
            if not self._is_second_retry(trial):
                break
            self.study.tell(trial, state=TrialState.FAIL)  # another worker retries its original
        trial.set_user_attr(WORKER, self.liveness.worker)
        self._mine.add(trial.number)
        return Proposal(values=suggest(trial, self.campaign.space), handle=trial)

    def _take(self) -> optuna.Trial | None:
        """A new trial to run: the next grid point, or one the sampler proposes (an enqueued
        retry first); None when the campaign's budget is spent."""
        if self.campaign.strategy == "grid":
            return self._pop_grid_point()
        trials = self.study.get_trials(deepcopy=False)
        started = sum(t.state != TrialState.WAITING for t in trials)
        retries = sum(_is_retry(t) for t in trials)
        if started >= self.campaign.max_trials + retries:
            return None
        return self.study.ask()

    def _is_second_retry(self, trial: optuna.Trial) -> bool:
        """Whether `trial` retries a trial that an earlier-numbered trial already retries."""
        original = trial.user_attrs.get("retry_of")
        if original is None:
            return False
        return any(
            t.user_attrs.get("retry_of") == original and t.number < trial.number
            for t in self.study.get_trials(deepcopy=False)
        )

    def _pop_grid_point(self) -> optuna.Trial | None:
        """The next enqueued grid point, taken atomically (Study.ask would sample a point of its
        own when another worker empties the queue first); waits while other workers run."""
        while True:
            trial = pop_waiting_trial(self.study)
            if trial is not None:
                return trial
            if self._mine:
                return None  # this worker's own proposals are to be told first
            self._recover_stale()
            states = {t.state for t in self.study.get_trials(deepcopy=False)}
            if TrialState.WAITING in states:
                continue
            if TrialState.RUNNING not in states:
                return None
            time.sleep(WAIT_S)

    def should_prune(self, proposal: Proposal, epoch: int, value: float) -> bool:
        if self.campaign.pruner == "none":
            return False
        proposal.handle.report(value, step=epoch)
        return proposal.handle.should_prune()

    def describe(self, proposal: Proposal, record: ConfigurationRecord) -> None:
        """The configuration's curve as the trial's intermediate values (step = epoch: the mean
        over the seeds trained to that epoch), and our trial number, each seed's objective and
        curve, and their spread as its user attributes."""
        # In one transaction of a few statements (study.drivers._optuna_private): a call per
        # value and attribute cost about 60 ms a configuration on SQLite. A step's value
        # replaces the first seed's, reported for the pruner.
        curve = enumerate(_mean_curve(record.curves.values()), start=1)
        attrs = {
            "study_trial": proposal.trial,
            "seed_objectives": record.objectives,
            "seed_objective_std": _spread(record.objectives.values()),
            "seed_curves": record.curves,
        }
        write_trial_values(
            self.storage,
            proposal.handle,
            {step: float(value) for step, value in curve},
            {key: _json(value) for key, value in attrs.items()},
        )

    def close(self) -> None:
        if hasattr(self, "storage"):
            close_storage(self.storage)

    def describe_chosen(self, chosen: Mapping[str, Any]) -> None:
        """The chosen configuration (with its test metrics) as the study's user attribute
        "chosen", naming its Optuna trials: a finished trial takes no more attributes."""
        numbers = [
            t.number
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("study_trial") == chosen["trial"]
        ]
        self.study.set_user_attr("chosen", _json({**chosen, "optuna_trials": numbers}))

    def tell(
        self, proposal: Proposal, objective: float | None, status: str, failure: str = ""
    ) -> None:
        trial = proposal.handle
        self._mine.discard(trial.number)
        if failure:
            trial.set_user_attr("failure", failure)
        if status == Status.COMPLETE and objective is not None:
            self.study.tell(trial, objective)
        elif status == Status.PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def _is_abandoned(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether a RUNNING trial's worker is gone (the record store decides). A trial that
        names no worker yet was just taken by one (it names itself right after): abandoned
        only once that is older than the store's stale time."""
        worker = trial.user_attrs.get(WORKER)
        if worker is not None:
            return self.liveness.is_gone(worker)
        started = trial.datetime_start
        age = datetime.datetime.now(started.tzinfo) - started if started else None
        return age is None or age.total_seconds() > self.liveness.stale_after_s


def _is_retry(trial: optuna.trial.FrozenTrial) -> bool:
    # or a retry that Optuna's heartbeat callback made (studies of earlier versions)
    retried = _quiet(optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number)
    return "retry_of" in trial.user_attrs or retried(trial) is not None


def _mean_curve(curves: Iterable[list[float]]) -> list[float]:
    """Per epoch, the mean over the curves that reach it (NaN when one of them is NaN)."""
    curves = list(curves)
    length = max(map(len, curves), default=0)
    return [statistics.fmean(c[e] for c in curves if e < len(c)) for e in range(length)]


def _spread(values: Iterable[float]) -> float | None:
    """The standard deviation of `values` (as the records' `std`: over n - 1), None unless there
    are two or more and all are finite."""
    values = list(values)
    usable = len(values) > 1 and all(map(math.isfinite, values))
    return statistics.stdev(values) if usable else None


def _json(value: Any) -> Any:
    """`value` as strict JSON takes it (what optuna-dashboard reads): mapping keys as strings,
    non-finite numbers as None."""
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
