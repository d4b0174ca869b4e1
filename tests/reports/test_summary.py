import math

import pandas as pd

from reports.summary import at_the_edge, headline


def _configurations(rows):
    columns = [
        "trial",
        "param_dropout",
        "param_lr",
        "n_seeds",
        "objective_mean",
        "objective_std",
        "objective_low",
        "objective_high",
        "verdict",
        "rank",
    ]
    return pd.DataFrame(rows, columns=columns)


def _trials(chosen: int, test: float):
    return pd.DataFrame(
        {
            "trial": [1, 1, 2, 2, 3, 3],
            "seed": [0, 1] * 3,
            "status": ["COMPLETE"] * 5 + ["FAILED"],
            "test_accuracy": [math.nan] * 6,
        }
    ).assign(test_accuracy=lambda f: f["test_accuracy"].where(f["trial"] != chosen, test))


def test_headline_names_the_best_and_whether_the_runner_up_is_within_noise():
    configurations = _configurations(
        [
            [1, 0.0, 1e-3, 2, 0.90, 0.01, 0.88, 0.92, "good fit", 2],
            [2, 0.5, 1e-2, 2, 0.91, 0.01, 0.89, 0.93, "overfitting", 1],
            [3, 0.25, 1e-1, 2, math.nan, math.nan, math.nan, math.nan, "diverged", math.nan],
        ]
    )
    h = headline(_trials(2, 0.87), configurations, searched=["dropout", "lr"], objective="val_acc")
    assert h.best_trial == 2 and h.best_values == {"dropout": 0.5, "lr": 1e-2}
    assert h.verdict == "overfitting" and h.test == {"accuracy": 0.87}
    assert h.runs == {"COMPLETE": 5, "FAILED": 1}
    assert "not told apart" in h.sentences[0]
    assert any("dropout (0.5)" in s for s in h.sentences)  # the largest rate tried
    assert any("1 runs failed" in s for s in h.sentences)


def test_headline_says_when_the_choice_holds_and_when_nothing_completed():
    configurations = _configurations(
        [
            [1, 0.0, 1e-3, 3, 0.95, 0.01, 0.94, 0.96, "good fit", 1],
            [2, 0.5, 1e-2, 3, 0.80, 0.01, 0.79, 0.81, "underfitting", 2],
        ]
    )
    h = headline(_trials(1, 0.9), configurations, searched=["dropout"], objective="val_acc")
    assert "does not overlap" in h.sentences[0]
    nothing = headline(
        _trials(1, 0.9), configurations.assign(rank=math.nan), searched=[], objective="val_acc"
    )
    assert nothing.best_trial is None and "nothing can be chosen" in nothing.sentences[0]


def test_equal_means_are_named_a_tie():
    configurations = _configurations(
        [
            [1, 0.0, 1e-3, 3, 0.97, 0.003, 0.96, 0.98, "overfitting", 1],
            [2, 0.5, 1e-3, 3, 0.97, 0.0, 0.97, 0.97, "good fit", 1],
            [3, 0.25, 1e-3, 3, 0.96, 0.003, 0.95, 0.97, "good fit", 3],
        ]
    )
    h = headline(_trials(1, 0.9), configurations, searched=["dropout"], objective="val_acc")
    assert h.best_trial == 1
    assert h.sentences[0] == (
        "2 configurations tie for the best val_acc (0.97 on average over seeds; trials 1, 2): "
        "nothing here prefers one, and trial 1 is shown as the first of them."
    )


def test_one_seed_cannot_be_told_from_noise():
    configurations = _configurations(
        [[1, 0.0, 1e-3, 1, 0.95, math.nan, math.nan, math.nan, "good fit", 1]]
    )
    h = headline(_trials(1, 0.9), configurations, searched=["dropout"], objective="val_acc")
    assert "One seed" in h.sentences[0]


def test_zero_at_the_bottom_is_not_an_edge_but_the_top_is():
    configurations = pd.DataFrame({"param_dropout": [0.0, 0.25, 0.5], "param_units": [8, 16, 32]})
    best = configurations.iloc[0]  # dropout 0 (cannot go lower), units 8 (could)
    assert at_the_edge(configurations, best, searched=["dropout", "units"]) == ["units (8)"]
    two_values = configurations.iloc[:2]
    assert at_the_edge(two_values, two_values.iloc[1], searched=["dropout"]) == []
