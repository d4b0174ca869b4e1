"""One score everywhere: the headline, the ranking (the configuration evaluated on the test split),
the families' best and the search plots agree on a frame with ties, NaN and a failed seed."""

import math

import pandas as pd
import pytest

from reports.compare import compare_families
from reports.diagnostics import diagnose_runs, summarize_configurations
from reports.plots import plot_best_so_far, plot_objective_vs_params
from reports.search import best_so_far, budget_curve, configuration_objectives
from reports.summary import headline
from study.records import rank_configurations

NAN = math.nan
# trial: (status and best val_loss) per seed. Trials 1 and 2 tie (the same seeds' values in another
# order, whose in-order sums differ in the last bit); trial 3 has the best values but a failed
# seed; trial 4 is complete but one seed has no finite objective.
RUNS = {
    1: [("COMPLETE", 0.3), ("COMPLETE", 0.2), ("COMPLETE", 0.1)],
    2: [("COMPLETE", 0.1), ("COMPLETE", 0.2), ("COMPLETE", 0.3)],
    3: [("COMPLETE", 0.05), ("FAILED", NAN), ("COMPLETE", 0.05)],
    4: [("COMPLETE", 0.01), ("COMPLETE", NAN), ("COMPLETE", 0.02)],
    5: [("COMPLETE", 0.4), ("COMPLETE", 0.5), ("COMPLETE", 0.6)],
}


def _trials(objective: str) -> pd.DataFrame:
    """The runs (rows shuffled: the record order must not matter); accuracy = 1 - loss."""
    rows = [
        {"trial": t, "seed": s, "status": status, "param_dropout": 0.0, "param_units": 8 * t}
        | {f"best_{objective}": loss if objective == "val_loss" else 1 - loss}
        for t, runs in RUNS.items()
        for s, (status, loss) in enumerate(runs)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.mark.parametrize(
    ("objective", "direction"), [("val_loss", "minimize"), ("val_accuracy", "maximize")]
)
def test_headline_ranking_comparison_and_search_plots_agree(objective, direction):
    trials = _trials(objective)
    epochs = pd.DataFrame(columns=["trial", "seed", "epoch"])
    diagnosis = diagnose_runs(trials, epochs, objective=objective)
    configurations = summarize_configurations(diagnosis, direction=direction)

    objectives = configuration_objectives(trials, objective=objective)
    assert objectives.index.tolist() == [1, 2, 3, 4, 5]
    assert objectives.isna().tolist() == [False, False, True, True, False]
    assert objectives[1] == objectives[2]  # a tie, whatever the order of the seeds
    best = objectives[1]

    ranking = rank_configurations(trials, objective, direction)  # what the test split evaluates
    assert ranking["trial"].tolist() == [1, 2, 5] and ranking["mean"].iloc[0] == best

    ranked = configurations.set_index("trial")["rank"]
    assert ranked[[1, 2, 5]].tolist() == [1, 1, 3] and ranked[[3, 4]].isna().all()
    h = headline(trials, configurations, searched=["units"], objective=objective)
    assert h.best_trial == 1 and h.objective_mean == best
    assert h.sentences[0].startswith("2 configurations tie for the best")

    families = compare_families(diagnosis, direction=direction)
    assert families["best_trial"].tolist() == [1] and families["objective_mean"].iloc[0] == best

    progress = best_so_far(trials, objective=objective, direction=direction)
    pd.testing.assert_series_equal(
        progress.set_index("trial")["objective"], objectives, check_names=False
    )
    assert progress["best_so_far"].iloc[-1] == best
    assert budget_curve(trials, objective=objective, direction=direction)["median"].iloc[-1] == best
    plot = plot_best_so_far(progress, objective=objective, direction=direction)
    assert plot.notes == ("2 configurations did not complete on every seed (x)",)
    edge = "top" if direction == "minimize" else "bottom"
    plot = plot_objective_vs_params(
        trials, searched=["units"], objective=objective
    )  # its direction
    assert plot.notes == (f"2 failed runs marked x at the {edge} edge",)
