"""The record store owns who is alive and who trains a run: a claim is exclusive while its worker
lives and is taken over once the worker is gone. Two stores on one SQLite file act as two
workers; small `stale_after_s` instead of minutes (no training, no subprocess workers)."""

import contextlib
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from study.results import RunResult, Status
from study.store import RecordStore

DONE = RunResult(Status.COMPLETE, {"val_accuracy": [0.5]}, 1.0)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "records.sqlite"


@pytest.fixture
def store(path):
    s = RecordStore(path, heartbeat_s=0.1, stale_after_s=1.0)
    yield s
    s.close()


@contextlib.contextmanager
def worker(path, **options):
    """Another worker on the same file (a second store object)."""
    other = RecordStore(path, **{"heartbeat_s": 0.1, "stale_after_s": 1.0, **options})
    try:
        yield other
    finally:
        other.close()


def stop_heartbeat(store):
    """The worker's machine goes away: no more beats, and no goodbye (its row stays)."""
    store._stop.set()
    store._beater.join()


def test_a_claim_is_exclusive_while_its_worker_lives(store, path):
    trial = store.trial_for("a", {"dropout": 0.0})
    with worker(path) as elsewhere:
        assert elsewhere.start_run(trial, 0)
        assert not store.start_run(trial, 0)
        time.sleep(1.5)  # longer than stale_after_s: its heartbeat keeps it alive
        assert not store.is_gone(elsewhere.worker) and not store.start_run(trial, 0)
        assert store.running() == 1
        elsewhere.finish_run(trial, 0, DONE)
        assert not store.start_run(trial, 0)  # finished: never trained again
        assert store.run(trial, 0).status == Status.COMPLETE and store.running() == 0


def test_a_claim_is_taken_over_once_its_worker_stops_beating(store, path):
    trial = store.trial_for("a", {"dropout": 0.0})
    with worker(path) as silent:
        assert silent.start_run(trial, 0)
        assert not store.start_run(trial, 0)
        stop_heartbeat(silent)
        assert not store.is_gone(silent.worker)
        time.sleep(1.2)  # stale_after_s = 1
        assert store.is_gone(silent.worker) and store.running() == 0
        assert store.start_run(trial, 0)
        assert not silent.start_run(trial, 0)  # the claim is the new worker's now


def test_a_claim_of_a_closed_store_is_taken_over_at_once(store, path):
    trial = store.trial_for("a", {"dropout": 0.0})
    with worker(path) as leaving:
        assert leaving.start_run(trial, 0)  # interrupted, and its store closed
    assert store.is_gone(leaving.worker)
    assert store.start_run(trial, 0)


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(store, path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = store.trial_for("a", {"dropout": 0.0})
    monkeypatch.setattr("study.store._worker_id", lambda: f"{socket.gethostname()}:{dead.pid}:a")
    with worker(path) as ghost:  # its heartbeat is fresh, its process is gone
        assert ghost.start_run(trial, 0)
        assert store.is_gone(ghost.worker)
        assert store.start_run(trial, 0)


def test_configurations_are_numbered_once_per_key(store):
    assert store.trial_for("a", {}) == 1 and store.trial_for("b", {}) == 2
    assert store.trial_for("a", {}) == 1


def test_a_store_of_an_earlier_version_opens_and_a_reader_writes_nothing(path):
    earlier = RecordStore(path)
    trial = earlier.trial_for("a", {})
    assert earlier.start_run(trial, 0)
    earlier.close()
    with contextlib.closing(sqlite3.connect(path)) as db:  # as earlier versions wrote the file
        db.execute("DROP TABLE workers")
        db.execute("ALTER TABLE runs ADD COLUMN heartbeat FLOAT")
        db.commit()
    before = path.read_bytes()

    reader = RecordStore(path, create=False)  # as `study status` reads
    try:
        assert reader.run(trial, 0).status == Status.RUNNING
        assert reader.running() == 0  # no worker of this version could hold it
    finally:
        reader.close()
    assert path.read_bytes() == before

    with worker(path) as store:
        assert store.start_run(trial, 0)  # the earlier claim is taken over
        assert store.running() == 1
