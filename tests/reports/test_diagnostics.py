"""Diagnostics on synthetic curves whose answers are known (no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports.diagnostics import (
    DIVERGED,
    GOOD_FIT,
    INCOMPLETE,
    OVERFITTING,
    PATIENCE,
    UNDERFITTING,
    VERDICTS,
    bootstrap_interval,
    diagnose_runs,
    most_common_verdict,
    overfitting_onset,
    summarize_configurations,
    verdict_of,
)

# Validation loss falls to its minimum at epoch 7 of 12, then rises every epoch.
VAL_MIN_AT_7 = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.40, 0.43, 0.47, 0.52, 0.58, 0.65]
TRAIN_FALLING = [0.9, 0.7, 0.5, 0.4, 0.33, 0.28, 0.24, 0.2, 0.17, 0.14, 0.12, 0.10]
# Still falling by more than 5% over the last 3 epochs: no onset, underfitting.
VAL_FALLING = [1.0, 0.8, 0.65, 0.55, 0.48, 0.42, 0.37, 0.33, 0.30, 0.27, 0.245, 0.22]
# Converged: flat within 1% after epoch 6.
VAL_FLAT = [1.0, 0.6, 0.45, 0.40, 0.38, 0.370, 0.371, 0.369, 0.370, 0.372, 0.371, 0.370]
TRAIN_FLAT = [0.9, 0.55, 0.42, 0.37, 0.35, 0.345, 0.343, 0.342, 0.341, 0.340, 0.339, 0.339]


def run_frames(
    runs: dict[tuple[int, int], dict[str, list[float]]],
    *,
    params: dict[int, dict[str, object]] | None = None,
    status: dict[tuple[int, int], str] | None = None,
    failure: dict[tuple[int, int], str] | None = None,
    objective: str = "val_accuracy",
    extra_trials: list[dict[str, object]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials and epochs frames as study.records.load gives them, from per-run curves."""
    trial_rows, epoch_rows = [], []
    for (trial, seed), curves in runs.items():
        n = len(curves["val_loss"])
        for e in range(n):
            epoch_rows.append(
                {"trial": trial, "seed": seed, "epoch": e + 1}
                | {k: v[e] for k, v in curves.items()}
            )
        values = np.asarray(curves.get(objective, curves["val_loss"]), dtype=float)
        scores = np.where(np.isfinite(values), values, np.nan)
        pick = np.nanargmin if objective.endswith(("loss", "mae")) else np.nanargmax
        best = int(pick(scores)) if np.isfinite(values).any() else None
        row = {
            "trial": trial,
            "seed": seed,
            "status": (status or {}).get((trial, seed), "COMPLETE"),
            **{f"param_{k}": v for k, v in (params or {}).get(trial, {}).items()},
            "best_epoch": math.nan if best is None else best + 1,
            **{f"best_{k}": (v[best] if best is not None else math.nan) for k, v in curves.items()},
            **{f"final_{k}": v[-1] for k, v in curves.items()},
            "duration_s": 1.0,
            "failure": (failure or {}).get((trial, seed), ""),
        }
        trial_rows.append(row)
    trial_rows += extra_trials or []
    return pd.DataFrame(trial_rows), pd.DataFrame(epoch_rows)


def accuracy_from(loss: list[float]) -> list[float]:
    return [1.0 - x / 2 for x in loss]


# -- onset ---------------------------------------------------------------------------------


def test_minimum_at_7_of_12_rising_after_gives_onset_7():
    assert overfitting_onset(VAL_MIN_AT_7) == 7


@pytest.mark.parametrize(
    "curve",
    [
        pytest.param(VAL_FALLING, id="still falling"),
        pytest.param(VAL_FLAT, id="flat within the tolerance"),
        pytest.param([1.0, 0.5, 0.3, 0.2, 0.25, 0.3], id="minimum 2 epochs before the end"),
        pytest.param([1.0, 0.5, 0.3, 0.4, 0.5, 0.45, 0.3005], id="rose, then came back down"),
        pytest.param([1.0, 0.5, math.nan, 0.4, 0.5, 0.6], id="non-finite"),
        pytest.param([], id="empty"),
        pytest.param([0.5], id="one epoch"),
    ],
)
def test_no_onset(curve):
    assert overfitting_onset(curve) is None


def test_onset_needs_patience_later_epochs_above_the_minimum():
    curve = [1.0, 0.5, 0.3, 0.32, 0.35, 0.4]  # minimum at 3, three later epochs above it
    assert overfitting_onset(curve, patience=3) == 3
    assert overfitting_onset(curve, patience=4) is None
    assert PATIENCE == 3


def test_a_plateau_epoch_after_the_minimum_does_not_hide_the_onset():
    curve = [1.0, 0.5, 0.3, 0.301, 0.35, 0.4, 0.45]  # epoch 4 within the 1% tolerance
    assert overfitting_onset(curve) == 3


def test_onset_rejects_a_patience_below_one():
    with pytest.raises(ValueError, match="patience"):
        overfitting_onset(VAL_MIN_AT_7, patience=0)


# -- verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "val", "options", "expected"),
    [
        (TRAIN_FALLING, VAL_MIN_AT_7, {}, OVERFITTING),
        (TRAIN_FALLING, VAL_FALLING, {}, UNDERFITTING),
        (TRAIN_FLAT, VAL_FLAT, {}, GOOD_FIT),
        (TRAIN_FLAT, VAL_FLAT, {"train_accuracy": [0.3] * 12}, UNDERFITTING),
        (TRAIN_FLAT, VAL_FLAT, {"train_accuracy": [0.9] * 12}, GOOD_FIT),
        (TRAIN_FALLING, VAL_MIN_AT_7[:6] + [math.nan] * 6, {}, DIVERGED),
        ([0.5, math.inf, 0.4], [0.6, 0.5, 0.4], {}, DIVERGED),
        (TRAIN_FLAT, VAL_FLAT, {"failure": "diverged: loss is nan at epoch 3"}, DIVERGED),
        (TRAIN_FLAT, VAL_FLAT, {"failure": "Diverged (inf)", "status": "FAILED"}, DIVERGED),
        (TRAIN_FLAT[:4], VAL_FLAT[:4], {"status": "PRUNED"}, INCOMPLETE),
        ([], [], {"status": "FAILED", "failure": "out of memory"}, INCOMPLETE),
        ([], [], {"status": "RUNNING"}, INCOMPLETE),
        ([], [], {}, INCOMPLETE),
    ],
)
def test_verdict_of(train, val, options, expected):
    assert verdict_of(train, val, **options) == expected


def test_a_slight_rise_with_a_small_gap_is_a_good_fit_not_overfitting():
    # Onset at 6 (three later epochs 2% above the minimum), severity 2% < 5%, gap about 8% < 25%.
    val = [1.0, 0.6, 0.45, 0.40, 0.38, 0.370, 0.376, 0.3775, 0.3774]
    train = [0.9, 0.55, 0.42, 0.37, 0.35, 0.345, 0.345, 0.346, 0.346]
    assert overfitting_onset(val) == 6
    assert verdict_of(train, val) == GOOD_FIT
    # The same rise with a wide gap is overfitting.
    assert verdict_of([x / 2 for x in train], val) == OVERFITTING


def test_most_common_verdict_breaks_ties_toward_the_worrying_one():
    assert most_common_verdict([GOOD_FIT, GOOD_FIT, OVERFITTING]) == GOOD_FIT
    assert most_common_verdict([GOOD_FIT, OVERFITTING]) == OVERFITTING
    assert most_common_verdict([UNDERFITTING, DIVERGED]) == DIVERGED
    assert most_common_verdict([]) == INCOMPLETE


# -- diagnose_runs -------------------------------------------------------------------------


def overfitting_curves(shift: float = 0.0) -> dict[str, list[float]]:
    val = [x + shift for x in VAL_MIN_AT_7]
    return {
        "train_loss": TRAIN_FALLING,
        "val_loss": val,
        "train_accuracy": accuracy_from(TRAIN_FALLING),
        "val_accuracy": accuracy_from(val),
    }


def test_diagnose_runs_best_epochs_gaps_onset_and_severity():
    trials, epochs = run_frames(
        {(1, 0): overfitting_curves()}, params={1: {"dropout": 0.0, "l2": 1e-4}}
    )
    row = diagnose_runs(trials, epochs, objective="val_accuracy").iloc[0]
    assert row["best_loss_epoch"] == 7
    assert row["best_objective_epoch"] == 7
    assert row["onset_epoch"] == 7
    assert row["objective"] == pytest.approx(1 - 0.40 / 2)
    assert row["gap_loss_best"] == pytest.approx(0.40 - 0.24)
    assert row["gap_loss_final"] == pytest.approx(0.65 - 0.10)
    assert row["gap_accuracy_best"] == pytest.approx((1 - 0.24 / 2) - (1 - 0.40 / 2))
    assert row["gap_accuracy_final"] == pytest.approx((1 - 0.10 / 2) - (1 - 0.65 / 2))
    assert row["severity"] == pytest.approx(0.65 - 0.40)
    assert row["verdict"] == OVERFITTING
    assert row["param_dropout"] == 0.0 and row["param_l2"] == 1e-4
    assert row["n_epochs"] == 12


def test_diagnose_runs_keeps_every_trials_row_in_order_with_every_status():
    failed = {"trial": 3, "seed": 0, "status": "FAILED", "failure": "bad shape", "param_l2": 0.0}
    trials, epochs = run_frames(
        {
            (1, 0): overfitting_curves(),
            (1, 1): {"train_loss": TRAIN_FALLING, "val_loss": VAL_FALLING},
            (2, 0): {
                "train_loss": TRAIN_FALLING[:5],
                "val_loss": VAL_MIN_AT_7[:3] + [math.nan] * 2,
            },
            (2, 1): {"train_loss": TRAIN_FLAT[:4], "val_loss": VAL_FLAT[:4]},
        },
        params={1: {"l2": 0.0}, 2: {"l2": 1e-3}},
        status={(2, 0): "FAILED", (2, 1): "PRUNED"},
        failure={(2, 0): "diverged: val_loss is nan"},
        objective="val_loss",
        extra_trials=[failed],
    )
    diagnosis = diagnose_runs(trials, epochs, objective="val_loss")
    assert list(zip(diagnosis["trial"], diagnosis["seed"], strict=True)) == [
        (1, 0),
        (1, 1),
        (2, 0),
        (2, 1),
        (3, 0),
    ]
    assert list(diagnosis["verdict"]) == [
        OVERFITTING,
        UNDERFITTING,
        DIVERGED,
        INCOMPLETE,
        INCOMPLETE,
    ]
    assert set(diagnosis["verdict"]) <= set(VERDICTS)
    assert list(diagnosis["status"]) == ["COMPLETE", "COMPLETE", "FAILED", "PRUNED", "FAILED"]
    assert list(diagnosis["failure"])[4] == "bad shape"
    still_falling = diagnosis.iloc[1]
    assert still_falling["best_loss_epoch"] == 12 and math.isnan(still_falling["onset_epoch"])
    assert still_falling["severity"] == 0.0
    no_history = diagnosis.iloc[4]
    assert no_history["n_epochs"] == 0
    assert math.isnan(no_history["best_loss_epoch"]) and math.isnan(no_history["gap_loss_best"])
    # No accuracy in these histories: the accuracy gaps are NaN, the loss gaps are not.
    assert diagnosis.loc[1:3, "gap_accuracy_best"].isna().all()
    assert diagnosis.loc[1:3, "gap_loss_best"].notna().all()


def test_diagnose_runs_on_a_regression_task():
    curves = {
        "train_loss": TRAIN_FLAT,
        "val_loss": VAL_FLAT,
        "train_mae": TRAIN_FLAT,
        "val_mae": VAL_FLAT,
    }
    trials, epochs = run_frames({(1, 0): curves}, objective="val_mae")
    row = diagnose_runs(trials, epochs, objective="val_mae").iloc[0]
    assert row["objective"] == pytest.approx(min(VAL_FLAT))
    assert math.isnan(row["gap_accuracy_best"]) and math.isnan(row["gap_accuracy_final"])
    assert row["verdict"] == GOOD_FIT


def test_diagnose_runs_without_records_summaries_reads_the_curves():
    trials, epochs = run_frames({(1, 0): overfitting_curves()})
    trials = trials[["trial", "seed", "status", "failure"]]
    row = diagnose_runs(trials, epochs, objective="val_accuracy").iloc[0]
    assert row["objective"] == pytest.approx(1 - 0.40 / 2)
    assert row["best_objective_epoch"] == 7


def test_diagnose_runs_on_empty_frames():
    trials = pd.DataFrame(columns=["trial", "seed", "status", "failure", "param_l2"])
    epochs = pd.DataFrame(columns=["trial", "seed", "epoch", "train_loss", "val_loss"])
    diagnosis = diagnose_runs(trials, epochs, objective="val_loss")
    assert diagnosis.empty and "verdict" in diagnosis and "param_l2" in diagnosis


# -- bootstrap -----------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_values():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.9, 0.02, size=5), rng.normal(0.9, 0.02, size=200)
    low_few, high_few = bootstrap_interval(few)
    low_many, high_many = bootstrap_interval(many)
    assert low_few < few.mean() < high_few
    assert low_many < many.mean() < high_many
    assert high_many - low_many < (high_few - low_few) / 3
    assert low_many < 0.9 < high_many


def test_bootstrap_interval_is_seeded_and_widens_with_the_confidence():
    values = np.random.default_rng(2).normal(size=10)
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    narrow = bootstrap_interval(values, confidence=0.5)
    wide = bootstrap_interval(values, confidence=0.99)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


@pytest.mark.parametrize("values", [[], [0.9], [0.9, math.nan], [math.nan, math.nan]])
def test_bootstrap_interval_needs_two_finite_values(values):
    low, high = bootstrap_interval(values)
    assert math.isnan(low) and math.isnan(high)


def test_bootstrap_interval_of_constant_values_is_that_value():
    assert bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("option", "value"), [("confidence", 1.0), ("confidence", 0.0), ("n_boot", 0)]
)
def test_bootstrap_interval_rejects_bad_options(option, value):
    with pytest.raises(ValueError, match=option):
        bootstrap_interval([1.0, 2.0], **{option: value})


# -- summarize_configurations --------------------------------------------------------------


def diagnosis_frame(
    objectives: dict[int, list[float]],
    *,
    status: dict[tuple[int, int], str] | None = None,
    verdicts: dict[int, list[str]] | None = None,
) -> pd.DataFrame:
    rows = []
    for trial, values in objectives.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "trial": trial,
                    "seed": seed,
                    "status": (status or {}).get((trial, seed), "COMPLETE"),
                    "failure": "",
                    "param_l2": 1e-4 * trial,
                    "objective": value,
                    "gap_loss_best": value / 10,
                    "verdict": (verdicts or {}).get(trial, [GOOD_FIT] * len(values))[seed],
                }
            )
    return pd.DataFrame(rows)


def test_summarize_configurations_stats_rank_and_verdict():
    diagnosis = diagnosis_frame(
        {1: [0.90, 0.92, 0.94], 2: [0.95, 0.96, 0.97], 3: [0.99, 0.99, math.nan]},
        status={(3, 2): "FAILED"},
        verdicts={1: [OVERFITTING, OVERFITTING, GOOD_FIT]},
    )
    table = summarize_configurations(diagnosis, direction="maximize")
    assert list(table["trial"]) == [2, 1, 3]
    assert list(table["rank"][:2]) == [1, 2] and math.isnan(table["rank"].iloc[2])
    first = table.iloc[0]
    assert first["objective_mean"] == pytest.approx(0.96)
    assert first["objective_std"] == pytest.approx(0.01)
    assert first["objective_low"] <= 0.96 <= first["objective_high"]
    assert first["gap_mean"] == pytest.approx(0.096)
    assert first["gap_low"] <= 0.096 <= first["gap_high"]
    assert first["param_l2"] == pytest.approx(2e-4)
    assert table.set_index("trial").loc[1, "verdict"] == OVERFITTING
    incomplete = table.set_index("trial").loc[3]
    assert (incomplete["n_seeds"], incomplete["n_complete"]) == (3, 2)
    assert incomplete["objective_mean"] == pytest.approx(0.99)  # over its complete seeds


def test_summarize_configurations_ranks_by_direction():
    diagnosis = diagnosis_frame({1: [0.3, 0.32], 2: [0.2, 0.21], 3: [0.5, 0.4]})
    assert list(summarize_configurations(diagnosis, direction="minimize")["trial"]) == [2, 1, 3]
    assert list(summarize_configurations(diagnosis, direction="maximize")["trial"]) == [3, 1, 2]


def test_summarize_configurations_with_one_seed():
    table = summarize_configurations(diagnosis_frame({1: [0.9], 2: [0.8]}), direction="maximize")
    assert list(table["trial"]) == [1, 2]
    assert table["objective_std"].isna().all() and table["objective_low"].isna().all()


def test_summarize_configurations_rejects_a_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        summarize_configurations(diagnosis_frame({1: [0.9]}), direction="max")
