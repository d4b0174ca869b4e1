"""Scale-out on one machine: N worker processes on the journal file, GPU environments, and flag
errors (claims and liveness: tests/study/test_store.py)."""

import json
import sqlite3
import subprocess
import sys

import optuna
import pytest

from study import records
from study.cli import main
from study.results import Status
from study.workers import parse_gpus, worker_environments
from tests.conftest import tiny_campaign

GRID = {"dropout": [0.0, 0.25, 0.5], "l2": [0.0, 1e-3]}  # 6 configurations


def grid_campaign(name: str, **campaign):
    raw = tiny_campaign(campaign={"name": name, **campaign}, train={"epochs": 1})
    raw["space"] = dict(GRID)
    return raw


def run_study(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "study.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_records_hold_the_grid_once(out):
    """Every configuration x seed COMPLETE exactly once; returns the trials frame and the grid
    points (dropout, l2) it holds."""
    trials = records.load(out).trials
    assert len(trials) == 12 and set(trials["status"]) == {Status.COMPLETE}
    assert not trials.duplicated(["trial", "seed"]).any()
    points = sorted(
        map(tuple, trials.drop_duplicates("trial")[["param_dropout", "param_l2"]].values)
    )
    assert points == sorted((d, l2) for d in GRID["dropout"] for l2 in GRID["l2"])
    tested = trials[trials["test_accuracy"].notna()]
    assert len(tested) == 2 and tested["trial"].nunique() == 1  # evaluated once, by the parent
    return trials, points


def assert_grid_trained_once(out, study: optuna.Study) -> None:
    """Every configuration x seed COMPLETE exactly once; every Optuna trial a grid point, once."""
    _, points = assert_records_hold_the_grid_once(out)
    engine_trials = study.get_trials(deepcopy=False)
    assert [t.state for t in engine_trials] == [optuna.trial.TrialState.COMPLETE] * 6
    assert sorted((t.params["dropout"], t.params["l2"]) for t in engine_trials) == points


# Environments and flags ------------------------------------------------------------------------


def test_worker_environments_give_each_gpu_slot_its_device():
    envs = worker_environments(gpus=(0, 2), trials_per_gpu=2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "0", "2", "2"]
    assert all(e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" for e in envs)
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in envs)
    assert worker_environments(workers=3) == [{}, {}, {}]


@pytest.mark.parametrize("text, gpus", [("0", (0,)), ("0,1,3", (0, 1, 3))])
def test_parse_gpus(text, gpus):
    assert parse_gpus(text) == gpus


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "two"], "--workers"),
        (["--gpus", "0,a"], "--gpus"),
        (["--gpus", "0,0"], "--gpus"),
        (["--gpus", "-1"], "--gpus"),
        (["--trials-per-gpu", "2"], "--trials-per-gpu: needs --gpus"),
        (["--gpus", "0", "--trials-per-gpu", "0"], "--trials-per-gpu"),
        (["--workers", "2", "--gpus", "0"], "--workers: give --workers N or --gpus LIST"),
        (["--storage", "postgresql://nobody@127.0.0.1:9/none"], "--storage: cannot connect"),
        (["--workers", "2", "--storage", "sqlite:///x.db"], "'sqlite' is not supported"),
    ],
)
def test_bad_scale_out_flags_exit_2_naming_the_flag(
    tmp_path, campaign_file, capsys, flags, message
):
    path = campaign_file(grid_campaign("flags"))
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(["run", str(path), "--out", str(tmp_path / "out"), *flags]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# Three workers on one machine ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_workers_of_a_seeded_sampler_propose_their_own_configurations(
    tmp_path, campaign_file, strategy
):
    """Each worker seeds its sampler for itself: with the campaign's seed alone, two workers
    drew the same points, and max_trials = 4 trained 2 configurations twice."""
    raw = tiny_campaign(
        campaign={"name": "seeded", "strategy": strategy, "max_trials": 4, "seeds": [0]},
        train={"epochs": 1},
    )
    raw["space"] = {"dropout": {"low": 0.0, "high": 0.5}}
    out = tmp_path / "out"
    result = run_study(
        "run", str(campaign_file(raw)), "--out", str(out), "--workers", "2", "--quiet"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = records.load(out).trials
    assert trials["param_dropout"].nunique() == 4, trials[["trial", "param_dropout"]]


@pytest.mark.slow
def test_three_workers_on_the_journal_file_train_the_grid_exactly_once(tmp_path, campaign_file):
    path = campaign_file(grid_campaign("journal"))
    out = tmp_path / "out"
    result = run_study("run", str(path), "--out", str(out), "--workers", "3", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "chosen: trial" in result.stdout
    assert (out / "optuna.journal").exists() and not (out / "optuna.sqlite").exists()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))
    )
    assert_grid_trained_once(out, optuna.load_study(study_name="journal", storage=storage))
    with sqlite3.connect(out / "records.sqlite") as db:
        workers = {w for (w,) in db.execute("SELECT worker FROM runs")}
    assert len(workers) >= 2, "the runs should be shared among the workers"
    manifest = (out / "manifest.json").read_text()
    assert "--workers 3" in manifest  # one session, recorded by the launching process


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, workers, extra",
    [("grid", 3, {}), ("random", 2, {"max_trials": 6})],  # random: 6 distinct of 6 points
)
def test_keras_tuner_workers_ask_the_chief_oracle_and_train_the_grid_exactly_once(
    tmp_path, campaign_file, strategy, workers, extra
):
    path = campaign_file(grid_campaign("chief", engine="keras-tuner", strategy=strategy, **extra))
    out = tmp_path / "out"
    result = run_study("run", str(path), "--out", str(out), "--workers", str(workers), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "chosen: trial" in result.stdout
    trials, points = assert_records_hold_the_grid_once(out)
    # The chief's oracle (served by the parent, saved in DIR/keras_tuner/): every trial it
    # handed out ended COMPLETED, each a distinct grid point, none left running.
    oracle = json.loads((out / "keras_tuner" / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {}
    engine_trials = [
        json.loads(f.read_text()) for f in (out / "keras_tuner").glob("trial_*/trial.json")
    ]
    assert [t["status"] for t in engine_trials] == ["COMPLETED"] * 6
    values = sorted(
        (t["hyperparameters"]["values"]["dropout"], t["hyperparameters"]["values"]["l2"])
        for t in engine_trials
    )
    assert values == points
    # Each names its trial in our records (the workers' study_trial metric, labelled by the chief).
    labels = sorted(int(t["message"].split()[2].rstrip(";")) for t in engine_trials)
    assert labels == sorted(trials["trial"].unique())
    logs = [(out / "workers" / f"worker-{i}.log").read_text() for i in range(workers)]
    assert all("worker done" in log for log in logs)
