"""A run that raises is FAILED with its reason and the campaign goes on; too many consecutive
failures stop the campaign with a clear message; failed runs stay in the records.

(Divergence, a NaN loss, is tested in test_drivers.py.)
"""

import pytest

import study.trial
from study import records
from study.cli import main
from study.config import parse_campaign
from tests.conftest import tiny_campaign, to_toml


def _out_of_memory_for(dropout: float):
    """A build_model that raises as TensorFlow does when a model does not fit in memory."""
    real = study.trial.build_model

    def build_model(values, builder, data):
        if values["dropout"] == dropout:
            raise MemoryError("simulated: out of memory allocating the first Dense kernel")
        return real(values, builder, data)

    return build_model


@pytest.mark.slow
def test_an_exception_fails_its_run_with_the_reason_and_the_campaign_goes_on(tmp_path, monkeypatch):
    from study.campaign import run_campaign

    monkeypatch.setattr(study.trial, "build_model", _out_of_memory_for(0.5))
    # One run at a time (population = 1): the failure is simulated in study.trial.build_model.
    raw = tiny_campaign(campaign={"seeds": [0, 1], "population": 1}, train={"epochs": 1})
    raw["space"] = {"dropout": [0.5, 0.0]}
    chosen = run_campaign(parse_campaign(raw), tmp_path, progress=False)
    trials = records.load(tmp_path).trials.set_index(["param_dropout", "seed"])
    failed = trials.loc[(0.5, 0)]
    assert failed["status"] == "FAILED"
    assert (
        failed["failure"]
        == "MemoryError: simulated: out of memory allocating the first Dense kernel"
    )
    assert (0.5, 1) not in trials.index  # a failed configuration skips its other seeds
    assert list(trials.loc[0.0, "status"]) == ["COMPLETE", "COMPLETE"]
    assert chosen["values"] == {"dropout": 0.0}


def test_consecutive_failures_stop_the_campaign_and_stay_in_the_records(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(study.trial, "build_model", _out_of_memory_for(0.5))
    raw = tiny_campaign(campaign={"seeds": [0], "max_consecutive_failures": 2, "population": 1})
    raw["space"] = {"dropout": [0.5], "l2": [0.0, 1e-4, 1e-3]}  # every configuration fails
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(raw))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        "study: error: 2 configurations failed in a row (campaign.max_consecutive_failures); "
        "the last: MemoryError: simulated: out of memory" in err
    )
    assert "Traceback" not in err
    trials = records.load(out).trials
    assert list(trials["status"]) == ["FAILED", "FAILED"]  # the third was never tried
    assert trials["failure"].str.startswith("MemoryError: simulated").all()


@pytest.mark.slow
def test_the_limit_counts_failures_in_a_row_only(tmp_path, monkeypatch):
    from study.campaign import run_campaign

    monkeypatch.setattr(study.trial, "build_model", _out_of_memory_for(0.5))
    raw = tiny_campaign(
        campaign={"seeds": [0], "max_consecutive_failures": 2, "population": 1},
        train={"epochs": 1},
    )
    raw["space"] = {"l2": [0.0, 1e-4], "dropout": [0.5, 0.0]}  # fails, trains, fails, trains
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    trials = records.load(tmp_path).trials.sort_values("trial")
    assert list(trials["status"]) == ["FAILED", "COMPLETE", "FAILED", "COMPLETE"]


@pytest.mark.slow
def test_an_isolated_run_whose_worker_is_killed_fails_and_the_next_run_trains(tmp_path):
    """As when the kernel kills a worker for memory: that run is FAILED with the reason."""
    from study.data import load_dataset
    from study.isolate import IsolatedRunner

    campaign = parse_campaign(tiny_campaign())
    data = load_dataset("digits")
    runner = IsolatedRunner(data, deterministic=True, runs_per_worker=5)
    values = campaign.values({"dropout": 0.0, "l2": 0.0})
    options = dict(
        builder=campaign.builder, data=data, objective="val_accuracy", direction="maximize"
    )

    def kill_the_worker(epoch, value):
        runner._worker.process.kill()  # the parent answers; the worker is gone
        return False

    try:
        killed = runner(values, seed=0, on_epoch=kill_the_worker, **options)
        again = runner(values, seed=0, weights_path=tmp_path / "w.npz", **options)
    finally:
        runner.close()
    assert killed.status == "FAILED"
    assert killed.failure == "worker died: SIGKILL, perhaps killed for memory"
    assert again.status == "COMPLETE" and len(again.history["val_loss"]) == 2
    assert (tmp_path / "w.npz").exists()
