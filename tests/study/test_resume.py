"""Interrupted campaigns resume: finished configuration x seed runs are never trained again
(SIGKILL at random moments: tests/study/test_kills.py)."""

import pytest

import study.executor
from study import records
from study.campaign import run_campaign
from study.config import parse_campaign
from tests.conftest import tiny_campaign

ENGINES = ["optuna", "keras-tuner"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_resume_after_interrupt_trains_only_what_is_missing(tmp_path, monkeypatch, engine):
    # One run at a time (population = 1): this test counts train_run calls.
    campaign = parse_campaign(tiny_campaign(campaign={"engine": engine, "population": 1}))
    real_train_run = study.executor.train_run
    calls = []

    def interrupted_on_third_run(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train_run(*args, **kwargs)

    monkeypatch.setattr(study.executor, "train_run", interrupted_on_third_run)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(campaign, tmp_path, progress=False)
    before = records.load(tmp_path).trials
    assert sorted(before["status"]) == ["COMPLETE", "COMPLETE", "RUNNING"]

    calls.clear()
    monkeypatch.setattr(
        study.executor, "train_run", lambda *a, **k: calls.append(1) or real_train_run(*a, **k)
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
