"""KerasTuner: grid, random, Bayesian optimization and Hyperband, through its Oracle alone.

The Oracle decides what to try; our trial loop trains it (KerasTuner's Tuner would keep only the
best epoch's metrics). The Oracle's state lives in DIR/keras_tuner/; a trial left running by a
killed process is sent for retry when the Oracle reloads.
"""

from __future__ import annotations

import os
from typing import Any

import keras_tuner as kt
from keras_tuner.src.tuners.gridsearch import LinkedList

from search_spaces import Bool, Choice, Fixed, Float, Int, SearchSpace
from study.drivers._base import Driver, Proposal
from study.results import COMPLETE

ENGINE_DIR = "keras_tuner"
_TUNER_ID = "study"


def to_hyperparameters(space: SearchSpace) -> kt.HyperParameters:
    """The translator: `space` as KerasTuner hyperparameters, conditions as conditional scopes."""
    hp = kt.HyperParameters()
    for name, p in space.params.items():
        if p.condition is None:
            _declare(hp, name, p)
        else:
            with hp.conditional_scope(p.condition.parent, list(p.condition.values)):
                _declare(hp, name, p)
    return hp


def _declare(hp: kt.HyperParameters, name: str, p: Any) -> None:
    if isinstance(p, Fixed):
        hp.Fixed(name, p.value)
    elif isinstance(p, Float):
        hp.Float(name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear")
    elif isinstance(p, Int):
        hp.Int(name, p.low, p.high, step=p.step, sampling="log" if p.log else "linear")
    elif isinstance(p, Bool):
        hp.Boolean(name)
    elif isinstance(p, Choice):
        hp.Choice(name, list(p.values), ordered=False)
    else:
        raise TypeError(f"{name}: no KerasTuner translation for {type(p).__name__}")


class _ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle does not save where it is in the grid (its linked list of tried
    trials and its queue), so a reloaded one fails with a KeyError: save both with its state."""

    def get_state(self) -> dict[str, Any]:
        ordered = self._ordered_ids
        return super().get_state() | {
            "grid_position": {
                "memory": ordered._memory,
                "next": [[k, v] for k, v in ordered._next_index.items()],
                "last": ordered._last_index,
                "populate_next": self._populate_next,
            }
        }

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        position = state["grid_position"]
        ordered = self._ordered_ids = LinkedList()
        ordered._memory = list(position["memory"])
        ordered._data_to_index = {data: i for i, data in enumerate(ordered._memory)}
        ordered._next_index.update({k: v for k, v in position["next"]})
        ordered._last_index = position["last"]
        self._populate_next = list(position["populate_next"])

    def end_trial(self, trial: Any) -> None:
        super().end_trial(trial)
        self.save()  # the parent queues the trial after saving: save the queue too


class KerasTunerDriver(Driver):
    def open(self) -> None:
        c = self.campaign
        objective = kt.Objective(c.objective, "max" if c.direction == "maximize" else "min")
        common = dict(
            objective=objective,
            hyperparameters=to_hyperparameters(c.space),
            seed=c.seed,
            # Our trial loop counts failures (campaign.max_consecutive_failures).
            max_consecutive_failed_trials=10**9,
        )
        if c.strategy == "grid":
            oracle = _ResumableGridSearchOracle(max_trials=None, **common)
        elif c.strategy == "random":
            oracle = kt.oracles.RandomSearchOracle(max_trials=c.max_trials, **common)
        elif c.strategy == "bayesian":
            oracle = kt.oracles.BayesianOptimizationOracle(max_trials=c.max_trials, **common)
        else:
            oracle = kt.oracles.HyperbandOracle(max_epochs=int(c.fixed["epochs"]), **common)
        oracle.verbose = 0
        oracle._set_project_dir(str(self.directory), ENGINE_DIR)  # the Tuner's way to place it
        if os.path.exists(os.path.join(self.directory, ENGINE_DIR, "oracle.json")):
            oracle.reload()
        self.oracle = oracle

    def ask(self) -> Proposal | None:
        # The oracle hands one trial per tuner id: a free id per proposal lets several be asked
        # for before they are told.
        busy = set(self.oracle.ongoing_trials)
        tuner_id = next(
            f"{_TUNER_ID}-{i}" for i in range(len(busy) + 1) if f"{_TUNER_ID}-{i}" not in busy
        )
        trial = self.oracle.create_trial(tuner_id)
        if trial.status != kt.engine.trial.TrialStatus.RUNNING:  # STOPPED, or IDLE until a tell
            return None
        raw = trial.hyperparameters.values
        values: dict[str, Any] = {}
        for name in self.campaign.space.params:
            if name in raw and self.campaign.space.is_active(name, values):
                values[name] = raw[name]
        if "tuner/epochs" in raw:  # Hyperband's budget for this trial, trained from scratch
            values["epochs"] = int(raw["tuner/epochs"])
        return Proposal(values=values, handle=trial)

    def tell(
        self, proposal: Proposal, objective: float | None, status: str, failure: str = ""
    ) -> None:
        trial = proposal.handle
        if status == COMPLETE and objective is not None:
            self.oracle.update_trial(trial.trial_id, {self.campaign.objective: objective})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
        else:
            trial.status = kt.engine.trial.TrialStatus.FAILED
            trial.message = failure or status
        self.oracle.end_trial(trial)
