import math

import pandas as pd
import pytest

from study.records import rank_configurations, summarize_history


def test_summary_takes_best_epoch_of_the_objective_one_based():
    history = {
        "val_accuracy": [0.5, 0.9, 0.8],
        "val_loss": [1.0, 0.4, 0.6],
        "train_loss": [1, 2, 3],
    }
    summary = summarize_history(history, "val_accuracy", "maximize")
    assert summary["best_epoch"] == 2
    assert summary["best_val_loss"] == 0.4 and summary["best_train_loss"] == 2
    assert summary["final_val_accuracy"] == 0.8 and summary["final_train_loss"] == 3
    assert summarize_history(history, "val_loss", "minimize")["best_epoch"] == 2


def test_summary_skips_nan_and_handles_empty_histories():
    summary = summarize_history({"val_loss": [math.nan, 0.3, 0.2]}, "val_loss", "minimize")
    assert summary["best_epoch"] == 3
    empty = summarize_history({}, "val_loss", "minimize")
    assert math.isnan(empty["best_epoch"])


def test_ranking_uses_only_configurations_complete_on_every_seed():
    trials = pd.DataFrame(
        {
            "trial": [1, 1, 2, 2, 3, 3],
            "seed": [0, 1] * 3,
            "status": ["COMPLETE", "COMPLETE", "COMPLETE", "FAILED", "COMPLETE", "COMPLETE"],
            "best_val_loss": [0.3, 0.5, 0.1, math.nan, 0.2, 0.4],
        }
    )
    ranking = rank_configurations(trials, "val_loss", "minimize")
    assert ranking["trial"].tolist() == [3, 1]
    assert ranking["mean"].tolist() == pytest.approx([0.3, 0.4])
    assert ranking["seeds"].tolist() == [2, 2]
    assert rank_configurations(trials.iloc[:0], "val_loss", "minimize").empty
