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
"""

from __future__ import annotations

import datetime
import time
import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import Choice, Fixed, Float, Int, SearchSpace
from study.drivers._base import Driver, Proposal
from study.results import Status
from study.store import is_remote

ENGINE_STORE = "optuna.sqlite"
JOURNAL_FILE = "optuna.journal"
WAIT_S = 1.0  # how often a worker with nothing to do looks for work handed back
_WORKER = "study:worker"  # system attribute: the worker that runs the trial


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


def _quiet(cls):
    """`cls` without its ExperimentalWarning (QMCSampler is stable in use, experimental in name)."""

    def make(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(*args, **kwargs)

    return make


class OptunaDriver(Driver):
    def open(self) -> None:
        if self.liveness is None:
            raise TypeError("the Optuna driver needs the record store's liveness")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        c = self.campaign
        samplers = {
            "grid": lambda: optuna.samplers.RandomSampler(seed=c.seed),  # grid points are enqueued
            "random": lambda: optuna.samplers.RandomSampler(seed=c.seed),
            "quasi-random": lambda: _quiet(optuna.samplers.QMCSampler)(
                qmc_type="halton", scramble=True, seed=c.seed, warn_independent_sampling=False
            ),
            "tpe": lambda: optuna.samplers.TPESampler(seed=c.seed),
        }
        pruners = {
            "none": optuna.pruners.NopPruner,
            # Compares a configuration's first seed with the median of earlier ones at the same
            # epoch, once 2 configurations are done, from epoch 2 on.
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(
                min_resource=1, max_resource=c.max_epochs
            ),
        }
        self._mine: set[int] = set()  # numbers of the trials asked here and not yet told
        self.study = optuna.create_study(
            study_name=c.name,
            storage=self._storage(),
            sampler=samplers[c.strategy](),
            pruner=pruners[c.pruner](),
            direction=c.direction,
            load_if_exists=True,
        )
        self._recover_stale()
        if c.strategy == "grid":
            for values in c.space.grid():
                self.study.enqueue_trial(values, skip_if_exists=True)

    def _storage(self) -> str | optuna.storages.BaseStorage:
        url = self.campaign.storage
        if is_remote(url):  # the only storage URL a campaign takes (study.store.check_storage)
            return url
        journal = self.directory / JOURNAL_FILE
        if journal.exists():
            return optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(journal))
            )
        return f"sqlite:///{self.directory / ENGINE_STORE}"

    def _recover_stale(self) -> None:
        """Hand the trials of gone workers (as the record store says) back: their
        configurations enqueued again, then the trials failed.

        In that order, so that a process killed between the two steps leaves a trial still
        RUNNING that the next one recovers again (once failed, nothing would retry it), and a
        trial is retried once: a retry is enqueued only if none exists (two workers that race here
        may both enqueue one; `_take` discards the later)."""
        storage = self.study._storage
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
        for trial in trials:
            if trial.state != TrialState.RUNNING or trial.number in self._mine:
                continue
            if not self._is_abandoned(trial):
                continue
            values = trial.system_attrs.get("fixed_params", trial.params)
            if values and trial.number not in retried:
                self.study.enqueue_trial(values, user_attrs={"retry_of": trial.number})
            try:
                storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it first

    def ask(self) -> Proposal | None:
        while True:
            trial = self._take()
            if trial is None:
                return None
            if not self._is_second_retry(trial):
                break
            self.study.tell(trial, state=TrialState.FAIL)  # another worker retries its original
        self.study._storage.set_trial_system_attr(trial._trial_id, _WORKER, self.liveness.worker)
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
            trial_id = self.study._pop_waiting_trial_id()
            if trial_id is not None:
                return optuna.Trial(self.study, trial_id)
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
        worker = trial.system_attrs.get(_WORKER)
        if worker is not None:
            return self.liveness.is_gone(worker)
        started = trial.datetime_start
        age = datetime.datetime.now(started.tzinfo) - started if started else None
        return age is None or age.total_seconds() > self.liveness.stale_after_s


def _is_retry(trial: optuna.trial.FrozenTrial) -> bool:
    # "failed_trial": a retry that Optuna's heartbeat callback made (studies of earlier versions)
    return "retry_of" in trial.user_attrs or "failed_trial" in trial.system_attrs
