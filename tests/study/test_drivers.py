"""One suite run against both engines: the same grid gives the same records."""

import numpy as np
import pandas as pd
import pytest

from study import records
from study.campaign import run_campaign
from study.config import ConfigError, parse_campaign
from tests.conftest import tiny_campaign

ENGINES = ["optuna", "keras-tuner"]


@pytest.fixture(scope="module")
def grid_runs(tmp_path_factory):
    """The tiny 2 x 2 grid with 2 seeds, run once by each engine."""
    out = {}
    for engine in ENGINES:
        directory = tmp_path_factory.mktemp(engine)
        chosen = run_campaign(
            parse_campaign(tiny_campaign(campaign={"engine": engine})), directory, progress=False
        )
        out[engine] = (directory, chosen, records.load(directory))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_grid_gives_one_row_per_configuration_and_seed(grid_runs, engine):
    _, _, (trials, epochs) = grid_runs[engine]
    assert len(trials) == 8
    assert not trials.duplicated(["trial", "seed"]).any()
    assert set(trials["status"]) == {"COMPLETE"}
    assert trials.groupby("trial")["seed"].apply(sorted).tolist() == [[0, 1]] * 4
    grid = trials.drop_duplicates("trial")[["param_dropout", "param_l2"]]
    assert sorted(map(tuple, grid.to_numpy())) == [(0.0, 0.0), (0.0, 1e-3), (0.5, 0.0), (0.5, 1e-3)]
    # Every fixed value is a column too.
    assert (trials["param_units"] == 16).all() and (trials["param_epochs"] == 2).all()
    for column in [
        "best_epoch",
        "best_val_accuracy",
        "best_train_loss",
        "final_val_loss",
        "final_train_accuracy",
        "duration_s",
        "failure",
    ]:
        assert column in trials
    assert list(epochs.columns[:3]) == ["trial", "seed", "epoch"]
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy"} <= set(epochs.columns)
    assert len(epochs) == 8 * 2  # full curves: 2 epochs each
    assert epochs.groupby(["trial", "seed"])["epoch"].apply(list).tolist() == [[1, 2]] * 8


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_the_default_trains_runs_of_one_architecture_together(grid_runs, engine):
    """population = "auto" by default: runs trained together share the population's wall time
    (duration_s is that time divided by the population's size)."""
    assert parse_campaign(tiny_campaign()).population == "auto"
    trials = grid_runs[engine][2].trials
    assert trials["duration_s"].nunique() < len(trials)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_best_and_final_columns_agree_with_the_curves(grid_runs, engine):
    _, _, (trials, epochs) = grid_runs[engine]
    for _, row in trials.iterrows():
        curve = epochs[(epochs.trial == row.trial) & (epochs.seed == row.seed)]
        best = curve.loc[curve["val_accuracy"].idxmax()]
        assert row.best_epoch == best.epoch
        assert row.best_val_loss == pytest.approx(best.val_loss)
        assert row.final_train_loss == pytest.approx(curve["train_loss"].iloc[-1])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_chosen_configuration_is_tested_once_per_seed(grid_runs, engine):
    _, chosen, (trials, _) = grid_runs[engine]
    means = trials.groupby("trial")["best_val_accuracy"].mean()
    assert chosen["trial"] == means.idxmax()
    tested = trials[trials["test_accuracy"].notna()]
    assert set(tested["trial"]) == {chosen["trial"]} and len(tested) == 2
    assert tested["test_accuracy"].between(0, 1).all()
    assert chosen["validation"]["mean"] == pytest.approx(means.max())


@pytest.mark.slow
def test_both_engines_train_identical_runs(grid_runs):
    """Seeds derive from the configuration, not the engine: the curves are the same."""
    frames = []
    for engine in ENGINES:
        trials, epochs = grid_runs[engine][2]
        params = trials.drop_duplicates("trial").set_index("trial")[["param_dropout", "param_l2"]]
        curves = epochs.join(params, on="trial").drop(columns="trial")
        frames.append(
            curves.sort_values(["param_dropout", "param_l2", "seed", "epoch"]).reset_index(
                drop=True
            )
        )
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=False, rtol=1e-5)


@pytest.mark.parametrize(
    "engine, strategy",
    [
        pytest.param("optuna", "random", marks=pytest.mark.slow),
        pytest.param("optuna", "quasi-random", marks=pytest.mark.slow),
        pytest.param("optuna", "tpe", marks=pytest.mark.slow),
        pytest.param("keras-tuner", "random", marks=pytest.mark.slow),
        pytest.param("keras-tuner", "bayesian", marks=pytest.mark.slow),
    ],
)
def test_sampling_strategies_run_max_trials(tmp_path, engine, strategy):
    raw = tiny_campaign(
        campaign={"engine": engine, "strategy": strategy, "max_trials": 3, "seeds": [0]},
        train={"epochs": 1},
    )
    raw["space"] = {
        "dropout": {"low": 0.0, "high": 0.5},
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    }
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    trials = records.load(tmp_path).trials
    assert len(trials) == 3 and trials["trial"].nunique() == 3
    assert trials["param_dropout"].between(0, 0.5).all()
    assert trials["param_learning_rate"].between(1e-4, 1e-2).all()


@pytest.mark.slow
def test_keras_tuner_hyperband_sets_the_epochs(tmp_path):
    raw = tiny_campaign(
        campaign={"engine": "keras-tuner", "strategy": "hyperband", "seeds": [0]},
        train={"epochs": 3},
    )
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    trials, epochs = records.load(tmp_path)
    assert set(trials["status"]) == {"COMPLETE"}
    assert trials["param_epochs"].max() == 3 and trials["param_epochs"].min() >= 1
    lengths = epochs.groupby("trial")["epoch"].max()
    assert (lengths == trials.set_index("trial")["param_epochs"]).all()


@pytest.mark.slow
def test_optuna_median_pruner_prunes_a_bad_configuration(tmp_path):
    raw = tiny_campaign(campaign={"pruner": "median", "seeds": [0, 1]}, train={"epochs": 4})
    raw["space"] = {"learning_rate": [1e-2, 5e-3, 1e-7]}  # the last barely learns
    run_campaign(parse_campaign(raw), tmp_path, progress=False)
    trials = records.load(tmp_path).trials
    slow = trials[trials["param_learning_rate"] == 1e-7]
    assert list(slow["status"]) == ["PRUNED"]  # its second seed is not trained
    assert slow["best_epoch"].notna().all()


def test_divergence_fails_the_configuration_and_the_campaign_goes_on(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype("float32")
    np.savez(tmp_path / "regression.npz", x=x, y=x @ np.array([100.0, 200.0, 300.0, 400.0]))
    raw = tiny_campaign(
        campaign={"seeds": [0], "objective": "val_mae"},
        data={"dataset": f"npz:{tmp_path / 'regression.npz'}"},
        train={"optimizer": "sgd", "epochs": 2, "batch_size": 32},
    )
    raw["space"] = {"learning_rate": [10.0, 1e-3]}  # 10 diverges on this regression
    run_campaign(parse_campaign(raw), tmp_path / "out", progress=False)
    trials = records.load(tmp_path / "out").trials.set_index("param_learning_rate")
    assert trials.loc[10.0, "status"] == "FAILED"
    assert trials.loc[10.0, "failure"].startswith("diverged: training loss")
    assert trials.loc[1e-3, "status"] == "COMPLETE"
    assert np.isfinite(trials.loc[1e-3, "test_mae"])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_can_be_asked_before_it_is_told(tmp_path, engine):
    """The boundary population training needs: ask up to K, train them together, tell them."""
    from study.drivers import make_driver
    from study.store import RecordStore

    campaign = parse_campaign(tiny_campaign(campaign={"engine": engine}))
    store = RecordStore(tmp_path / "records.sqlite")  # says which worker is alive
    driver = make_driver(campaign, tmp_path, liveness=store)
    driver.open()
    told, batch_sizes = [], []
    while True:
        batch = []
        while len(batch) < 3 and (proposal := driver.ask()) is not None:
            batch.append(proposal)
        if not batch:
            break
        batch_sizes.append(len(batch))
        for proposal in batch:
            driver.tell(proposal, 0.5, "COMPLETE")
            told.append((proposal.values["dropout"], proposal.values["l2"]))
    store.close()
    assert sorted(told) == sorted((v["dropout"], v["l2"]) for v in campaign.space.grid())
    assert max(batch_sizes) > 1


@pytest.mark.parametrize("shared", [False, True])
def test_optuna_enqueues_each_grid_point_once_however_often_opened(tmp_path, shared):
    """A new study enqueues its grid without looking for each point; a reopened one (or a
    worker's) enqueues none twice."""
    from study.drivers import make_driver
    from study.store import RecordStore

    campaign = parse_campaign(tiny_campaign())
    store = RecordStore(tmp_path / "records.sqlite")
    for _ in range(2):
        driver = make_driver(campaign, tmp_path, liveness=store, shared=shared)
        driver.open()
        points = [t.system_attrs["fixed_params"] for t in driver.study.get_trials()]
        driver.close()
        assert sorted(map(str, points)) == sorted(map(str, campaign.space.grid()))
    store.close()


@pytest.mark.parametrize(
    "builder, population",
    [
        pytest.param("mlp", 1, marks=pytest.mark.slow),
        pytest.param("mlp", "auto", marks=pytest.mark.slow),
        pytest.param("cnn", "auto", marks=pytest.mark.slow),
    ],
)
def test_a_mixed_bfloat16_campaign_records_curves(tmp_path, builder, population):
    """train.precision sets the dtype policy of sequential runs and populations alike."""
    import keras

    raw = tiny_campaign(
        campaign={"seeds": [0], "population": population},
        train={"epochs": 2, "precision": "mixed_bfloat16"},
    )
    if builder == "cnn":
        raw["model"] = {"builder": "cnn", "conv_blocks": 1, "filters": 4, "dense_units": 8}
    try:
        chosen = run_campaign(parse_campaign(raw), tmp_path, progress=False)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    trials, epochs = records.load(tmp_path)
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETE"}
    assert (trials["param_precision"] == "mixed_bfloat16").all()
    assert len(epochs) == 4 * 2 and np.isfinite(epochs[["train_loss", "val_loss"]]).all().all()
    assert epochs["val_accuracy"].between(0, 1).all()
    assert 0 <= chosen["test"][0]["accuracy"] <= 1


def test_precision_is_validated_naming_the_key():
    with pytest.raises(ConfigError, match="train.precision: 'float16' is not one of float32"):
        parse_campaign(tiny_campaign(train={"precision": "float16"}))
