"""KerasTuner: grid, random, Bayesian optimization and Hyperband, through its Oracle alone.

The Oracle decides what to try; our trial loop trains it (KerasTuner's Tuner would keep only the
best epoch's metrics). The Oracle's state lives in DIR/keras_tuner/; a trial left running by a
killed process is sent for retry when the Oracle reloads.

Parallel workers use KerasTuner's chief/worker mode: the launching process serves its Oracle over
gRPC (`serve`), and each worker's driver, given a `Chief`, asks it through an OracleClient.
"""

from __future__ import annotations

import itertools
import os
import time
from concurrent import futures
from typing import Any

import grpc
import keras_tuner as kt
from keras_tuner.src import protos
from keras_tuner.src.distribute.oracle_chief import OracleServicer
from keras_tuner.src.distribute.oracle_client import OracleClient
from keras_tuner.src.tuners.gridsearch import LinkedList

from search_spaces import Bool, Choice, Fixed, Float, Int, SearchSpace
from study.drivers._base import Chief, Driver, Proposal
from study.results import Status

ENGINE_DIR = "keras_tuner"
_TUNER_ID = "study"
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


class _ChiefClient(OracleClient):
    """KerasTuner's OracleClient, given the chief's address and the tuner id instead of reading
    them from environment variables, with a deadline on each call."""

    def __init__(self, chief: Chief, timeout_s: float = CHIEF_TIMEOUT_S) -> None:
        self._oracle = None
        self._protos = protos.get_service()
        self._channel = grpc.insecure_channel(f"{chief.host}:{chief.port}")
        self.stub = protos.get_service_grpc().OracleStub(self._channel)
        self.tuner_id = chief.tuner_id
        self.timeout_s = timeout_s
        self.multi_worker, self.should_report = False, True

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
        oracle._set_project_dir(str(self.directory), ENGINE_DIR)  # the Tuner's way to place it
        if os.path.exists(os.path.join(self.directory, ENGINE_DIR, "oracle.json")):
            oracle.reload()
        self.oracle = oracle

    def serve(self, host: str) -> int:
        """Serve this process's Oracle to workers over gRPC, in a background thread, until
        `close`; returns the port. (KerasTuner's own `start_server` blocks until the search
        ends.) One server thread: the Oracle's calls run one at a time."""
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(self.oracle), server)
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
            self.oracle.save()

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
        self._waiting = {k: t for k, t in self._waiting.items() if t is not trial}
        if status == Status.COMPLETE and objective is not None:
            self.oracle.update_trial(trial.trial_id, {self.campaign.objective: objective})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
        else:
            trial.status = kt.engine.trial.TrialStatus.FAILED
            trial.message = failure or status
        self.oracle.end_trial(trial)
