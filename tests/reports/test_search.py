"""The search analysis on synthetic trials frames with known answers (no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports.search import (
    MIN_CONFIGURATIONS,
    best_so_far,
    budget_curve,
    configuration_objectives,
    hyperparameter_importance,
)

NAN = math.nan


def trials_frame(values: dict[int, list[float]], *, failed: dict[int, int] | None = None):
    """One row per (trial, seed) with `best_val_accuracy`; `failed` maps trial -> seed FAILED."""
    rows = []
    for trial, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            status = "FAILED" if (failed or {}).get(trial) == seed else "COMPLETE"
            rows.append(
                {"trial": trial, "seed": seed, "status": status, "best_val_accuracy": value}
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("direction", "values", "expected"),
    [
        ("maximize", [0.5, 0.7, 0.6, 0.9, 0.8], [0.5, 0.7, 0.7, 0.9, 0.9]),
        ("minimize", [3.0, 2.0, 4.0, 1.0, 1.5], [3.0, 2.0, 2.0, 1.0, 1.0]),
    ],
)
def test_best_so_far_follows_the_direction(direction, values, expected):
    # two seeds each, v - 0.1 and v + 0.1: the mean is v; rows out of trial order
    frame = trials_frame({t + 1: [v - 0.1, v + 0.1] for t, v in enumerate(values)})
    frame = frame.sample(frac=1.0, random_state=0)
    table = best_so_far(frame, objective="val_accuracy", direction=direction)
    assert list(table.columns) == ["trial", "objective", "best_so_far"]
    assert table["trial"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(table["objective"], values)
    np.testing.assert_allclose(table["best_so_far"], expected)


def test_best_so_far_skips_configurations_not_complete_on_every_seed():
    frame = trials_frame({1: [0.9, 0.8], 2: [0.5, 0.7], 3: [0.99, 0.1]}, failed={1: 1, 3: 0})
    table = best_so_far(frame, objective="val_accuracy", direction="maximize")
    assert table["objective"].isna().tolist() == [True, False, True]
    np.testing.assert_allclose(table["best_so_far"], [NAN, 0.6, 0.6])


def test_a_nan_objective_on_a_complete_run_counts_as_not_complete():
    frame = trials_frame({1: [0.6, NAN], 2: [0.5, 0.5]})
    assert configuration_objectives(frame, objective="val_accuracy").isna().tolist() == [
        True,
        False,
    ]


def test_best_so_far_of_nothing_is_empty():
    table = best_so_far(trials_frame({}), objective="val_accuracy", direction="maximize")
    assert table.empty and list(table.columns) == ["trial", "objective", "best_so_far"]


def test_an_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        best_so_far(trials_frame({1: [0.5]}), objective="val_accuracy", direction="max")


def planted(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """`lr` decides the objective; `units`, `act` (categorical) and a conditional `l2` are noise;
    `batch` is constant."""
    rng = np.random.default_rng(seed)
    lr = rng.uniform(0, 1, n)
    frame = pd.DataFrame(
        {
            "trial": np.arange(1, n + 1),
            "seed": 0,
            "status": "COMPLETE",
            "param_lr": lr,
            "param_units": rng.integers(8, 64, n),
            "param_act": rng.choice(["relu", "tanh", "gelu"], n),
            "param_l2": np.where(rng.uniform(size=n) < 0.5, NAN, rng.uniform(0, 1e-3, n)),
            "param_batch": 64,
            "best_val_loss": 3.0 * lr + rng.normal(0, 0.05, n),
        }
    )
    return frame


def test_importance_ranks_the_planted_parameter_first():
    searched = ["lr", "units", "act", "l2", "batch"]
    table = hyperparameter_importance(planted(), objective="val_loss", searched=searched, seed=0)
    assert list(table.columns) == ["param", "importance"]
    assert table["param"].iloc[0] == "lr"
    assert table["importance"].iloc[0] > 0.8
    assert "batch" not in set(table["param"])  # constant: nothing to explain
    assert set(table["param"]) == {"lr", "units", "act", "l2"}
    assert table["importance"].sum() == pytest.approx(1.0)
    assert (table["importance"].diff().dropna() <= 0).all()


def test_importance_is_reproducible_with_its_seed():
    frame, searched = planted(), ["lr", "units", "act", "l2"]
    a = hyperparameter_importance(frame, objective="val_loss", searched=searched, seed=3)
    b = hyperparameter_importance(frame, objective="val_loss", searched=searched, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_importance_uses_only_complete_runs():
    frame = planted()
    # failed runs whose recorded value says the opposite of the planted relation are ignored
    bad = frame.head(15).assign(status="FAILED", best_val_loss=lambda f: -10.0 * f["param_lr"])
    table = hyperparameter_importance(
        pd.concat([frame.iloc[15:], bad]), objective="val_loss", searched=["lr", "units"]
    )
    assert table["param"].iloc[0] == "lr"


@pytest.mark.parametrize(
    ("frame", "searched"),
    [
        (planted().head(MIN_CONFIGURATIONS - 1), ["lr", "units"]),  # too few configurations
        (planted(), ["batch"]),  # nothing varies
        (planted(), ["missing"]),  # no such column
        (planted().drop(columns="best_val_loss"), ["lr"]),  # no objective recorded
        (planted().assign(status="FAILED"), ["lr"]),  # nothing complete
    ],
)
def test_importance_is_empty_when_it_cannot_tell(frame, searched):
    table = hyperparameter_importance(frame, objective="val_loss", searched=searched)
    assert table.empty and list(table.columns) == ["param", "importance"]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_budget_curve_is_monotone_and_ends_at_the_best(direction):
    values = [0.3, 0.9, 0.5, 0.7, 0.1, 0.6]
    frame = trials_frame({t + 1: [v] for t, v in enumerate(values)})
    curve = budget_curve(frame, objective="val_accuracy", direction=direction, n_boot=300, seed=1)
    assert list(curve.columns) == ["budget", "median", "low", "high"]
    assert curve["budget"].tolist() == list(range(1, len(values) + 1))
    best, worst = (
        (max(values), min(values)) if direction == "maximize" else (min(values), max(values))
    )
    sign = 1 if direction == "maximize" else -1
    for column in ("median", "low", "high"):
        assert (sign * curve[column].diff().dropna() >= 0).all(), column
    assert curve.iloc[-1][["median", "low", "high"]].tolist() == [best] * 3
    # one configuration at random: the band spans the worst to the best of them
    assert curve.iloc[0]["low"] == worst and curve.iloc[0]["high"] == best
    assert (sign * (curve["high"] - curve["low"]) >= 0).all()


def test_budget_curve_counts_failed_configurations_as_finding_nothing():
    frame = trials_frame({1: [0.8], 2: [0.4], 3: [0.9]}, failed={3: 0})
    curve = budget_curve(frame, objective="val_accuracy", direction="maximize", n_boot=400)
    assert len(curve) == 3  # the failed configuration used up budget
    first = curve.iloc[0]
    assert math.isnan(first["low"]) and first["high"] == 0.8  # a third of draws found nothing
    assert curve.iloc[-1][["median", "low", "high"]].tolist() == [0.8] * 3


def test_budget_curve_is_reproducible_and_depends_on_its_seed():
    values = np.random.default_rng(0).uniform(size=30)
    frame = trials_frame({t + 1: [v] for t, v in enumerate(values)})
    a, b, c = (
        budget_curve(frame, objective="val_accuracy", direction="maximize", n_boot=200, seed=s)
        for s in (7, 7, 8)
    )
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_budget_curve_of_nothing_complete_is_empty():
    frame = trials_frame({1: [0.5]}, failed={1: 0})
    curve = budget_curve(frame, objective="val_accuracy", direction="maximize")
    assert curve.empty and list(curve.columns) == ["budget", "median", "low", "high"]
