"""The trial loop with an executor that trains nothing: which runs it hands over, in which
groups, what it records and what it tells the engine (no Keras training, so it is fast)."""

import re

import optuna
import pytest

import study.campaign
from study import records
from study.campaign import run_campaign
from study.config import parse_campaign
from study.results import RunResult, Status
from tests.conftest import tiny_campaign

SEEDS = [0, 1, 2]


class Scripted:
    """An executor whose runs end as `fails` says: (dropout, seed) -> FAILED, the rest COMPLETE
    with a two-epoch curve."""

    isolated, why_not = False, ""
    arithmetic = {"masks": "member", "order": "member", "conv": "loop", "jit_compile": False}

    def __init__(self, size, fails=()):
        self.size, self.fails, self.groups = size, set(fails), []

    def train(self, members, on_epoch):
        runs = [(m.values["dropout"], _seed_of(m.weights_path)) for m in members]
        self.groups.append(runs)
        return [
            RunResult(Status.FAILED, failure="diverged: scripted")
            if run in self.fails
            else RunResult(
                Status.COMPLETE, {"val_accuracy": [0.5, 0.6 - run[0] / 10], "val_loss": [1, 1]}
            )
            for run in runs
        ]

    def close(self):
        pass


def _seed_of(path):
    return int(re.search(r"seed-(\d+)", path.name).group(1))


def run_scripted(tmp_path, monkeypatch, executor, population):
    raw = tiny_campaign(campaign={"seeds": SEEDS, "population": population})
    raw["space"] = {"dropout": [0.0, 0.5]}
    monkeypatch.setattr(study.campaign, "make_executor", lambda *a, **k: executor)
    run_campaign(parse_campaign(raw), tmp_path, progress=False, evaluate=False)
    trials = records.load(tmp_path).trials
    runs = {(row.param_dropout, row.seed): row.status for row in trials.itertuples(index=False)}
    engine = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'optuna.sqlite'}")
    told = {t.params["dropout"]: (t.state.name, t.value) for t in engine.get_trials()}
    return runs, told


def test_one_at_a_time_a_failed_run_stops_its_configuration(tmp_path, monkeypatch):
    executor = Scripted(size=1, fails={(0.5, 1)})
    runs, told = run_scripted(tmp_path, monkeypatch, executor, population=1)
    assert executor.groups == [[(0.0, 0)], [(0.0, 1)], [(0.0, 2)], [(0.5, 0)], [(0.5, 1)]]
    assert runs == {
        (0.0, 0): Status.COMPLETE,
        (0.0, 1): Status.COMPLETE,
        (0.0, 2): Status.COMPLETE,
        (0.5, 0): Status.COMPLETE,
        (0.5, 1): Status.FAILED,
    }  # seed 2 of 0.5: skipped
    assert told == {0.0: ("COMPLETE", pytest.approx(0.6)), 0.5: ("FAIL", None)}


def test_in_a_population_every_started_run_is_recorded_and_the_rule_is_the_same(
    tmp_path, monkeypatch
):
    executor = Scripted(size=6, fails={(0.5, 1)})
    runs, told = run_scripted(tmp_path, monkeypatch, executor, population=6)
    assert executor.groups == [[(0.0, 0), (0.0, 1), (0.0, 2), (0.5, 0), (0.5, 1), (0.5, 2)]]
    assert (
        runs[0.5, 1] == Status.FAILED and runs[0.5, 2] == Status.COMPLETE
    )  # started together: recorded
    assert told == {0.0: ("COMPLETE", pytest.approx(0.6)), 0.5: ("FAIL", None)}
    store = records.open_records(tmp_path, {"name": "tiny"})
    try:
        members = {tuple(p["members"][0]) for p in store.populations().values()}
    finally:
        store.close()
    assert len(members) == 1  # one population, recorded for `study verify`


def test_a_population_is_split_where_its_size_ends(tmp_path, monkeypatch):
    executor = Scripted(size=4)
    runs, told = run_scripted(tmp_path, monkeypatch, executor, population=4)
    # 4 // 3 seeds: two configurations asked at once, their 6 runs in near-equal populations
    assert [len(g) for g in executor.groups] == [3, 3]
    assert set(runs.values()) == {Status.COMPLETE} and len(runs) == 6
    assert {state for state, _ in told.values()} == {"COMPLETE"}
