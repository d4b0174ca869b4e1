"""Reproducibility: equal reruns, `study verify`, the manifest, and `--isolate` giving equal records."""

import json
import shutil
import sqlite3

import pytest

from study import records
from study.campaign import run_campaign
from study.cli import main
from study.config import parse_campaign
from study.results import RunResult, Status
from study.store import RecordStore
from study.verify import (
    ALONE_TOLERANCE,
    choose_runs,
    default_tolerance,
    frozen_campaign,
    largest_difference,
    verify,
)
from tests.conftest import tiny_campaign
from tests.study.test_postgres import postgres_url, unique  # noqa: F401 (a fixture)

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


@pytest.mark.slow
def test_same_campaign_twice_gives_identical_curves(twice):
    _, (first, second) = twice
    a, b = records.load(first).epochs, records.load(second).epochs
    assert len(a) == 4 and a["val_loss"].notna().all()
    assert a.equals(b)  # bit for bit, every epoch of every run


@pytest.mark.slow
def test_manifest_records_what_a_rerun_needs(twice):
    _, (first, _) = twice
    manifest = json.loads((first / "manifest.json").read_text())
    assert len(manifest["campaign_fingerprint"]) == 64 and len(manifest["data_fingerprint"]) == 64
    session = manifest["sessions"][0]
    assert session["deterministic_ops"] is True  # the default, on the TensorFlow backend
    for key in ("keras_backend", "devices", "python", "platform", "packages", "git_commit"):
        assert key in session
    assert json.loads((first / "campaign.json").read_text())["campaign"]["deterministic"] is True


@pytest.mark.slow
def test_verify_reproduces_a_fresh_campaign(twice, capsys):
    _, (first, _) = twice
    assert main(["verify", str(first), "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("largest difference 0  ok") == 2
    assert "2 run(s) retrained; largest difference 0, tolerance 1e-06: reproduced" in out


@pytest.mark.slow
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


@pytest.mark.slow
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


# Populations: `study verify` replays the population a run trained in ----------------------------


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    """The tiny campaign (4 configurations x 2 seeds, 2 epochs) trained as populations of 4."""
    folder = tmp_path_factory.mktemp("populations")
    run_campaign(parse_campaign(tiny_campaign(campaign={"population": 4})), folder, progress=False)
    return folder


def stored_populations(folder):
    store = RecordStore(folder / "records.sqlite")
    try:
        return store.populations()
    finally:
        store.close()


@pytest.mark.slow
def test_the_store_records_the_populations_that_trained(populations):
    recorded = stored_populations(populations)
    # Two configurations' runs per population, in the order they were asked for and seeded.
    first = [[1, 0], [1, 1], [2, 0], [2, 1]]
    second = [[3, 0], [3, 1], [4, 0], [4, 1]]
    assert sorted(recorded) == [(t, s) for t in (1, 2, 3, 4) for s in (0, 1)]
    for members in (first, second):
        for trial, seed in members:
            assert recorded[trial, seed] == {
                "members": members,
                "masks": "member",
                "order": "member",
                "conv": "loop",  # "auto" resolved: no accelerator here
                "jit_compile": False,  # "auto" resolved: TensorFlow on a CPU
            }


@pytest.mark.slow
def test_verify_replays_each_population_once_bit_for_bit(populations, capsys):
    assert main(["verify", str(populations), "--trials", "8"]) == 0
    out = capsys.readouterr().out
    assert out.count("(in its population of 4): largest difference 0  ok") == 8
    assert "note:" not in out and "retrains each run alone" not in out
    assert "8 run(s) retrained; largest difference 0, tolerance 1e-06: reproduced" in out


@pytest.mark.slow
def test_verify_alone_retrains_population_members_alone(populations, capsys):
    checks = verify(populations, n_runs=2, alone=True)
    assert [c.population for c in checks] == [1, 1]
    # Alone, the same arithmetic in another order: close, and not required to be equal.
    assert all(0 <= c.max_difference <= ALONE_TOLERANCE for c in checks)
    assert main(["verify", str(populations), "--trials", "2", "--alone"]) == 0
    out = capsys.readouterr().out
    assert "population of" not in out and f"tolerance {ALONE_TOLERANCE:g}: reproduced" in out


@pytest.mark.slow
def test_verify_finds_a_changed_value_in_a_population_member(populations, tmp_path, capsys):
    tampered = tmp_path / "tampered"
    shutil.copytree(populations, tampered)
    with sqlite3.connect(tampered / "records.sqlite") as db:
        history = json.loads(
            db.execute("SELECT history FROM runs WHERE trial = 4 AND seed = 1").fetchone()[0]
        )
        history["train_accuracy"][0] += 1e-5
        db.execute(
            "UPDATE runs SET history = ? WHERE trial = 4 AND seed = 1", (json.dumps(history),)
        )
    assert main(["verify", str(tampered), "--trials", "1"]) == 0  # trial 1 seed 0: untouched
    assert main(["verify", str(tampered), "--trials", "2"]) == 1
    out = capsys.readouterr().out
    assert "trial 4 seed 1 (in its population of 4): largest difference 1e-05" in out


@pytest.mark.slow
def test_one_draw_masks_are_recorded_and_replayed(tmp_path, capsys):
    raw = tiny_campaign(
        campaign={"seeds": [0], "population_masks": "population"},
        train={"epochs": 1},
        space={"dropout": [0.25, 0.5]},
    )
    raw["space"].pop("l2")
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    recorded = stored_populations(tmp_path)
    assert recorded[1, 0]["members"] == [[1, 0], [2, 0]] and recorded[1, 0]["masks"] == "population"
    assert main(["verify", str(tmp_path), "--trials", "2"]) == 0
    assert capsys.readouterr().out.count("population of 2): largest difference 0  ok") == 2


@pytest.mark.slow
def test_one_run_at_a_time_records_no_population(twice):
    _, (first, _) = twice  # population = 1; `study verify` on it: test_verify_reproduces_...
    assert stored_populations(first) == {}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path):
    """An empty record store: a SQLite file, or a campaign's rows in PostgreSQL (skipped, with
    the reason, where no server runs; CI runs one)."""
    if request.param == "sqlite":
        return RecordStore(tmp_path / "records.sqlite")
    return RecordStore(request.getfixturevalue("postgres_url"), campaign=unique("populations"))


def test_a_run_trained_again_records_the_population_it_finally_trained_in(any_store):
    store = any_store
    done = RunResult(Status.COMPLETE, {"train_loss": [1.0]})
    together = {"members": [[1, 0], [2, 0]], "masks": "member"}
    try:
        for trial in (1, 2):
            store.start_run(trial, 0)
            store.finish_run(trial, 0, done, population=together)
        store.start_run(1, 0)  # killed and trained again, alone this time
        store.finish_run(1, 0, done)
        assert store.populations() == {(2, 0): together}
    finally:
        store.close()


def test_a_store_without_the_populations_table_gets_it(tmp_path):
    RecordStore(tmp_path / "records.sqlite").close()
    with sqlite3.connect(tmp_path / "records.sqlite") as db:
        db.execute("DROP TABLE populations")  # as an earlier version wrote the file
    reader = RecordStore(tmp_path / "records.sqlite", create=False)  # as `study verify` reads
    try:
        assert reader.populations() == {}  # every run retrained alone
    finally:
        reader.close()
    store = RecordStore(tmp_path / "records.sqlite")
    try:
        assert store.populations() == {}
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "records.sqlite") as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'populations'").fetchone()


@pytest.mark.slow  # trains a population on a PostgreSQL store (an integration test)
def test_verify_replays_a_population_recorded_in_postgresql(request, tmp_path, capsys):
    url = request.getfixturevalue("postgres_url")  # skipped, with the reason, without a server
    raw = tiny_campaign(
        campaign={"name": unique("verify"), "seeds": [0], "storage": url},
        train={"epochs": 1},
    )
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    assert main(["verify", str(tmp_path), "--trials", "2"]) == 0
    assert capsys.readouterr().out.count("(in its population of 4): largest difference 0  ok") == 2
