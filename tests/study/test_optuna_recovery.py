"""The Optuna driver hands a gone worker's trial back exactly once, as the record store decides
who is gone, even when the process that hands it back is itself killed half-way; and never the
trial of a worker that lives (no training: drivers and stores alone, on their SQLite files)."""

import time

import optuna
import pytest

from study.config import parse_campaign
from study.drivers._optuna_private import enqueued_values
from study.drivers.optuna_driver import OptunaDriver
from study.results import Status
from study.store import RecordStore
from tests.conftest import tiny_campaign
from tests.study.test_store import stop_heartbeat


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


@pytest.fixture
def campaign():
    raw = tiny_campaign()
    raw["space"] = {"dropout": [0.0, 0.5]}
    return parse_campaign(raw)


@pytest.fixture
def store(tmp_path):
    """This worker's record store: its liveness, alive until closed (stale after 1 s)."""
    s = RecordStore(tmp_path / "records.sqlite", heartbeat_s=0.1, stale_after_s=1.0)
    yield s
    s.close()


def opened(campaign, directory, store):
    driver = OptunaDriver(campaign, directory, liveness=store)
    driver.open()
    return driver


def all_proposals(driver):
    """Ask and tell until the engine is done; the values told, in order."""
    told = []
    while (proposal := driver.ask()) is not None:
        told.append(proposal.values["dropout"])
        driver.tell(proposal, 0.5, Status.COMPLETE)
    return told


def abandon_one(campaign, directory):
    """A worker takes the first grid point and dies while training it: its store is closed, so
    it is gone at once (a worker that stops beating without closing: below)."""
    dying = RecordStore(directory / "records.sqlite")
    proposal = opened(campaign, directory, dying).ask()
    dying.close()
    return proposal.values["dropout"]


def states(directory):
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{directory / 'optuna.sqlite'}")
    return [(t.state.name, enqueued_values(t)["dropout"]) for t in study.get_trials()]


def test_a_dead_workers_trial_is_retried_once(tmp_path, campaign, store):
    lost = abandon_one(campaign, tmp_path)
    told = all_proposals(opened(campaign, tmp_path, store))
    assert sorted(told) == [0.0, 0.5] and lost in told
    assert sorted(states(tmp_path)) == [("COMPLETE", 0.0), ("COMPLETE", 0.5), ("FAIL", lost)]


@pytest.mark.parametrize("step", ["enqueue_trial", "set_trial_state_values"])
def test_a_recovery_killed_at_any_step_is_finished_by_the_next_process(
    tmp_path, campaign, store, monkeypatch, step
):
    lost = abandon_one(campaign, tmp_path)

    def killed(*args, **kwargs):
        raise Killed

    target = optuna.Study if step == "enqueue_trial" else optuna.storages.RDBStorage
    with monkeypatch.context() as patch:
        patch.setattr(target, step, killed)
        with pytest.raises(Killed):
            opened(campaign, tmp_path, store)
    told = all_proposals(opened(campaign, tmp_path, store))
    assert sorted(told) == [0.0, 0.5] and lost in told  # retried, and only once
    assert [s for s, _ in states(tmp_path)].count("COMPLETE") == 2


def test_two_workers_that_both_retry_a_trial_train_it_once(tmp_path, campaign, store):
    lost = abandon_one(campaign, tmp_path)
    driver = opened(campaign, tmp_path, store)  # enqueues the retry
    driver.study.enqueue_trial({"dropout": lost}, user_attrs={"retry_of": 0})  # the racer's
    told = all_proposals(driver)
    assert sorted(told) == [0.0, 0.5]
    assert [s for s, _ in states(tmp_path)].count("COMPLETE") == 2


def test_the_trial_of_a_worker_that_stops_beating_is_retried_once_it_is_gone(
    tmp_path, campaign, store
):
    silent = RecordStore(store.url, heartbeat_s=0.1, stale_after_s=1.0)
    try:
        lost = opened(campaign, tmp_path, silent).ask().values["dropout"]
        opened(campaign, tmp_path, store)  # its worker is alive yet
        assert sorted(states(tmp_path)) == [("RUNNING", lost), ("WAITING", 0.5 - lost)]
        stop_heartbeat(silent)
        time.sleep(1.2)  # stale_after_s = 1
        told = all_proposals(opened(campaign, tmp_path, store))
    finally:
        silent.close()
    assert sorted(told) == [0.0, 0.5] and lost in told
    assert sorted(states(tmp_path)) == [("COMPLETE", 0.0), ("COMPLETE", 0.5), ("FAIL", lost)]


def test_no_trial_is_retried_while_its_worker_lives_however_long_it_runs(tmp_path, campaign, store):
    alive = RecordStore(store.url, heartbeat_s=0.1, stale_after_s=1.0)
    try:
        working = opened(campaign, tmp_path, alive)
        long_one = working.ask()
        time.sleep(1.5)  # longer than stale_after_s: its store's heartbeat keeps it alive
        driver = opened(campaign, tmp_path, store)
        running = long_one.values["dropout"]
        assert sorted(states(tmp_path)) == [("RUNNING", running), ("WAITING", 0.5 - running)]
        driver.tell(driver.ask(), 0.5, Status.COMPLETE)
        working.tell(long_one, 0.5, Status.COMPLETE)
        assert driver.ask() is None
    finally:
        alive.close()
    assert sorted(states(tmp_path)) == [("COMPLETE", 0.0), ("COMPLETE", 0.5)]


def test_a_trial_that_names_no_worker_is_retried_once_older_than_the_stale_time(
    tmp_path, campaign, store
):
    opened(campaign, tmp_path, store).study.ask()  # by a worker killed before naming itself
    opened(campaign, tmp_path, store)
    [lost] = [dropout for state, dropout in states(tmp_path) if state == "RUNNING"]
    time.sleep(1.2)  # stale_after_s = 1
    told = all_proposals(opened(campaign, tmp_path, store))
    assert sorted(told) == [0.0, 0.5] and lost in told
    assert sorted(states(tmp_path)) == [("COMPLETE", 0.0), ("COMPLETE", 0.5), ("FAIL", lost)]
