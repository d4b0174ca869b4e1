"""The report's headline: the best configuration, how sure we are of it, and what to check next.

Pure: frames in, a `Headline` out (`configurations` from
`reports.diagnostics.summarize_configurations`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from reports._format import format_number
from study.results import Status

MIN_EDGE_VALUES = 3  # a value is "at the edge" only when at least this many were tried


class Headline(NamedTuple):
    best_trial: int | None
    best_values: dict[str, Any]  # the searched values of the best configuration
    objective_mean: float
    objective_std: float
    objective_low: float
    objective_high: float
    n_seeds: int
    verdict: str
    test: dict[str, float]  # mean over seeds of the chosen configuration's test metrics
    runs: dict[str, int]  # count of runs by status
    sentences: list[str]  # plain words for the summary


def headline(
    trials: pd.DataFrame,
    configurations: pd.DataFrame,
    *,
    searched: Sequence[str],
    objective: str,
) -> Headline:
    """What the summary says: the best configuration and the checks a careful reader would make
    (is the runner-up within seed noise? is the best value at the edge of what was tried?)."""
    runs = {str(k): int(v) for k, v in trials["status"].value_counts().sort_index().items()}
    ranked = configurations.dropna(subset=["rank"]).sort_values("rank")
    if ranked.empty:
        return Headline(None, {}, *[math.nan] * 4, 0, "", {}, runs, [_NOTHING_CHOSEN])
    best = ranked.iloc[0]
    values = {
        name: best[f"param_{name}"]
        for name in searched
        if f"param_{name}" in best and not _missing(best[f"param_{name}"])
    }
    chosen_rows = trials[trials["trial"] == best["trial"]]
    test = {
        column.removeprefix("test_"): float(chosen_rows[column].mean())
        for column in trials.columns
        if column.startswith("test_") and chosen_rows[column].notna().any()
    }
    sentences = [_certainty(ranked, objective)]
    edges = at_the_edge(configurations, best, searched=searched)
    if edges:
        sentences.append(
            "The best value of "
            + ", ".join(edges)
            + " is at the edge of the values tried: the optimum may lie beyond; "
            "widen the range there before trusting it (tuning playbook)."
        )
    if runs.get(Status.FAILED):
        sentences.append(f"{runs[Status.FAILED]} runs failed; their reasons are listed below.")
    return Headline(
        best_trial=int(best["trial"]),
        best_values=values,
        objective_mean=float(best["objective_mean"]),
        objective_std=float(best["objective_std"]),
        objective_low=float(best["objective_low"]),
        objective_high=float(best["objective_high"]),
        n_seeds=int(best["n_seeds"]),
        verdict=str(best["verdict"]),
        test=test,
        runs=runs,
        sentences=sentences,
    )


_NOTHING_CHOSEN = "No configuration completed on every seed: nothing can be chosen yet."


def _certainty(ranked: pd.DataFrame, objective: str) -> str:
    best = ranked.iloc[0]
    if int(best["n_seeds"]) < 2 or math.isnan(best["objective_low"]):
        return (
            f"One seed per configuration: the ranking on {objective} cannot be told from "
            "seed noise."
        )
    if len(ranked) < 2:
        return "Only one configuration completed on every seed."
    second = ranked.iloc[1]
    tied = ranked[ranked["rank"] == best["rank"]]
    if len(tied) > 1:
        trials = ", ".join(str(int(t)) for t in tied["trial"])
        return (
            f"{len(tied)} configurations tie for the best {objective} "
            f"({format_number(best['objective_mean'])} on average over seeds; trials {trials}): "
            f"nothing here prefers one, and trial {int(best['trial'])} is shown as the first of "
            "them."
        )
    overlap = not (
        second["objective_high"] < best["objective_low"]
        or second["objective_low"] > best["objective_high"]
    )
    if overlap:
        return (
            f"The runner-up (trial {int(second['trial'])}, {objective} "
            f"{format_number(second['objective_mean'])}) lies within the best's 95% interval: "
            "the two are not told apart by these seeds."
        )
    return (
        f"The best's 95% interval does not overlap the runner-up's (trial {int(second['trial'])}): "
        "the choice holds over these seeds."
    )


def at_the_edge(
    configurations: pd.DataFrame, best: pd.Series, *, searched: Sequence[str]
) -> list[str]:
    """The searched numeric values of `best` that sit at the smallest or largest value tried (0 at
    the bottom is not an edge: rates and strengths cannot go lower)."""
    edges = []
    for name in searched:
        column = f"param_{name}"
        if column not in configurations or _missing(best.get(column)):
            continue
        tried = pd.to_numeric(configurations[column], errors="coerce").dropna().unique()
        value = pd.to_numeric(pd.Series([best[column]]), errors="coerce").iloc[0]
        if len(tried) >= MIN_EDGE_VALUES and not _missing(value):
            if value == tried.max() or (value == tried.min() and value != 0):
                edges.append(f"{name} ({format_number(value)})")
    return edges


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
