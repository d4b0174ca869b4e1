"""The regularizer comparison on synthetic diagnoses with planted answers (no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports.compare import (
    FAMILIES,
    assign_families,
    compare_families,
    describe_comparison,
    family_of,
    hedges_g,
    holm,
    strength_of,
)
from reports.diagnostics import diagnose_runs

NAN = math.nan


@pytest.mark.parametrize(
    ("params", "family"),
    [
        ({}, "none"),
        ({"dropout": 0.0, "l1": 0.0, "l2": 0.0}, "none"),
        ({"dropout": NAN, "l2": NAN}, "none"),
        ({"dropout": 0.25}, "dropout"),
        ({"input_dropout": 0.1, "dropout": 0.0}, "dropout"),
        ({"block_dropout": 0.2}, "dropout"),
        ({"spatial_dropout": True, "block_dropout": 0.0}, "none"),
        ({"l1": 1e-5}, "l1"),
        ({"l2": 1e-4, "l1": 0.0}, "l2"),
        ({"l1": 1e-5, "l2": 1e-4}, "l1l2"),
        ({"dropout": 0.5, "l1": 1e-5}, "dropout+l1"),
        ({"dropout": 0.5, "l2": 1e-3}, "dropout+l2"),
        ({"input_dropout": 0.2, "l1": 1e-5, "l2": 1e-4}, "dropout+l1l2"),
        ({"regularizer": "none", "l2": 1e-3}, "none"),
        ({"regularizer": "l2", "l1": NAN, "l2": 1e-4}, "l2"),
        ({"regularizer": "l2"}, "l2"),
        ({"regularizer": "l2", "l2": 0.0}, "none"),
        ({"regularizer": "l1l2", "l1": 0.0, "l2": 1e-4}, "l2"),
        ({"regularizer": "l1l2", "l1": 1e-5, "l2": 1e-4, "dropout": 0.25}, "dropout+l1l2"),
        ({"regularizer": None, "l1": 1e-5}, "l1"),
        ({"regularizer": NAN, "l2": 1e-3}, "l2"),
        ({"regularizer": "l1", "l1": 1e-5, "dropout": 0.5}, "dropout+l1"),
    ],
)
def test_family_of(params, family):
    assert family_of(params) == family
    assert family in FAMILIES


def test_family_of_rejects_an_unknown_regularizer():
    with pytest.raises(ValueError, match="regularizer"):
        family_of({"regularizer": "l3"})


@pytest.mark.parametrize(
    ("params", "strength"),
    [
        ({"dropout": 0.0, "l2": 0.0}, "none"),
        ({"dropout": 0.25, "l2": 0.001}, "dropout=0.25, l2=0.001"),
        ({"regularizer": "l1", "l1": 1e-5, "l2": NAN}, "l1=1e-05"),
        ({"regularizer": "l2"}, "l2"),
        (
            {"input_dropout": 0.1, "dropout": 0.0, "l1": 1e-5, "l2": 1e-4},
            "input_dropout=0.1, l1=1e-05, l2=0.0001",
        ),
    ],
)
def test_strength_of(params, strength):
    assert strength_of(params) == strength


def test_assign_families_reads_the_param_columns():
    frame = pd.DataFrame(
        {
            "trial": [1, 2, 3, 4],
            "param_dropout": [0.0, 0.5, 0.0, 0.5],
            "param_regularizer": ["none", "none", "l2", None],
            "param_l2": [NAN, NAN, 1e-4, 1e-3],
            "objective": [0.9] * 4,  # not a param: ignored
        }
    )
    families = assign_families(frame)
    assert list(families) == ["none", "dropout", "l2", "dropout+l2"]
    assert families.index.equals(frame.index)


# -- synthetic diagnoses -------------------------------------------------------------------


def diagnosis(
    configurations: dict[int, dict[str, float]],
    means: dict[int, float],
    *,
    n_seeds: int = 8,
    noise: float = 0.005,
    seed: int = 0,
    failed: set[int] | frozenset[int] = frozenset(),
) -> pd.DataFrame:
    """One row per configuration x seed: objective = planted mean + Gaussian seed noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for trial, params in configurations.items():
        for s in range(n_seeds):
            value = means[trial] + rng.normal(0, noise)
            rows.append(
                {
                    "trial": trial,
                    "seed": s,
                    "status": "FAILED" if trial in failed else "COMPLETE",
                    "failure": "out of memory" if trial in failed else "",
                    **{f"param_{k}": v for k, v in params.items()},
                    "objective": NAN if trial in failed else value,
                    "gap_loss_best": 0.1 - params.get("l2", 0.0) * 50 + rng.normal(0, 0.01),
                    "verdict": "good fit",
                }
            )
    return pd.DataFrame(rows)


# Dropout x L2: the baseline, two dropout rates, three L2 strengths, one dropout+l2.
GRID = {
    1: {"dropout": 0.0, "l2": 0.0},
    2: {"dropout": 0.25, "l2": 0.0},
    3: {"dropout": 0.5, "l2": 0.0},
    4: {"dropout": 0.0, "l2": 1e-4},
    5: {"dropout": 0.0, "l2": 1e-3},
    6: {"dropout": 0.0, "l2": 1e-2},
    7: {"dropout": 0.5, "l2": 1e-3},
}
NULL = dict.fromkeys(GRID, 0.90)


def by_family(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("family")


@pytest.mark.parametrize("test", ["welch", "mann-whitney"])
def test_a_planted_improvement_is_found_and_significant(test):
    means = NULL | {5: 0.95, 4: 0.91}  # l2=1e-3 is the best L2 strength, 5 points above
    table = compare_families(diagnosis(GRID, means), direction="maximize", test=test)
    rows = by_family(table)
    assert set(rows.index) == {"none", "dropout", "l2", "dropout+l2"}
    l2 = rows.loc["l2"]
    assert l2["best_trial"] == 5 and l2["strength"] == "l2=0.001"
    assert l2["n_configurations"] == 3 and l2["n_seeds"] == 8
    assert l2["difference"] == pytest.approx(0.05, abs=0.01)
    assert l2["effect_size"] > 2
    assert l2["p_value"] < 0.01 and l2["p_holm"] >= l2["p_value"]
    assert bool(l2["significant"]) and l2["rank"] == 1
    assert l2["note"] == "better than the baseline beyond seed noise"
    assert l2["objective_low"] < l2["objective_mean"] < l2["objective_high"]
    assert table.iloc[0]["family"] == "l2"
    for family in ("dropout", "dropout+l2"):
        assert not rows.loc[family, "significant"]
        assert rows.loc[family, "note"] == "no difference beyond seed noise"
    base = rows.loc["none"]
    assert base["is_baseline"] and base["note"] == "baseline"
    assert all(math.isnan(base[c]) for c in ("difference", "effect_size", "p_value", "p_holm"))
    assert not base["significant"]


def test_a_planted_lower_loss_counts_as_better_when_minimizing():
    means = {t: 0.30 for t in GRID} | {2: 0.22}  # dropout=0.25 lowers the loss
    table = compare_families(diagnosis(GRID, means, noise=0.01), direction="minimize")
    dropout = by_family(table).loc["dropout"]
    assert dropout["best_trial"] == 2 and dropout["strength"] == "dropout=0.25"
    assert dropout["difference"] == pytest.approx(0.08, abs=0.015)
    assert dropout["effect_size"] > 2 and bool(dropout["significant"])
    assert dropout["rank"] == 1


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_planted_harm_has_a_negative_difference(direction):
    worse = 0.80 if direction == "maximize" else 1.00
    means = {1: 0.90, 2: worse, 3: worse}
    table = compare_families(diagnosis({t: GRID[t] for t in (1, 2, 3)}, means), direction=direction)
    dropout = by_family(table).loc["dropout"]
    assert dropout["difference"] == pytest.approx(-0.10, abs=0.01)
    assert dropout["effect_size"] < -2 and bool(dropout["significant"])
    assert dropout["note"] == "worse than the baseline beyond seed noise"
    assert list(table["family"]) == ["none", "dropout"]


@pytest.mark.parametrize("test", ["welch", "mann-whitney"])
def test_no_planted_difference_is_not_significant(test):
    table = compare_families(diagnosis(GRID, NULL, seed=3), direction="maximize", test=test)
    assert not table["significant"].any()
    tested = table[~table["is_baseline"]]
    assert (tested["note"] == "no difference beyond seed noise").all()
    assert tested["p_value"].between(0, 1).all()
    assert (tested["difference"].abs() < 0.01).all()


def test_too_few_seeds_is_said_and_never_significant():
    means = NULL | {5: 0.99}
    table = compare_families(diagnosis(GRID, means, n_seeds=2, noise=0.001), direction="maximize")
    l2 = by_family(table).loc["l2"]
    assert l2["difference"] > 0.05 and l2["rank"] == 1
    assert not l2["significant"]
    assert l2["note"] == "too few seeds to tell (2 per family; need 3)"
    sentences = " ".join(describe_comparison(table))
    assert "too few" in sentences and "l2" in sentences


def test_min_seeds_is_an_option():
    means = NULL | {5: 0.99}
    table = compare_families(
        diagnosis(GRID, means, n_seeds=2, noise=0.001), direction="maximize", min_seeds=2
    )
    assert by_family(table).loc["l2", "note"] != "too few seeds to tell (2 per family; need 3)"


def test_one_seed_only_gives_no_error_and_no_test():
    table = compare_families(diagnosis(GRID, NULL | {5: 0.95}, n_seeds=1), direction="maximize")
    assert table["p_value"].isna().all() and table["effect_size"].isna().all()
    assert table["objective_std"].isna().all() and table["objective_low"].isna().all()
    assert not table["significant"].any()
    assert table.iloc[0]["family"] == "l2"
    assert by_family(table).loc["l2", "note"] == "too few seeds to tell (1 per family; need 3)"
    assert describe_comparison(table)


def test_missing_baseline():
    configurations = {t: GRID[t] for t in (2, 3, 4, 5)}
    table = compare_families(diagnosis(configurations, NULL), direction="maximize")
    assert set(table["family"]) == {"dropout", "l2"}
    assert (table["note"] == "no baseline in this campaign").all()
    assert table[["difference", "effect_size", "p_value", "p_holm"]].isna().all().all()
    assert not table["significant"].any()
    assert table["rank"].notna().all()
    assert any("no 'none' baseline" in s for s in describe_comparison(table))


def test_another_baseline_can_be_named():
    means = NULL | {2: 0.95}
    table = compare_families(diagnosis(GRID, means), direction="maximize", baseline="dropout")
    rows = by_family(table)
    assert rows.loc["dropout", "is_baseline"]
    assert rows.loc["none", "difference"] == pytest.approx(-0.05, abs=0.01)


def test_a_family_whose_configurations_all_failed():
    table = compare_families(
        diagnosis(GRID, NULL | {5: 0.95}, failed={4, 5, 6}), direction="maximize"
    )
    l2 = by_family(table).loc["l2"]
    assert l2["n_seeds"] == 0 and math.isnan(l2["best_trial"]) and math.isnan(l2["rank"])
    assert math.isnan(l2["objective_mean"]) and math.isnan(l2["p_value"])
    assert l2["note"] == "no configuration completed every seed"
    assert table.iloc[-1]["family"] == "l2"  # unranked rows last
    # Holm counts only the families that were tested.
    assert table["p_holm"].notna().sum() == 2


def test_a_configuration_with_a_failed_seed_cannot_be_the_family_best():
    frame = diagnosis(GRID, NULL | {5: 0.99, 4: 0.95})
    frame.loc[(frame["trial"] == 5) & (frame["seed"] == 0), "status"] = "FAILED"
    l2 = by_family(compare_families(frame, direction="maximize")).loc["l2"]
    assert l2["best_trial"] == 4


def test_the_baseline_without_complete_configurations():
    table = compare_families(diagnosis(GRID, NULL, failed={1}), direction="maximize")
    tested = table[~table["is_baseline"]]
    assert (tested["note"] == "the baseline has no configuration complete on every seed").all()
    assert tested["p_value"].isna().all()


@pytest.mark.parametrize(("option", "value"), [("direction", "max"), ("test", "t-test")])
def test_bad_options_are_rejected(option, value):
    options = {"direction": "maximize"} | {option: value}
    with pytest.raises(ValueError, match=option):
        compare_families(diagnosis(GRID, NULL, n_seeds=2), **options)


def test_an_empty_diagnosis():
    empty = diagnosis(GRID, NULL).iloc[0:0]
    table = compare_families(empty, direction="maximize")
    assert table.empty and "p_holm" in table
    assert describe_comparison(table)


# -- statistics ----------------------------------------------------------------------------


def test_holm_is_monotone_and_never_below_the_raw_p_values():
    raw = np.array([0.01, 0.04, 0.03, NAN, 0.5, 0.002])
    adjusted = holm(raw)
    assert math.isnan(adjusted[3])
    finite = ~np.isnan(raw)
    assert (adjusted[finite] >= raw[finite]).all() and (adjusted[finite] <= 1).all()
    order = np.argsort(raw[finite])
    assert (np.diff(adjusted[finite][order]) >= 0).all()
    # m = 5 tested: 0.002*5, 0.01*4, 0.03*3, max(0.09, 0.04*2), max(0.09, 0.5*1)
    assert adjusted[finite] == pytest.approx([0.04, 0.09, 0.09, 0.5, 0.01])


def test_holm_against_the_textbook_example():
    assert holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    assert holm(np.array([0.9, 0.8])) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm(np.array([0.02, 0.3])) == pytest.approx([0.04, 0.3])


def test_hedges_g():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0])
    pooled = math.sqrt((3 * a.var(ddof=1) + 2 * b.var(ddof=1)) / 5)
    expected = (1 - 3 / (4 * 7 - 9)) * (a.mean() - b.mean()) / pooled
    assert hedges_g(a, b) == pytest.approx(expected)
    assert hedges_g(b, a) == pytest.approx(-expected)
    assert math.isnan(hedges_g(a, b[:1]))
    assert hedges_g(np.ones(3), np.ones(3)) == 0.0


# -- sentences -----------------------------------------------------------------------------


def test_describe_comparison_names_the_winner_the_margin_and_the_bias():
    table = compare_families(diagnosis(GRID, NULL | {5: 0.95}), direction="maximize")
    sentences = describe_comparison(table)
    assert sentences[0].startswith("The best family is l2 (l2=0.001)")
    assert "95% interval" in sentences[0]
    assert sentences[1].startswith("It beats the baseline (none, objective 0.8979) by 0.05")
    assert sentences[1].endswith(": more than seed noise.")
    assert any("same validation scores" in s for s in sentences)
    assert all(isinstance(s, str) and s.endswith(".") for s in sentences)


def test_describe_comparison_calls_a_difference_within_seed_noise_a_tie():
    table = compare_families(diagnosis(GRID, NULL, seed=3), direction="maximize")
    top = table[~table["is_baseline"]].iloc[0]
    assert top["difference"] > 0 and not top["significant"]  # the case this test is about
    sentences = " ".join(describe_comparison(table))
    assert sentences.startswith("No family beats the baseline (none, objective 0.8988)")
    assert f"{top['family']} ({top['strength']}), is above it by" in sentences
    assert "within seed noise: a tie" in sentences
    assert "best family" not in sentences and "It beats" not in sentences


def test_describe_comparison_names_equal_means_a_tie_not_a_win_by_0():
    """The default campaign's case: two families score exactly the baseline's mean."""
    frame = diagnosis({t: GRID[t] for t in (1, 2, 5, 7)}, dict.fromkeys(GRID, 0.97), n_seeds=3)
    baseline = frame.loc[frame["trial"] == 1, "objective"].to_numpy()
    for trial in (2, 7):  # dropout and dropout+l2: the baseline's very values
        frame.loc[frame["trial"] == trial, "objective"] = baseline
    frame.loc[frame["trial"] == 5, "objective"] -= 0.01  # l2: below
    sentences = describe_comparison(compare_families(frame, direction="maximize"))
    assert sentences[0] == (
        f"No family beats the baseline (none, objective {baseline.mean():.4g}): "
        "dropout (dropout=0.25) and dropout+l2 (dropout=0.5, l2=0.001) tie with it "
        "(equal means over 3 seeds)."
    )
    text = " ".join(sentences)
    assert "by 0" not in text and "best family" not in text


def test_describe_comparison_when_every_value_is_equal():
    table = compare_families(diagnosis(GRID, NULL, noise=0.0), direction="maximize")
    assert (table["note"] == "cannot test: no spread over seeds").sum() == 3
    sentence = describe_comparison(table)[0]
    assert sentence.startswith("No family beats the baseline (none, objective 0.9): ")
    assert "tie with it (equal means over 8 seeds)" in sentence


def test_describe_comparison_when_the_baseline_wins():
    means = dict.fromkeys(GRID, 0.80) | {1: 0.90, 2: 0.85}
    sentences = describe_comparison(compare_families(diagnosis(GRID, means), direction="maximize"))
    assert sentences[0].startswith("No regularizer family beats the baseline (none, objective ")
    assert "on average: the closest, dropout (dropout=0.25), is 0.0" in sentences[0]
    assert "Worse than the baseline beyond seed noise: dropout, l2, dropout+l2." in sentences
    assert not any("best" in s for s in sentences)


def test_describe_comparison_lists_further_families_beyond_noise():
    means = NULL | {5: 0.96, 2: 0.95}
    sentences = describe_comparison(compare_families(diagnosis(GRID, means), direction="maximize"))
    assert sentences[0].startswith("The best family is l2 (l2=0.001)")
    assert "Better than the baseline beyond seed noise: l2, dropout." in sentences


def test_describe_comparison_without_a_complete_baseline_names_no_best():
    table = compare_families(diagnosis(GRID, NULL | {5: 0.95}, failed={1}), direction="maximize")
    sentences = describe_comparison(table)
    assert sentences[0] == (
        "The baseline (none) has no configuration complete on every seed, so no family was "
        "tested against it."
    )
    assert sentences[1].startswith("The highest on average is l2 (l2=0.001): objective 0.95")
    assert not any("best family" in s for s in sentences)


# -- from trials and epochs ----------------------------------------------------------------


def test_from_records_frames_to_a_comparison():
    """diagnose_runs then compare_families on record-shaped frames (4 seeds, planted L2 win)."""
    rng = np.random.default_rng(7)
    trial_rows, epoch_rows = [], []
    grid = {1: (0.0, 0.0), 2: (0.5, 0.0), 3: (0.0, 1e-3)}
    final_accuracy = {1: 0.90, 2: 0.90, 3: 0.96}
    for trial, (dropout, l2) in grid.items():
        for seed in range(4):
            top = final_accuracy[trial] + rng.normal(0, 0.003)
            val_accuracy = list(np.linspace(0.5, top, 6))
            val_loss = list(np.linspace(1.0, 0.3, 6))
            for e in range(6):
                epoch_rows.append(
                    {
                        "trial": trial,
                        "seed": seed,
                        "epoch": e + 1,
                        "train_loss": val_loss[e] - 0.05,
                        "val_loss": val_loss[e],
                        "train_accuracy": val_accuracy[e] + 0.01,
                        "val_accuracy": val_accuracy[e],
                    }
                )
            trial_rows.append(
                {
                    "trial": trial,
                    "seed": seed,
                    "status": "COMPLETE",
                    "param_dropout": dropout,
                    "param_l2": l2,
                    "best_epoch": 6,
                    "best_val_accuracy": top,
                    "failure": "",
                }
            )
    diagnosed = diagnose_runs(
        pd.DataFrame(trial_rows), pd.DataFrame(epoch_rows), objective="val_accuracy"
    )
    assert diagnosed["gap_loss_best"].to_numpy() == pytest.approx(0.05)
    table = compare_families(diagnosed, direction="maximize")
    assert table.iloc[0]["family"] == "l2" and set(table["family"]) == {"l2", "none", "dropout"}
    l2 = table.iloc[0]
    assert bool(l2["significant"]) and l2["difference"] == pytest.approx(0.06, abs=0.01)
    assert l2["gap_mean"] == pytest.approx(0.05)


@pytest.mark.parametrize("test", ["welch", "mann-whitney"])
def test_p_values_are_scipy_unpaired_tests_on_the_chosen_configurations(test):
    from scipy import stats

    frame = diagnosis(GRID, NULL | {5: 0.93})
    frame.loc[frame["trial"] == 5, "objective"] += np.linspace(-0.03, 0.03, 8)  # unequal spread
    l2 = by_family(compare_families(frame, direction="maximize", test=test)).loc["l2"]
    ours = frame.loc[frame["trial"] == 5, "objective"].to_numpy()
    base = frame.loc[frame["trial"] == 1, "objective"].to_numpy()
    if test == "welch":
        expected = stats.ttest_ind(ours, base, equal_var=False).pvalue
    else:
        expected = stats.mannwhitneyu(ours, base, alternative="two-sided").pvalue
    assert l2["p_value"] == pytest.approx(expected)
    assert l2["objective_std"] == pytest.approx(ours.std(ddof=1))


def test_pooled_diagnoses_keep_every_row_and_renumber_trials_apart():
    from reports.compare import pool_diagnoses

    first = pd.DataFrame({"trial": [1, 1, 2], "seed": [0, 1, 0]})
    second = pd.DataFrame({"trial": [1, 2], "seed": [0, 0]})
    pooled = pool_diagnoses([first, second])
    assert len(pooled) == 5
    assert pooled["trial"].tolist() == [1, 1, 2, 4, 5]
    assert not pooled.duplicated(["trial", "seed"]).any()


@pytest.mark.parametrize("df", [1.0, 1.7, 3.0, 8.4, 29.5, 250.0])
@pytest.mark.parametrize("t", [0.0, 0.05, -0.8, 1.96, 4.5, -12.0, 60.0])
def test_student_t_p_values_are_scipys(df, t):
    from scipy.special import stdtr

    from reports.compare import student_t_two_sided

    assert student_t_two_sided(t, df) == pytest.approx(2 * stdtr(df, -abs(t)), rel=1e-10, abs=0)
