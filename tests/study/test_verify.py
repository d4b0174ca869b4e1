"""Reproducibility: equal reruns, `study verify`, the manifest, and `--isolate` giving equal records."""

import json
import shutil
import sqlite3

import pytest

from study import records
from study.campaign import run_campaign
from study.cli import main
from study.config import parse_campaign
from study.verify import choose_runs, default_tolerance, frozen_campaign, largest_difference
from tests.conftest import tiny_campaign

ENGINES = ["optuna", "keras-tuner"]


def two_configurations(engine: str) -> dict:
    """Two configurations x one seed, 2 epochs: the smallest campaign with something to choose.
    One run at a time (population = 1), as `study verify` retrains them: equal to the last bit."""
    raw = tiny_campaign(
        campaign={"engine": engine, "seeds": [0], "population": 1}, space={"dropout": [0.0, 0.5]}
    )
    raw["space"].pop("l2")
    return raw


@pytest.fixture(scope="module", params=ENGINES)
def twice(request, tmp_path_factory):
    """The same campaign run twice, into two folders, in this process."""
    folders = []
    for name in ("first", "second"):
        folder = tmp_path_factory.mktemp(f"{request.param}-{name}")
        run_campaign(parse_campaign(two_configurations(request.param)), folder, progress=False)
        folders.append(folder)
    return request.param, folders


def test_same_campaign_twice_gives_identical_curves(twice):
    _, (first, second) = twice
    a, b = records.load(first).epochs, records.load(second).epochs
    assert len(a) == 4 and a["val_loss"].notna().all()
    assert a.equals(b)  # bit for bit, every epoch of every run


def test_manifest_records_what_a_rerun_needs(twice):
    _, (first, _) = twice
    manifest = json.loads((first / "manifest.json").read_text())
    assert len(manifest["campaign_fingerprint"]) == 64 and len(manifest["data_fingerprint"]) == 64
    session = manifest["sessions"][0]
    assert session["deterministic_ops"] is True  # the default, on the TensorFlow backend
    for key in ("keras_backend", "devices", "python", "platform", "packages", "git_commit"):
        assert key in session
    assert json.loads((first / "campaign.json").read_text())["campaign"]["deterministic"] is True


def test_verify_reproduces_a_fresh_campaign(twice, capsys):
    _, (first, _) = twice
    assert main(["verify", str(first), "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("largest difference 0  ok") == 2
    assert "2 run(s) retrained; largest difference 0, tolerance 1e-06: reproduced" in out


def test_verify_exits_1_when_a_recorded_value_was_changed(twice, tmp_path, capsys):
    _, (first, _) = twice
    tampered = tmp_path / "tampered"
    shutil.copytree(first, tampered)
    with sqlite3.connect(tampered / "records.sqlite") as db:
        trial, seed, history = db.execute(
            "SELECT trial, seed, history FROM runs ORDER BY trial, seed LIMIT 1"
        ).fetchone()
        history = json.loads(history)
        history["val_loss"][1] += 1e-4
        db.execute(
            "UPDATE runs SET history = ? WHERE trial = ? AND seed = ?",
            (json.dumps(history), trial, seed),
        )
    assert main(["verify", str(tampered), "--trials", "1"]) == 1
    out = capsys.readouterr().out
    assert f"trial {trial} seed {seed}: largest difference 0.0001 (val_loss, epoch 2)" in out
    assert "DIFFERS" in out and "NOT reproduced" in out
    # A tolerance above the change accepts it.
    assert main(["verify", str(tampered), "--trials", "1", "--tolerance", "1e-3"]) == 0


@pytest.mark.parametrize("twice", ["optuna"], indirect=True)  # the worker knows no engine
def test_isolate_gives_the_records_of_an_in_process_run(twice, tmp_path):
    engine, (first, _) = twice
    isolated = tmp_path / "isolated"
    # One run per worker: every run starts in a fresh process, unlike the in-process campaign.
    run_campaign(parse_campaign(two_configurations(engine)), isolated, progress=False, isolate=1)
    a, b = records.load(first), records.load(isolated)
    assert a.epochs.equals(b.epochs)
    columns = ["trial", "seed", "status", "best_epoch", "best_val_accuracy", "test_accuracy"]
    assert a.trials[columns].equals(b.trials[columns])
    assert sorted(p.name for p in (isolated / "weights").iterdir()) == [
        "trial-1-seed-0.npz",
        "trial-2-seed-0.npz",
    ]


def test_verify_refuses_a_folder_that_is_not_a_campaign(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "not a campaign folder" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--trials", "0"], ["--tolerance", "-1"], ["--tolerance", "x"]])
def test_verify_bad_flags_exit_2(tmp_path, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(tmp_path), *flag])
    assert exit_.value.code == 2 and flag[0] in capsys.readouterr().err


def test_largest_difference_and_choice_of_runs():
    assert largest_difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.5]}) == (0.5, "a", 2)
    assert largest_difference({"a": [1.0]}, {"a": [1.0, 2.0]})[0] == float("inf")
    assert largest_difference({"a": [1.0]}, {"b": [1.0]})[0] == float("inf")
    assert largest_difference({"a": [float("nan")]}, {"a": [float("nan")]})[0] == 0.0
    assert largest_difference({"a": [float("nan")]}, {"a": [1.0]})[0] == float("inf")

    class Run:
        def __init__(self, trial, status="COMPLETE"):
            self.trial, self.seed, self.status = trial, 0, status

    runs = [Run(t) for t in range(1, 11)] + [Run(11, "FAILED")]
    assert [r.trial for r in choose_runs(runs, 3)] == [1, 5, 10]
    assert [r.trial for r in choose_runs(runs, 1)] == [1]
    assert len(choose_runs(runs, 50)) == 10


@pytest.mark.parametrize("deterministic, tolerance", [(True, 1e-6), (False, 1e-2)])
def test_the_frozen_campaign_is_the_campaign_that_ran(tmp_path, deterministic, tolerance):
    raw = tiny_campaign(campaign={"deterministic": deterministic, "strategy": "random"})
    raw["space"] = {
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "regularizer": ["l1", "l2"],
        "l1": {"values": [1e-5, 1e-4], "when": {"regularizer": ["l1"]}},
    }
    campaign = parse_campaign(raw)
    (tmp_path / "campaign.json").write_text(json.dumps(campaign.resolved))
    (tmp_path / "records.sqlite").touch()
    frozen = frozen_campaign(tmp_path)
    assert frozen.space == campaign.space and frozen.fixed == campaign.fixed
    assert frozen.fingerprint == campaign.fingerprint
    assert frozen.deterministic is deterministic and default_tolerance(frozen) == tolerance
