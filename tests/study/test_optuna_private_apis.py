"""The Optuna private APIs our driver uses (study/drivers/_optuna_private.py): each test fails
naming the API when an engine upgrade removes or changes it. No training: engines alone."""

import contextlib
import inspect

import optuna
import pytest
from optuna.trial import TrialState

from study.drivers._optuna_private import (
    close_storage,
    enqueued_values,
    pop_waiting_trial,
    replace_intermediate_value,
    write_trial_values,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def uses(api: str):
    """Fail naming `api` when what runs inside raises or finds it changed."""
    try:
        yield
    except Exception as error:  # an AttributeError, a TypeError, a failed assert
        pytest.fail(
            f"Optuna {optuna.__version__}: {api} is gone or changed ({error!r}); "
            "update study/drivers/_optuna_private.py",
            pytrace=False,
        )


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def storages(tmp_path):
    return {
        "sqlite": optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.sqlite'}"),
        "journal": optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))
        ),
    }


def test_a_waiting_trial_is_popped_once_as_a_running_trial():
    study = optuna.create_study()
    study.enqueue_trial({"x": 1.5})
    with uses("optuna.Study._pop_waiting_trial_id()"):
        assert parameters(optuna.Study._pop_waiting_trial_id) == ["self"]
    with uses("optuna.Trial(study, trial_id)"):
        assert parameters(optuna.Trial.__init__) == ["self", "study", "trial_id"]
    with uses("optuna.Study._pop_waiting_trial_id() and optuna.Trial(study, trial_id)"):
        trial = pop_waiting_trial(study)
        assert isinstance(trial, optuna.Trial)
        assert study.trials[0].state == TrialState.RUNNING
        assert trial.suggest_float("x", 0, 2) == 1.5  # the enqueued value
        assert pop_waiting_trial(study) is None


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_an_intermediate_value_reported_before_is_replaced(tmp_path, kind):
    storage = storages(tmp_path)[kind]
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.report(1.0, step=1)
    with uses("optuna.Trial._trial_id"):
        assert isinstance(trial._trial_id, int)
    with uses(f"{type(storage).__name__}.set_trial_intermediate_value(trial_id, step, value)"):
        assert parameters(storage.set_trial_intermediate_value) == [
            "trial_id",
            "step",
            "intermediate_value",
        ]
        replace_intermediate_value(storage, trial, 1, 2.0)
        replace_intermediate_value(storage, trial, 2, 3.0)
        study.tell(trial, 0.0)
        assert study.trials[0].intermediate_values == {1: 2.0, 2: 3.0}


def test_the_values_an_enqueued_trial_was_given_are_found_before_it_suggests_them():
    study = optuna.create_study()
    study.enqueue_trial({"x": 1.5})
    with uses('FrozenTrial.system_attrs["fixed_params"] (set by Study.enqueue_trial)'):
        assert enqueued_values(study.trials[0]) == {"x": 1.5}
        pop_waiting_trial(study)
        assert study.trials[0].params == {}
        assert enqueued_values(study.trials[0]) == {"x": 1.5}
    asked = study.ask()
    asked.suggest_float("y", 0, 1)
    assert enqueued_values(study.trials[1]) == study.trials[1].params


def test_closing_a_storage_closes_its_pooled_sqlite_connections(tmp_path):
    from study.drivers.optuna_driver import _sqlite_connection

    path = tmp_path / "optuna.sqlite"
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{path}", engine_kwargs={"creator": lambda: _sqlite_connection(path)}
    )
    study = optuna.create_study(storage=storage)
    study.tell(study.ask(), 1.0)
    assert (tmp_path / "optuna.sqlite-wal").exists()  # WAL mode, a connection still open
    with uses("RDBStorage.engine (a SQLAlchemy engine) and RDBStorage.remove_session()"):
        close_storage(storage)
        assert not (tmp_path / "optuna.sqlite-wal").exists()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_intermediate_values_and_user_attributes_are_written_at_once(tmp_path, kind):
    storage = storages(tmp_path)[kind]
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    trial.report(1.0, step=1)  # replaced
    apis = (
        "optuna.storages._rdb.storage._create_scoped_session, RDBStorage.scoped_session, "
        "RDBStorage.check_trial_is_updatable, RDBStorage._set_trial_attr_without_commit, "
        "optuna.storages._rdb.models (TrialModel, TrialIntermediateValueModel, "
        "TrialUserAttributeModel)"
    )
    with uses(apis):
        write_trial_values(
            storage, trial, {1: 2.0, 2: float("nan"), 3: float("inf")}, {"a": [1, None], "b": 2}
        )
        write_trial_values(storage, trial, {3: 4.0}, {"b": 3})
    study.tell(trial, 0.0)
    written = study.trials[0]
    assert written.intermediate_values[1] == 2.0 and written.intermediate_values[3] == 4.0
    assert list(written.intermediate_values) == [1, 2, 3]
    assert written.intermediate_values[2] != written.intermediate_values[2]  # NaN
    assert written.user_attrs == {"a": [1, None], "b": 3}
    with pytest.raises(RuntimeError):  # a finished trial takes no more values, as Optuna says
        write_trial_values(storage, trial, {4: 1.0}, {})
