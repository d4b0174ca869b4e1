"""Analysis of the search itself: best-so-far, hyperparameter importance, best-found vs budget.

Pure functions on the trials frame of `study.records` (one row per trial x seed). A configuration's
objective is `study.records.configuration_objectives`: the mean over its seeds of
`best_<objective>`, and only when every one of its seeds is COMPLETE with a finite value; otherwise
it is NaN (the configuration found nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from study.records import configuration_objectives
from study.results import Status, check_direction, direction_sign

__all__ = [
    "MIN_CONFIGURATIONS",
    "best_so_far",
    "budget_curve",
    "configuration_objectives",
    "hyperparameter_importance",
]

MIN_CONFIGURATIONS = 5  # fewer complete configurations than this: no importance


def best_so_far(trials: pd.DataFrame, *, objective: str, direction: str) -> pd.DataFrame:
    """Per configuration in trial order: `trial`, `objective` (see the module docstring) and
    `best_so_far`, the best objective among this and the earlier configurations (NaN until the
    first one that completed)."""
    check_direction(direction)
    objectives = configuration_objectives(trials, objective=objective)
    cumulative = objectives.cummax() if direction == "maximize" else objectives.cummin()
    return pd.DataFrame(
        {
            "trial": objectives.index.to_numpy(),
            "objective": objectives.to_numpy(dtype=float),
            "best_so_far": cumulative.ffill().to_numpy(dtype=float),
        }
    )


def hyperparameter_importance(
    trials: pd.DataFrame,
    *,
    objective: str,
    searched: Sequence[str],
    seed: int = 0,
    n_estimators: int = 100,
    n_repeats: int = 5,
) -> pd.DataFrame:
    """How much each searched parameter explains the objective: `param`, `importance` (shares that
    sum to 1, largest first).

    A random forest is fitted to the complete runs' `best_<objective>` (every seed a sample), then
    each parameter's permutation importance (the mean rise in squared error when its column is
    shuffled, clipped at 0) is divided by their sum. Categorical and boolean parameters are
    ordinal-encoded; an inactive conditional value (NaN) is its own level below every other.
    Empty when fewer than `MIN_CONFIGURATIONS` configurations completed, or no searched parameter
    varies among them.
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    empty = pd.DataFrame({"param": pd.Series(dtype=str), "importance": pd.Series(dtype=float)})
    column = f"best_{objective}"
    if trials.empty or column not in trials:
        return empty
    target = pd.to_numeric(trials[column], errors="coerce")
    runs = trials[(trials["status"] == Status.COMPLETE) & np.isfinite(target)]
    if runs["trial"].nunique() < MIN_CONFIGURATIONS:
        return empty
    features = {}
    for name in searched:
        if f"param_{name}" in runs and runs[f"param_{name}"].nunique(dropna=False) > 1:
            features[name] = _encode(runs[f"param_{name}"])
    if not features:
        return empty
    x = np.column_stack(list(features.values()))
    y = target[runs.index].to_numpy(dtype=float)
    forest = RandomForestRegressor(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    forest.fit(x, y)
    result = permutation_importance(
        forest, x, y, n_repeats=n_repeats, random_state=seed, scoring="neg_mean_squared_error"
    )
    raw = np.clip(result.importances_mean, 0.0, None)
    shares = raw / raw.sum() if raw.sum() > 0 else raw
    table = pd.DataFrame({"param": list(features), "importance": shares})
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def budget_curve(
    trials: pd.DataFrame, *, objective: str, direction: str, n_boot: int = 500, seed: int = 0
) -> pd.DataFrame:
    """The best objective found with a budget of `budget` configurations (1..n, n the number of
    configurations tried) drawn at random without replacement from those tried: `budget`,
    `median`, `low`, `high` (the 50th, 2.5th and 97.5th percentiles over `n_boot` draws).

    A configuration that did not complete counts against the budget and finds nothing; a draw of
    only such configurations ranks worst, and a percentile that falls on one is NaN. Each draw
    takes a random order of all configurations and its first `budget` of them, so the curve rises
    (or falls, when minimizing) monotonically and reaches the overall best at budget n.
    """
    check_direction(direction)
    columns = ["budget", "median", "low", "high"]
    values = configuration_objectives(trials, objective=objective).to_numpy(dtype=float)
    if values.size == 0 or not np.isfinite(values).any():
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    sign = direction_sign(direction)
    scores = np.where(np.isfinite(values), sign * values, -np.inf)  # larger is better
    rng = np.random.default_rng(seed)
    orders = rng.permuted(np.tile(np.arange(values.size), (n_boot, 1)), axis=1)
    best = np.maximum.accumulate(scores[orders], axis=1)  # (n_boot, budget)
    percentiles = np.percentile(best, [50.0, 2.5, 97.5], axis=0, method="nearest")
    percentiles = np.where(np.isfinite(percentiles), sign * percentiles, np.nan)
    frame = pd.DataFrame(percentiles.T, columns=columns[1:])
    frame.insert(0, "budget", np.arange(1, values.size + 1))
    return frame


def _encode(column: pd.Series) -> np.ndarray:
    """A parameter column as numbers: numeric as is, others by sorted level; NaN below all."""
    if pd.api.types.is_bool_dtype(column):
        column = column.astype(float)
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
    else:
        levels = sorted(column.dropna().astype(str).unique())
        values = column.astype(str).map({v: i for i, v in enumerate(levels)})
        values = values.where(column.notna()).to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    floor = (finite.min() - 1.0 - abs(finite.min())) if finite.size else 0.0
    return np.where(np.isfinite(values), values, floor)
