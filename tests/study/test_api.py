"""The Python API: study.run and study.load give the chosen configuration, the two frames and
the report's path; bad input raises the typed errors, never exits."""

import shutil

import pytest

import study
from study.config import ConfigError
from study.models import ModelError
from study.records import FolderError
from tests.conftest import tiny_campaign


def test_run_from_a_mapping_returns_what_the_folder_holds(tmp_path):
    raw = tiny_campaign(campaign={"seeds": [0]}, train={"epochs": 1})
    raw["space"] = {"dropout": [0.0, 0.5]}
    result = study.run(raw, out=tmp_path / "out", progress=False, report=False)
    assert result.directory == tmp_path / "out" and result.report is None
    assert len(result.trials) == 2 and set(result.trials["status"]) == {"COMPLETE"}
    assert len(result.epochs) == 2  # one epoch of each run
    chosen = result.chosen
    assert set(chosen["values"]) == {"dropout"}  # the searched keys only
    row = result.trials[result.trials["trial"] == chosen["trial"]].iloc[0]
    assert chosen["validation"]["mean"] == row["best_val_accuracy"]
    assert chosen["validation"]["seeds"] == 1
    assert chosen["test"][0]["accuracy"] == row["test_accuracy"]  # evaluated once, recorded
    assert result.campaign["campaign"]["name"] == "tiny"


def test_load_reads_a_folder_run_by_the_command_line(finished_tiny, tmp_path):
    folder = shutil.copytree(finished_tiny / "out", tmp_path / "out")
    result = study.load(folder)
    assert result.report == folder / "report.html" and result.report.exists()
    assert result.chosen["trial"] in set(result.trials["trial"])
    (folder / "report.html").unlink()
    assert study.load(folder).report is None


def test_model_is_the_trained_run_it_names(finished_tiny, tmp_path):
    """`Result.model` rebuilds a run from the folder and sets its best-epoch weights: it scores
    on validation what the records say of that epoch, and on test what the campaign recorded."""
    from study.campaign import load_campaign_data
    from study.verify import frozen_campaign

    folder = shutil.copytree(finished_tiny / "out", tmp_path / "out")
    result = study.load(folder)
    data = load_campaign_data(frozen_campaign(folder))
    for trial in sorted(set(result.trials["trial"])):
        row = result.trials[result.trials["trial"] == trial].iloc[0]
        model = result.model(trial) if trial != result.chosen["trial"] else result.model()
        val = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
        assert val["accuracy"] == pytest.approx(row["best_val_accuracy"], abs=1e-6)
        if trial == result.chosen["trial"]:
            test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
            assert test["accuracy"] == pytest.approx(row["test_accuracy"], abs=1e-6)
    with pytest.raises(ModelError, match="no trial 99"):
        result.model(99, seed=0)
    (folder / "weights" / f"trial-{result.chosen['trial']}-seed-0.npz").unlink()
    with pytest.raises(ModelError, match="no best-epoch weights"):
        result.model()


def test_bad_input_raises_the_typed_error(tmp_path):
    with pytest.raises(ConfigError, match="model.unit"):
        study.run(tiny_campaign(model={"unit": 3}), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # nothing written
    with pytest.raises(FolderError, match="not a campaign folder"):
        study.load(tmp_path)
    with pytest.raises(AttributeError, match="runn"):
        study.runn  # noqa: B018
