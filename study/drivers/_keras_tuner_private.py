"""The KerasTuner internals the KerasTuner driver needs, where KerasTuner has no public API.

Each function names the private API it touches; tests/study/test_keras_tuner_private_apis.py
fails, naming the API, when a KerasTuner upgrade removes or changes one of them.
"""

from __future__ import annotations

from typing import Any

import grpc
from keras_tuner.src import protos
from keras_tuner.src.distribute.oracle_chief import OracleServicer
from keras_tuner.src.tuners.gridsearch import LinkedList


def grid_position(oracle: Any) -> dict[str, Any]:
    """Where a GridSearchOracle is in its grid, as JSON (its state leaves it out).
    Private: `GridSearchOracle._ordered_ids` (a `LinkedList`: `_memory`, `_next_index`,
    `_last_index`) and `GridSearchOracle._populate_next`."""
    ordered = oracle._ordered_ids
    return {
        "memory": ordered._memory,
        "next": [[k, v] for k, v in ordered._next_index.items()],
        "last": ordered._last_index,
        "populate_next": oracle._populate_next,
    }


def set_grid_position(oracle: Any, position: dict[str, Any]) -> None:
    """Put a GridSearchOracle back where `grid_position` found it.
    Private: `keras_tuner.src.tuners.gridsearch.LinkedList` (`_memory`, `_data_to_index`,
    `_next_index`, `_last_index`), `GridSearchOracle._ordered_ids` and `._populate_next`."""
    ordered = oracle._ordered_ids = LinkedList()
    ordered._memory = list(position["memory"])
    ordered._data_to_index = {data: i for i, data in enumerate(ordered._memory)}
    ordered._next_index.update({k: v for k, v in position["next"]})
    ordered._last_index = position["last"]
    oracle._populate_next = list(position["populate_next"])


def oracle_messages() -> Any:
    """The oracle service's request messages (`CreateTrialRequest`, `UpdateTrialRequest`,
    `EndTrialRequest`). Private: `keras_tuner.src.protos.get_service`."""
    return protos.get_service()


def oracle_stub(channel: grpc.Channel) -> Any:
    """A client stub of KerasTuner's chief oracle service on `channel`.
    Private: `keras_tuner.src.protos.get_service_grpc().OracleStub`."""
    return protos.get_service_grpc().OracleStub(channel)


def add_oracle_servicer(oracle: Any, server: grpc.Server) -> None:
    """Serve `oracle` on `server` as KerasTuner's chief does (`start_server`, which blocks).
    Private: `keras_tuner.src.distribute.oracle_chief.OracleServicer` and
    `keras_tuner.src.protos.get_service_grpc().add_OracleServicer_to_server`."""
    protos.get_service_grpc().add_OracleServicer_to_server(OracleServicer(oracle), server)
