"""Optuna: grid (every point enqueued once), random, quasi-random (Halton), TPE; median and
Hyperband pruners. Storage: SQLite in the campaign folder unless a URL is given."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from search_spaces import Choice, Fixed, Float, Int, SearchSpace
from study.drivers._base import Driver, Proposal
from study.results import COMPLETE, PRUNED

ENGINE_STORE = "optuna.sqlite"


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
        self.study = optuna.create_study(
            study_name=c.name,
            storage=c.storage or f"sqlite:///{self.directory / ENGINE_STORE}",
            sampler=samplers[c.strategy](),
            pruner=pruners[c.pruner](),
            direction=c.direction,
            load_if_exists=True,
        )
        # Trials left RUNNING by a killed process: failed, and their configuration asked again.
        for stale in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(stale.number, state=TrialState.FAIL)
            self.study.enqueue_trial(stale.params, user_attrs={"retry_of": stale.number})
        if c.strategy == "grid":
            for values in c.space.grid():
                self.study.enqueue_trial(values, skip_if_exists=True)

    def ask(self) -> Proposal | None:
        trials = self.study.get_trials(deepcopy=False)
        if self.campaign.strategy == "grid":
            if not any(t.state == TrialState.WAITING for t in trials):
                return None
        else:
            finished = sum(t.state.is_finished() for t in trials)
            retries = sum("retry_of" in t.user_attrs for t in trials)
            if finished >= self.campaign.max_trials + retries:
                return None
        trial = self.study.ask()
        return Proposal(values=suggest(trial, self.campaign.space), handle=trial)

    def should_prune(self, proposal: Proposal, epoch: int, value: float) -> bool:
        if self.campaign.pruner == "none":
            return False
        proposal.handle.report(value, step=epoch)
        return proposal.handle.should_prune()

    def tell(
        self, proposal: Proposal, objective: float | None, status: str, failure: str = ""
    ) -> None:
        trial = proposal.handle
        if failure:
            trial.set_user_attr("failure", failure)
        if status == COMPLETE and objective is not None:
            self.study.tell(trial, objective)
        elif status == PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
