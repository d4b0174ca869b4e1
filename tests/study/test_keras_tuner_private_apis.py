"""The KerasTuner internals study.drivers._keras_tuner_private uses: each test fails naming the
private API when a KerasTuner upgrade removes or changes it."""

import importlib
import inspect

import keras_tuner as kt
import pytest

from study.drivers import _keras_tuner_private as private

VERSION = f"KerasTuner {kt.__version__}"


def private_name(module: str, name: str):
    """`module.name`, or a failure that names it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{VERSION}: {module}.{name} is gone ({error}); update {private.__name__}")


def a_grid_oracle(directory, name: str = "kt") -> kt.oracles.GridSearchOracle:
    """A grid oracle over a = 1, 2, 3, placed in directory/name by a KerasTuner BaseTuner."""
    hp = kt.HyperParameters()
    hp.Choice("a", [1, 2, 3])
    oracle = kt.oracles.GridSearchOracle(objective=kt.Objective("score", "max"), hyperparameters=hp)
    kt.engine.base_tuner.BaseTuner(oracle, directory=str(directory), project_name=name)
    return oracle


def test_the_grid_oracle_keeps_its_position_in_a_linked_list(tmp_path):
    linked_list = private_name("keras_tuner.src.tuners.gridsearch", "LinkedList")
    fields = ("_memory", "_data_to_index", "_next_index", "_last_index")
    missing = [f for f in fields if not hasattr(linked_list(), f)]
    assert not missing, f"{VERSION}: LinkedList lost {missing}; update {private.__name__}"
    oracle = a_grid_oracle(tmp_path)
    for name in ("_ordered_ids", "_populate_next"):
        assert hasattr(oracle, name), f"{VERSION}: GridSearchOracle.{name} is gone"
    assert isinstance(oracle._ordered_ids, linked_list), (
        f"{VERSION}: GridSearchOracle._ordered_ids is no longer a LinkedList"
    )


def test_a_grid_position_put_back_goes_on_where_it_stopped(tmp_path):
    """grid_position and set_grid_position round-trip through JSON-like values: a restored
    oracle proposes what the original would next (KerasTuner's own state leaves this out)."""
    original, restored = a_grid_oracle(tmp_path, "original"), a_grid_oracle(tmp_path, "restored")
    first = original.create_trial("t0")
    original.update_trial(first.trial_id, {"score": 1.0})
    first.status = "COMPLETED"
    original.end_trial(first)
    restored.set_state(original.get_state())
    restored.trials = dict(original.trials)
    private.set_grid_position(restored, private.grid_position(original))
    values = [o.create_trial("t1").hyperparameters.values for o in (original, restored)]
    assert values[0] == values[1] == {"a": 2}, (
        f"{VERSION}: GridSearchOracle's grid position (_ordered_ids, _populate_next) changed"
    )


def test_the_oracle_service_and_its_messages():
    protos = private_name("keras_tuner.src", "protos")
    for name in ("get_service", "get_service_grpc"):
        assert hasattr(protos, name), f"{VERSION}: keras_tuner.src.protos.{name} is gone"
    messages = private.oracle_messages()
    fields = {
        "CreateTrialRequest": {"tuner_id"},
        "UpdateTrialRequest": {"trial_id", "metrics", "step"},
        "EndTrialRequest": {"trial"},
    }
    for message, names in fields.items():
        assert hasattr(messages, message), f"{VERSION}: protos.get_service().{message} is gone"
        have = set(getattr(messages, message).DESCRIPTOR.fields_by_name)
        assert names <= have, f"{VERSION}: protos.get_service().{message} lost {names - have}"
    service = protos.get_service_grpc()
    assert hasattr(service, "add_OracleServicer_to_server"), (
        f"{VERSION}: protos.get_service_grpc().add_OracleServicer_to_server is gone"
    )
    for call in ("CreateTrial", "UpdateTrial", "EndTrial"):
        assert hasattr(service.OracleServicer, call), f"{VERSION}: OracleServicer.{call} is gone"


def test_the_chief_servicer_serves_an_oracle():
    servicer = private_name("keras_tuner.src.distribute.oracle_chief", "OracleServicer")
    assert list(inspect.signature(servicer).parameters) == ["oracle"], (
        f"{VERSION}: keras_tuner.src.distribute.oracle_chief.OracleServicer(oracle) changed"
    )


def test_a_served_oracle_answers_a_client(tmp_path):
    """The whole private path, end to end: serve an oracle, ask it through the stub."""
    from concurrent import futures

    import grpc

    oracle = a_grid_oracle(tmp_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    private.add_oracle_servicer(oracle, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = private.oracle_stub(channel)
            request = private.oracle_messages().CreateTrialRequest(tuner_id="t0")
            response = stub.CreateTrial(request, timeout=30)
            trial = kt.engine.trial.Trial.from_proto(response.trial)
    finally:
        server.stop(grace=None).wait()
    assert trial.status == "RUNNING" and trial.hyperparameters.values == {"a": 1}
