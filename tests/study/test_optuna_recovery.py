"""The Optuna driver hands a dead worker's trial back exactly once, even when the process that
hands it back is itself killed half-way (no training: the driver alone, on its SQLite file)."""

import optuna
import pytest

from study.config import parse_campaign
from study.drivers.optuna_driver import _WORKER, OptunaDriver
from study.results import COMPLETE
from tests.conftest import tiny_campaign

DEAD = "deadhost:1:dead"  # another host's worker: never stale by pid, so a test marks it stale


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


@pytest.fixture
def campaign():
    raw = tiny_campaign()
    raw["space"] = {"dropout": [0.0, 0.5]}
    return parse_campaign(raw)


def opened(campaign, directory):
    driver = OptunaDriver(campaign, directory)
    driver.open()
    return driver


def all_proposals(driver):
    """Ask and tell until the engine is done; the values told, in order."""
    told = []
    while (proposal := driver.ask()) is not None:
        told.append(proposal.values["dropout"])
        driver.tell(proposal, 0.5, COMPLETE)
    return told


def abandon_one(campaign, directory, monkeypatch):
    """A worker takes the first grid point and dies while training it."""
    driver = opened(campaign, directory)
    proposal = driver.ask()
    trial = proposal.handle
    driver.study._storage.set_trial_system_attr(trial._trial_id, _WORKER, DEAD)
    driver._mine.clear()  # it died: its heartbeat is no one's
    monkeypatch.setattr(
        "study.drivers.optuna_driver.is_stale_worker", lambda worker: worker == DEAD
    )
    return proposal.values["dropout"]


def states(directory):
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{directory / 'optuna.sqlite'}")
    return [
        (t.state.name, t.system_attrs.get("fixed_params", t.params)["dropout"])
        for t in study.get_trials()
    ]


def test_a_dead_workers_trial_is_retried_once(tmp_path, campaign, monkeypatch):
    lost = abandon_one(campaign, tmp_path, monkeypatch)
    told = all_proposals(opened(campaign, tmp_path))
    assert sorted(told) == [0.0, 0.5] and lost in told
    assert sorted(states(tmp_path)) == [("COMPLETE", 0.0), ("COMPLETE", 0.5), ("FAIL", lost)]


@pytest.mark.parametrize("step", ["enqueue_trial", "set_trial_state_values"])
def test_a_recovery_killed_at_any_step_is_finished_by_the_next_process(
    tmp_path, campaign, monkeypatch, step
):
    lost = abandon_one(campaign, tmp_path, monkeypatch)

    def killed(*args, **kwargs):
        raise Killed

    target = optuna.Study if step == "enqueue_trial" else optuna.storages.RDBStorage
    with monkeypatch.context() as patch:
        patch.setattr(target, step, killed)
        with pytest.raises(Killed):
            opened(campaign, tmp_path)
    told = all_proposals(opened(campaign, tmp_path))
    assert sorted(told) == [0.0, 0.5] and lost in told  # retried, and only once
    assert [s for s, _ in states(tmp_path)].count("COMPLETE") == 2


def test_two_workers_that_both_retry_a_trial_train_it_once(tmp_path, campaign, monkeypatch):
    lost = abandon_one(campaign, tmp_path, monkeypatch)
    driver = opened(campaign, tmp_path)  # enqueues the retry
    driver.study.enqueue_trial({"dropout": lost}, user_attrs={"retry_of": 0})  # the racer's
    told = all_proposals(driver)
    assert sorted(told) == [0.0, 0.5]
    assert [s for s, _ in states(tmp_path)].count("COMPLETE") == 2
