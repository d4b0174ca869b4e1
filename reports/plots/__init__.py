"""The report's figures: matplotlib's Agg canvas in seaborn's look, one `Plot` per figure.

Each `plot_*` function draws frames computed elsewhere (`reports.diagnostics`, `reports.compare`,
`reports.search`) onto a new `matplotlib.figure.Figure` (never pyplot, so nothing is shared
between figures) and returns a `Plot`. None of them raises for a parameter that was not searched,
failed runs, a single seed or an empty frame: the figure is then partial or None, and `notes` says
in plain words what could not be drawn and why. `report_plots` computes what the figures need and
returns them in report order; it is the one place here that calls the analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from reports.compare import compare_families
from reports.diagnostics import diagnose_runs, summarize_configurations
from reports.plots._base import Plot, _family_colors
from reports.plots._curves import plot_learning_curves
from reports.plots._regularization import (
    plot_family_distributions,
    plot_gap_vs_strength,
    plot_heatmaps,
)
from reports.plots._search import (
    plot_best_so_far,
    plot_budget_curve,
    plot_importance,
    plot_objective_vs_params,
)
from reports.search import best_so_far, budget_curve, hyperparameter_importance

__all__ = [
    "Plot",
    "plot_best_so_far",
    "plot_budget_curve",
    "plot_family_distributions",
    "plot_gap_vs_strength",
    "plot_heatmaps",
    "plot_importance",
    "plot_learning_curves",
    "plot_objective_vs_params",
    "report_plots",
]


# ------------------------------------------------------------------------- all of them at once


def report_plots(
    trials: pd.DataFrame,
    epochs: pd.DataFrame,
    *,
    objective: str,
    direction: str,
    searched: Sequence[str],
    diagnosis: pd.DataFrame | None = None,
    configurations: pd.DataFrame | None = None,
    families: pd.DataFrame | None = None,
    importance: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    seed: int = 0,
    before_importance: Callable[[list[Plot]], None] | None = None,
) -> list[Plot]:
    """Every figure of a campaign's report, in report order. `diagnosis`, `configurations`,
    `families` (the comparison table) and `importance` (`search.hyperparameter_importance`) are
    computed unless given; `importance` may be given as a function that returns it, called after
    every other figure is drawn (`reports.html` computes it in a child process meanwhile), and
    `before_importance` with those figures first (`reports.html` encodes them meanwhile)."""
    if diagnosis is None:
        diagnosis = diagnose_runs(trials, epochs, objective=objective)
    if configurations is None:
        configurations = summarize_configurations(diagnosis, direction=direction)
    if families is None:
        families = compare_families(diagnosis, direction=direction)
    ranked = configurations.dropna(subset=["rank"]).head(3)
    best = {f"#{int(r)}: trial {int(t)}": int(t) for t, r in ranked[["trial", "rank"]].to_numpy()}
    chosen = families.dropna(subset=["best_trial"])
    family_best = {str(f): int(t) for f, t in chosen[["family", "best_trial"]].to_numpy()}
    family_labels = {f"{f} (trial {t})": t for f, t in family_best.items()}
    colors = _family_colors(family_best)
    family_palette = {f"{f} (trial {t})": colors[f] for f, t in family_best.items()}
    plots = [
        plot_learning_curves(epochs, best, title="Learning curves of the best configurations"),
        plot_learning_curves(
            epochs,
            family_labels,
            palette=family_palette,
            key="family_learning_curves",
            title="Learning curves of each family's best configuration",
        ),
        plot_family_distributions(diagnosis, objective=objective, best_trials=family_best),
        plot_gap_vs_strength(diagnosis),
        plot_heatmaps(configurations, objective=objective, direction=direction),
        plot_objective_vs_params(
            trials, searched=searched, objective=objective, direction=direction
        ),
        plot_best_so_far(
            best_so_far(trials, objective=objective, direction=direction),
            objective=objective,
            direction=direction,
        ),
        plot_budget_curve(
            budget_curve(trials, objective=objective, direction=direction, seed=seed),
            objective=objective,
        ),
    ]
    if before_importance is not None:
        before_importance(plots)
    if importance is None:
        importance = hyperparameter_importance(
            trials, objective=objective, searched=searched, seed=seed
        )
    elif callable(importance):
        importance = importance()
    plots.insert(-1, plot_importance(importance))  # drawn last, in report order
    return plots
