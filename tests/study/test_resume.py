"""Interrupted campaigns resume: finished configuration x seed runs are never trained again."""

import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import study.campaign
from study import records
from study.campaign import run_campaign
from study.config import parse_campaign
from tests.conftest import tiny_campaign

ENGINES = ["optuna", "keras-tuner"]


@pytest.mark.parametrize("engine", ENGINES)
def test_resume_after_interrupt_trains_only_what_is_missing(tmp_path, monkeypatch, engine):
    # One run at a time (population = 1): this test counts train_run calls.
    campaign = parse_campaign(tiny_campaign(campaign={"engine": engine, "population": 1}))
    real_train_run = study.campaign.train_run
    calls = []

    def interrupted_on_third_run(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train_run(*args, **kwargs)

    monkeypatch.setattr(study.campaign, "train_run", interrupted_on_third_run)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(campaign, tmp_path, progress=False)
    before = records.load(tmp_path).trials
    assert sorted(before["status"]) == ["COMPLETE", "COMPLETE", "RUNNING"]

    calls.clear()
    monkeypatch.setattr(
        study.campaign, "train_run", lambda *a, **k: calls.append(1) or real_train_run(*a, **k)
    )
    run_campaign(campaign, tmp_path, progress=False)
    after = records.load(tmp_path).trials
    assert len(calls) == 6  # 8 runs, 2 finished before the interrupt
    assert len(after) == 8 and set(after["status"]) == {"COMPLETE"}
    assert not after.duplicated(["trial", "seed"]).any()
    done = before[before["status"] == "COMPLETE"].set_index(["trial", "seed"])["duration_s"]
    assert (
        after.set_index(["trial", "seed"]).loc[done.index, "duration_s"].tolist() == done.tolist()
    )


def _complete_runs(directory) -> int:
    try:
        with sqlite3.connect(directory / "records.sqlite", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM runs WHERE status = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("engine", ENGINES)
def test_sigkill_then_same_command_completes_without_retraining(tmp_path, campaign_file, engine):
    # One run at a time (population = 1): runs finish one by one, so the kill lands between.
    path = campaign_file(tiny_campaign(campaign={"engine": engine, "population": 1}))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "study.cli", "run", str(path), "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _complete_runs(out) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = records.load(out).trials
    finished = killed[killed["status"] == "COMPLETE"].set_index(["trial", "seed"])["duration_s"]
    assert 3 <= len(finished) < 8, "the kill should land mid-campaign"

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    trials = records.load(out).trials
    assert len(trials) == 8 and set(trials["status"]) == {"COMPLETE"}
    assert not trials.duplicated(["trial", "seed"]).any()
    again = trials.set_index(["trial", "seed"]).loc[finished.index, "duration_s"]
    assert again.tolist() == finished.tolist()  # not trained again
