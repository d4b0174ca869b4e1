"""KerasTuner: grid, random, Bayesian optimization and Hyperband, through its Oracle alone.

The Oracle decides what to try; our trial loop trains it (KerasTuner's Tuner would keep only the
best epoch's metrics). The Oracle's state lives in DIR/keras_tuner/; a trial left running by a
killed process is sent for retry when the Oracle reloads.

The folder is a KerasTuner project: a KerasTuner `BaseTuner` places the Oracle in it, reloads it
and writes its tuner file (tuner0.json), so a KerasTuner user's own Tuner (`RandomSearch(...,
directory=DIR, project_name="keras_tuner", overwrite=False)`) reloads every trial. Each trial's
score is the configuration's objective (mean over its seeds); its `study_trial` metric and, in
`results_summary()`, its message give the configuration's trial number in our records.

Parallel workers use KerasTuner's chief/worker mode: the launching process serves its Oracle over
gRPC (`serve`), and each worker's driver, given a `Chief`, asks it through `_ChiefClient`.
KerasTuner internals used are in `study.drivers._keras_tuner_private`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import keras_tuner as kt

from search_spaces import Bool, Choice, Fixed, Float, Int, SearchSpace
from study.drivers import _keras_tuner_private as private
from study.drivers._base import Chief, Driver, Proposal
from study.results import Status

ENGINE_DIR = "keras_tuner"
_TUNER_ID = "study"
STUDY_TRIAL = "study_trial"  # the metric that holds a trial's number in our records
TUNER_FILE = "tuner0.json"  # KerasTuner's tuner file (BaseTuner: KERASTUNER_TUNER_ID, else tuner0)
IDLE_POLL_S = 0.5  # how often a worker asks again when the chief's oracle has nothing yet
CHIEF_TIMEOUT_S = 300.0  # a worker gives up on a chief that stopped answering


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
        # KerasTuner reads a step with log sampling as a factor (and wants it > 1): none here.
        step = None if p.log else p.step
        hp.Int(name, p.low, p.high, step=step, sampling="log" if p.log else "linear")
    elif isinstance(p, Bool):
        hp.Boolean(name)
    elif isinstance(p, Choice):
        hp.Choice(name, list(p.values), ordered=False)
    else:
        raise TypeError(f"{name}: no KerasTuner translation for {type(p).__name__}")


def oracle_seed(seed: int) -> int:
    """The Oracle's seed for `campaign.seed`: seed + 1, since KerasTuner reads a seed of 0 as
    none (`Oracle.__init__`: `seed or random.randint(1, 10000)`). One to one, and at most 2**31
    (campaign.seed < 2**31): within numpy's `RandomState` and scikit-learn's `random_state`
    (Bayesian optimization), which take seeds below 2**32. A reloaded Oracle keeps its saved seed.
    """
    return seed + 1


class _ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle does not save where it is in the grid (its linked list of tried
    trials and its queue), so a reloaded one fails with a KeyError: save both with its state."""

    def get_state(self) -> dict[str, Any]:
        return super().get_state() | {"grid_position": private.grid_position(self)}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        private.set_grid_position(self, state["grid_position"])

    def end_trial(self, trial: Any) -> None:
        super().end_trial(trial)
        self.save()  # the parent queues the trial after saving: save the queue too


class _ChiefClient:
    """The calls of KerasTuner's OracleClient the driver makes, given the chief's address and
    the tuner id instead of reading them from environment variables, with a deadline on each."""

    def __init__(self, chief: Chief, timeout_s: float = CHIEF_TIMEOUT_S) -> None:
        self._protos = private.oracle_messages()
        self._channel = grpc.insecure_channel(f"{chief.host}:{chief.port}")
        self.stub = private.oracle_stub(self._channel)
        self.tuner_id = chief.tuner_id
        self.timeout_s = timeout_s

    def create_trial(self, tuner_id: str) -> Any:
        request = self._protos.CreateTrialRequest(tuner_id=tuner_id)
        response = self.stub.CreateTrial(request, wait_for_ready=True, timeout=self.timeout_s)
        return kt.engine.trial.Trial.from_proto(response.trial)

    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0) -> None:
        request = self._protos.UpdateTrialRequest(trial_id=trial_id, metrics=metrics, step=step)
        self.stub.UpdateTrial(request, wait_for_ready=True, timeout=self.timeout_s)

    def end_trial(self, trial: Any) -> None:
        request = self._protos.EndTrialRequest(trial=trial.to_proto())
        self.stub.EndTrial(request, wait_for_ready=True, timeout=self.timeout_s)

    def close(self) -> None:
        self._channel.close()


class KerasTunerDriver(Driver):
    """Without `chief`, the Oracle lives in this process (and may be served to workers with
    `serve`); with it, the Oracle is the chief's, asked over gRPC."""

    _server: Any = None

    def open(self) -> None:
        self._waiting: dict[str, Any] = {}  # tuner id -> trial asked for and not yet told
        if self.chief is not None:
            self.oracle = _ChiefClient(self.chief)
            return
        c = self.campaign
        objective = kt.Objective(c.objective, "max" if c.direction == "maximize" else "min")
        common = dict(
            objective=objective,
            hyperparameters=to_hyperparameters(c.space),
            seed=oracle_seed(c.seed),
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
        self.oracle = oracle
        _keep_in_project(oracle, self.directory)

    def serve(self, host: str) -> int:
        """Serve this process's Oracle to workers over gRPC, in a background thread, until
        `close`; returns the port. (KerasTuner's own `start_server` blocks until the search
        ends.) One server thread: the Oracle's calls run one at a time."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        private.add_oracle_servicer(self.oracle, server)
        port = server.add_insecure_port(f"{host}:0")
        server.start()
        self._server = server
        return port

    def close(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        if not hasattr(self, "oracle"):
            return
        if self.chief is not None:
            self.oracle.close()
        else:  # Oracle.end_trial saves before it drops the trial from ongoing_trials
            self._label_trials()
            self.oracle.save()

    def save_models(self, data: Any, store: Any) -> None:
        """Each completed trial's checkpoint, which KerasTuner's `get_best_models` loads with
        the HyperModel of `study.keras_tuner_hypermodel(DIR)`."""
        from study.models import write_keras_tuner_checkpoints

        write_keras_tuner_checkpoints(self.campaign, data, store, self.directory)

    def _label_trials(self) -> None:
        """Give each completed trial our trial number as its message, which KerasTuner's
        `results_summary()` prints (a worker's message does not cross KerasTuner's gRPC; its
        `study_trial` metric does)."""
        for trial in self.oracle.trials.values():
            if trial.message is None and trial.metrics.exists(STUDY_TRIAL):
                number = int(trial.metrics.get_last_value(STUDY_TRIAL))
                trial.message = _label(number, weights=True)
                folder = os.path.join(self.directory, ENGINE_DIR, f"trial_{trial.trial_id}")
                trial.save(os.path.join(folder, "trial.json"))  # where Oracle.reload reads it

    def ask(self) -> Proposal | None:
        # The oracle hands one trial per tuner id: a free id per proposal lets several be asked
        # for before they are told. A worker asks under its chief-given id, then id-1, id-2...
        if self.chief is None:
            busy, base = set(self.oracle.ongoing_trials), _TUNER_ID
            ids = (f"{base}-{i}" for i in itertools.count())
        else:
            busy, base = set(self._waiting), self.chief.tuner_id
            ids = (base if i == 0 else f"{base}-{i}" for i in itertools.count())
        tuner_id = next(i for i in ids if i not in busy)
        trial = self.oracle.create_trial(tuner_id)
        while (
            self.chief is not None
            and not self._waiting
            and trial.status == kt.engine.trial.TrialStatus.IDLE
        ):  # the other workers' trials must be told first: wait for them
            time.sleep(IDLE_POLL_S)
            trial = self.oracle.create_trial(tuner_id)
        if trial.status != kt.engine.trial.TrialStatus.RUNNING:  # STOPPED, or IDLE until a tell
            return None
        self._waiting[tuner_id] = trial
        raw = trial.hyperparameters.values
        values = searched_values(raw, self.campaign.space)
        if "tuner/epochs" in raw:  # Hyperband's budget for this trial, trained from scratch
            values["epochs"] = int(raw["tuner/epochs"])
        return Proposal(values=values, handle=trial)

    def tell(
        self, proposal: Proposal, objective: float | None, status: str, failure: str = ""
    ) -> None:
        trial = proposal.handle
        self._waiting = {k: t for k, t in self._waiting.items() if t is not trial}
        if status == Status.COMPLETE and objective is not None:
            metrics = {self.campaign.objective: objective}
            if proposal.trial is not None:
                metrics[STUDY_TRIAL] = proposal.trial
            self.oracle.update_trial(trial.trial_id, metrics)
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
        else:
            trial.status = kt.engine.trial.TrialStatus.FAILED
            trial.message = failure or status
            if proposal.trial is not None:
                trial.message = f"{_label(proposal.trial)}: {trial.message}"
        self.oracle.end_trial(trial)


def searched_values(raw: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """A KerasTuner trial's values of the searched keys that are active (KerasTuner also holds
    inactive conditional ones, and Hyperband's `tuner/...` keys)."""
    values: dict[str, Any] = {}
    for name in space.params:
        if name in raw and space.is_active(name, values):
            values[name] = raw[name]
    return values


def trial_numbers(directory: os.PathLike) -> dict[str, int]:
    """Each completed KerasTuner trial's id in DIR/keras_tuner/, and its trial number in our
    records (its `study_trial` metric), read from the trial files."""
    numbers = {}
    for path in sorted(Path(directory, ENGINE_DIR).glob("trial_*/trial.json")):
        trial = kt.engine.trial.Trial.load(str(path))
        if trial.status == kt.engine.trial.TrialStatus.COMPLETED and trial.metrics.exists(
            STUDY_TRIAL
        ):
            numbers[trial.trial_id] = int(trial.metrics.get_last_value(STUDY_TRIAL))
    return numbers


def _label(number: int, *, weights: bool = False) -> str:
    """A trial's message in KerasTuner: our trial number (and where its weights are)."""
    where = f"; its best-epoch weights: weights/trial-{number}-seed-<seed>.npz" if weights else ""
    return f"study trial {number}{where}"


def _keep_in_project(oracle: kt.Oracle, directory: os.PathLike) -> None:
    """Keep `oracle` in DIR/keras_tuner/ as a KerasTuner Tuner does, through a BaseTuner (which
    trains nothing): it places the oracle there, and reloads the oracle's state when its tuner
    file (tuner0.json) exists. Else the tuner file is written (`BaseTuner.save`, with the
    oracle's state), after reloading the oracle's state of a folder started by an earlier
    version (which wrote no tuner file)."""
    project = os.path.join(directory, ENGINE_DIR)
    had_tuner_file = os.path.exists(os.path.join(project, TUNER_FILE))
    with contextlib.redirect_stdout(io.StringIO()):  # its "Reloading Tuner from ..."
        tuner = kt.engine.base_tuner.BaseTuner(
            oracle, directory=str(directory), project_name=ENGINE_DIR
        )
    if not had_tuner_file:
        if os.path.exists(os.path.join(project, "oracle.json")):
            oracle.reload()
        tuner.save()
