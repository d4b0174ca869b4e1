"""Workers on a real PostgreSQL server: the Optuna study and the records in one database.

CI (.ci/run) starts PostgreSQL and sets STUDY_TEST_POSTGRES_URL; there these tests must run. On a
machine without a server they are skipped, with the reason."""

import os
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from study import records
from study.cli import main
from study.results import RunResult, Status
from study.store import RecordStore, check_storage
from tests.study.test_store import stop_heartbeat
from tests.study.test_workers import assert_grid_trained_once, grid_campaign

URL = os.environ.get("STUDY_TEST_POSTGRES_URL", "postgresql://study:study@localhost/study_test")


@pytest.fixture(scope="module")
def postgres_url():
    problem = check_storage(URL)
    if problem and "STUDY_TEST_POSTGRES_URL" in os.environ:
        pytest.fail(f"STUDY_TEST_POSTGRES_URL is set but {URL} cannot be reached: {problem}")
    if problem:
        pytest.skip(f"no PostgreSQL server at {URL} ({problem}); CI sets STUDY_TEST_POSTGRES_URL")
    return URL


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"  # campaigns share the database: keyed by name


def test_claims_are_exclusive_on_postgres(postgres_url):
    name = unique("claims")
    first = RecordStore(postgres_url, campaign=name, heartbeat_s=0.1, stale_after_s=1.0)
    second = RecordStore(postgres_url, campaign=name, heartbeat_s=0.1, stale_after_s=1.0)
    try:
        trial = first.trial_for("a", {"dropout": 0.0})
        assert second.trial_for("a", {"dropout": 0.0}) == trial
        assert second.start_run(trial, 0)
        assert not first.start_run(trial, 0)
        second.finish_run(trial, 0, RunResult(Status.COMPLETE, {"val_accuracy": [0.5]}, 1.0))
        assert not first.start_run(trial, 0) and first.run(trial, 0).status == Status.COMPLETE
        assert second.start_run(trial, 1)
        stop_heartbeat(second)  # its machine goes away
        assert not first.start_run(trial, 1)
        time.sleep(1.2)  # stale_after_s = 1, on the database's clock
        assert first.start_run(trial, 1)
        other = RecordStore(postgres_url, campaign=unique("other"))
        assert other.runs() == [] and other.trial_for("a", {}) == 1  # keyed by campaign
        other.close()
    finally:
        first.close()
        second.close()


@pytest.mark.slow
def test_three_workers_on_postgres_train_the_grid_exactly_once(
    postgres_url, tmp_path, campaign_file, capsys
):
    name = unique("pg")
    path = campaign_file(grid_campaign(name))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "study.cli", "run", str(path), "--out", str(out)]
    result = subprocess.run(
        [*command, "--workers", "3", "--storage", postgres_url, "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (out / "records.sqlite").exists()  # the records are in the database
    assert_grid_trained_once(out, optuna.load_study(study_name=name, storage=postgres_url))

    # The weights are in the database too: another machine's folder can evaluate the chosen one.
    store = RecordStore(postgres_url, campaign=name)
    chosen = int(records.load(out).trials.dropna(subset=["test_accuracy"])["trial"].iloc[0])
    assert store.weights(chosen, 0) is not None
    store.close()

    # A different campaign under the same name is refused, naming the keys that differ.
    changed = grid_campaign(name)
    changed["train"]["epochs"] = 2
    path = campaign_file(changed, name="changed.toml")
    code = main(["worker", str(path), "--out", str(tmp_path / "b"), "--storage", postgres_url])
    assert code == 2
    assert "changed keys: train.epochs" in capsys.readouterr().err
