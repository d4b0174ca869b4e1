"""The Optuna internals the Optuna driver cannot do without: nothing public does these. Each
function names the private API it touches; tests/study/test_optuna_private_apis.py fails,
naming it, when an Optuna upgrade removes or changes one."""

from __future__ import annotations

from typing import Any

import optuna


def pop_waiting_trial(study: optuna.Study) -> optuna.Trial | None:
    """The next enqueued (WAITING) trial, set RUNNING atomically, or None when none waits.

    Touches `Study._pop_waiting_trial_id()` and the `optuna.Trial(study, trial_id)` constructor:
    the public `Study.ask()` pops the same way but samples a trial of its own when another
    worker empties the queue first (a grid point would be invented)."""
    trial_id = study._pop_waiting_trial_id()
    return None if trial_id is None else optuna.Trial(study, trial_id)


def replace_intermediate_value(
    storage: optuna.storages.BaseStorage, trial: optuna.Trial, step: int, value: float
) -> None:
    """Set a RUNNING trial's intermediate value at `step`, replacing one reported before.

    Touches `Trial._trial_id` and `BaseStorage.set_trial_intermediate_value` (documented, but
    "not supposed to be directly accessed by library users"): the public `Trial.report` keeps
    the first value reported at a step and ignores later ones."""
    storage.set_trial_intermediate_value(trial._trial_id, step, value)


def enqueued_values(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The values `Study.enqueue_trial` gave a trial, else its suggested params: a trial popped
    from the queue has no params until its values are suggested.

    Touches the system attribute "fixed_params", where `Study.enqueue_trial` keeps them."""
    return trial.system_attrs.get("fixed_params", trial.params)


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close an RDB storage's pooled connections (so that SQLite checkpoints its WAL file into
    the database and removes it, as at process exit).

    Touches `RDBStorage.engine`, the SQLAlchemy engine (no underscore, but not documented):
    `RDBStorage.remove_session` returns the connection to the pool, which keeps it open."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.remove_session()
        storage.engine.dispose()


def write_trial_values(
    storage: optuna.storages.BaseStorage,
    trial: optuna.Trial,
    intermediate_values: dict[int, float],
    user_attrs: dict[str, Any],
) -> None:
    """Set a RUNNING trial's intermediate values (replacing any reported before at a step) and
    user attributes. On an RDB storage in one transaction of a few statements (one call each
    runs three statements and a commit per value: about 60 ms for a 10-epoch curve on SQLite),
    else one call each.

    Touches `Trial._trial_id`, `optuna.storages._rdb.storage._create_scoped_session`,
    `RDBStorage.scoped_session`, `RDBStorage.check_trial_is_updatable`,
    `RDBStorage._set_trial_attr_without_commit` and the models `TrialModel`,
    `TrialIntermediateValueModel` (its columns and `intermediate_value_to_stored_repr`) and
    `TrialUserAttributeModel` of `optuna.storages._rdb.models`: what
    `set_trial_intermediate_value` and `set_trial_user_attr` do, a transaction each."""
    if not isinstance(storage, optuna.storages.RDBStorage):
        for step, value in intermediate_values.items():
            replace_intermediate_value(storage, trial, step, value)
        for key, value in user_attrs.items():
            trial.set_user_attr(key, value)
        return
    import sqlalchemy as sa
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial_id, values = trial._trial_id, models.TrialIntermediateValueModel
    rows = [
        dict(
            zip(
                ("intermediate_value", "intermediate_value_type"),
                values.intermediate_value_to_stored_repr(value),
                strict=True,
            ),
            trial_id=trial_id,
            step=step,
        )
        for step, value in intermediate_values.items()
    ]
    with _create_scoped_session(storage.scoped_session, True) as session:
        state = models.TrialModel.find_or_raise_by_id(trial_id, session).state
        storage.check_trial_is_updatable(trial_id, state)
        if rows:
            steps = values.step.in_(list(intermediate_values))
            session.execute(sa.delete(values).where(values.trial_id == trial_id, steps))
            session.execute(sa.insert(values), rows)
        for key, value in user_attrs.items():
            storage._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial_id, key, value
            )
