"""A KerasTuner user opens a keras-tuner campaign's folder with KerasTuner's own Tuner classes:
every configuration is a trial, scored with its objective, numbered as in our records."""

import re

import keras
import keras_tuner as kt
import numpy as np
import pytest

import study
from study import records
from study.campaign import load_campaign_data, run_campaign
from study.config import parse_campaign
from study.drivers.keras_tuner_driver import ENGINE_DIR, STUDY_TRIAL, TUNER_FILE
from study.models import CHECKPOINT
from study.verify import frozen_campaign
from tests.conftest import tiny_campaign

TUNERS = {
    "grid": kt.GridSearch,
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
}


def any_model(hp: kt.HyperParameters) -> keras.Model:
    """A KerasTuner user's build function (any will do to read the results)."""
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def reload_with_keras_tuner(directory, strategy: str) -> kt.Tuner:
    """The folder as a KerasTuner user opens it: the Tuner class of the campaign's strategy."""
    options = {"max_epochs": 2} if strategy == "hyperband" else {}
    return TUNERS[strategy](
        hypermodel=any_model,
        objective="val_accuracy",
        directory=str(directory),
        project_name=ENGINE_DIR,
        overwrite=False,
        **options,
    )


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory):
    """Each strategy's tiny campaign (2 seeds, so a score is a mean), run once, on demand."""
    done = {}

    def run(strategy: str):
        if strategy not in done:
            raw = tiny_campaign(
                campaign={"engine": "keras-tuner", "strategy": strategy, "max_trials": 3},
                train={"epochs": 2 if strategy == "hyperband" else 1},
            )
            if strategy != "grid":
                raw["space"]["dropout"] = {"low": 0.0, "high": 0.5}
            directory = tmp_path_factory.mktemp(strategy)
            chosen = run_campaign(parse_campaign(raw), directory, progress=False)
            done[strategy] = directory, chosen, records.load(directory).trials
        return done[strategy]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(TUNERS))
def test_keras_tuner_reloads_every_configuration(campaigns, capsys, strategy):
    directory, chosen, trials = campaigns(strategy)
    capsys.readouterr()
    tuner = reload_with_keras_tuner(directory, strategy)
    configurations = trials["trial"].nunique()
    assert len(tuner.oracle.trials) == configurations >= 2
    assert tuner.oracle.objective.direction == "max"
    numbers = [int(t.metrics.get_last_value(STUDY_TRIAL)) for t in tuner.oracle.trials.values()]
    assert sorted(numbers) == sorted(trials["trial"].unique())
    best = tuner.oracle.get_best_trials(1)[0]
    assert best.score == pytest.approx(chosen["validation"]["mean"])
    assert best.metrics.get_last_value(STUDY_TRIAL) == chosen["trial"]
    means = trials.groupby("trial")["best_val_accuracy"].mean()
    for trial in tuner.oracle.trials.values():
        assert trial.score == pytest.approx(means[trial.metrics.get_last_value(STUDY_TRIAL)])

    tuner.results_summary(num_trials=configurations)
    printed = capsys.readouterr().out
    assert len(re.findall(r"^Trial \w+ summary$", printed, flags=re.M)) == configurations
    shown = sorted(int(n) for n in re.findall(r"^study trial (\d+);", printed, flags=re.M))
    assert shown == sorted(numbers)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["grid", "hyperband"])
def test_get_best_models_returns_the_trained_models(campaigns, strategy):
    """With the campaign's HyperModel, KerasTuner's `get_best_models` loads each trial's
    checkpoint: the best seed's best-epoch weights, which score on validation what the records
    say of that seed's best epoch."""
    directory, chosen, trials = campaigns(strategy)
    tuner = TUNERS[strategy](
        hypermodel=study.keras_tuner_hypermodel(directory),
        objective="val_accuracy",
        directory=str(directory),
        project_name=ENGINE_DIR,
        overwrite=False,
        **({"max_epochs": 2} if strategy == "hyperband" else {}),
    )
    data = load_campaign_data(frozen_campaign(directory))
    best_trials = tuner.oracle.get_best_trials(2)
    for model, trial in zip(tuner.get_best_models(2), best_trials, strict=True):
        number = trial.metrics.get_last_value(STUDY_TRIAL)
        runs = trials[trials["trial"] == number]
        best = runs.loc[runs["best_val_accuracy"].idxmax()]
        scores = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
        assert scores["accuracy"] == pytest.approx(best["best_val_accuracy"], abs=1e-6)
        assert scores["loss"] == pytest.approx(best["best_val_loss"], rel=1e-5)
    assert best_trials[0].metrics.get_last_value(STUDY_TRIAL) == chosen["trial"]
    first = study.load(directory).model()  # the Python API: the same model, the same weights
    theirs_all = tuner.get_best_models(1)[0].get_weights()
    for mine, theirs in zip(first.get_weights(), theirs_all, strict=True):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.slow
def test_a_resumed_campaign_writes_only_the_missing_checkpoints(campaigns, tmp_path):
    import shutil

    directory, _, _ = campaigns("grid")
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    checkpoints = sorted((copy / ENGINE_DIR).glob(f"trial_*/{CHECKPOINT}"))
    assert len(checkpoints) == records.load(copy).trials["trial"].nunique()
    kept = checkpoints[0].stat().st_mtime_ns
    checkpoints[1].unlink()
    raw = tiny_campaign(campaign={"engine": "keras-tuner", "max_trials": 3}, train={"epochs": 1})
    run_campaign(parse_campaign(raw), copy, progress=False)  # resumes: trains nothing
    assert checkpoints[1].exists()
    assert checkpoints[0].stat().st_mtime_ns == kept


@pytest.mark.slow
def test_a_folder_without_the_tuner_file_gets_one_when_resumed(campaigns, tmp_path):
    """Folders started before the tuner file was written get it on their next session."""
    import shutil

    directory, _, _ = campaigns("grid")
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    (copy / ENGINE_DIR / TUNER_FILE).unlink()
    assert len(reload_with_keras_tuner(copy, "grid").oracle.trials) == 0  # the symptom
    shutil.rmtree(copy / ENGINE_DIR)
    shutil.copytree(directory / ENGINE_DIR, copy / ENGINE_DIR)
    (copy / ENGINE_DIR / TUNER_FILE).unlink()
    raw = tiny_campaign(campaign={"engine": "keras-tuner", "max_trials": 3}, train={"epochs": 1})
    run_campaign(parse_campaign(raw), copy, progress=False)  # resumes: trains nothing
    assert records.load(copy).trials.equals(records.load(directory).trials)
    assert len(reload_with_keras_tuner(copy, "grid").oracle.trials) == 4
