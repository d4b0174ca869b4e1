"""Search figures: the objective against each searched value (failed runs marked), the best
so far against trial number, hyperparameter importance, and the best found against budget."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from reports.plots._base import (
    MAX_WIDTH,
    Plot,
    _direction,
    _figure,
    _mark_at_worst_edge,
    _positions,
    _set_scale,
    _style,
)
from study.results import Status


def plot_objective_vs_params(
    trials: pd.DataFrame,
    *,
    searched: Sequence[str],
    objective: str,
    direction: str | None = None,
    log: Collection[str] | None = None,
) -> Plot:
    """The tuning playbook's axis plots: every run's best objective against each searched value,
    one panel per parameter; failed runs marked x at the worst edge (`direction`, by default the
    objective's). Log x for `log` parameters (default: positive values spanning a factor 10 or
    more; symlog when 0 is among them)."""
    key, title = "objective_vs_params", "Objective against each searched hyperparameter"
    notes: list[str] = []
    direction = _direction(direction, objective)
    column = f"best_{objective}"
    if trials.empty or column not in trials:
        return Plot(key, title, None, (f"no {objective} recorded: nothing to draw",))
    names = [n for n in searched if f"param_{n}" in trials]
    notes += [f"{n}: no recorded values" for n in searched if f"param_{n}" not in trials]
    if not names:
        return Plot(key, title, None, (*notes, "no searched parameter to draw"))
    y = pd.to_numeric(trials[column], errors="coerce")
    ok = (trials["status"] == Status.COMPLETE) & np.isfinite(y)
    failed = ~ok & (trials["status"] != Status.RUNNING)  # RUNNING: not failed, not drawn
    if failed.any():
        edge = "bottom" if direction == "maximize" else "top"
        notes.append(f"{int(failed.sum())} failed runs marked x at the {edge} edge")
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    with _style():
        figure = _figure(min(MAX_WIDTH, 3.6 * ncols + 0.5), 3.0 * nrows + 0.4)
        axes = figure.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        for ax, name in zip(axes, names, strict=False):
            values = trials[f"param_{name}"]
            x, ticks = _positions(values)
            active = x.notna()
            if (~active).any():
                notes.append(f"{name}: inactive in {int((~active).sum())} runs, not shown")
            ax.scatter(
                x[ok & active], y[ok & active], s=18, alpha=0.7, color="#0173b2", label="runs"
            )
            bad = failed & active
            if bad.any():  # at the worst edge, inside the x-range
                anchor = np.full(int(bad.sum()), np.nanmean(y[ok]) if ok.any() else 0.0)
                ax.update_datalim(np.column_stack([x[bad], anchor]), updatey=False)
                ax.margins(y=0.12)  # room below (or above) the runs for the marks
                ax.autoscale_view()
                _mark_at_worst_edge(ax, x[bad], direction=direction, label="failed")
            if ticks is not None:
                ax.set_xticks(range(len(ticks)), ticks, rotation=30 if len(ticks) > 3 else 0)
            else:
                _set_scale(ax, x[active], force_log=log is not None and name in log)
            ax.set(xlabel=name, title=name)
        for ax in axes[::ncols]:
            ax.set_ylabel(f"best {objective}")
    return Plot(key, title, figure, tuple(notes))


def plot_best_so_far(
    frame: pd.DataFrame, *, objective: str = "objective", direction: str | None = None
) -> Plot:
    """Each configuration's objective (points, in trial order) and the best so far (a step line);
    configurations that did not complete marked x at the worst edge (`search.best_so_far`;
    `direction` by default the objective's)."""
    key, title = "best_so_far", "Best objective so far"
    direction = _direction(direction, objective)
    notes: list[str] = []
    if frame.empty or not np.isfinite(frame["objective"].to_numpy(dtype=float)).any():
        return Plot(key, title, None, ("no configuration completed: no best-so-far curve",))
    missing = frame["objective"].isna()
    if missing.any():
        notes.append(f"{int(missing.sum())} configurations did not complete on every seed (x)")
    with _style():
        figure = _figure(7.0, 3.6)
        ax = figure.subplots()
        ax.scatter(frame["trial"], frame["objective"], s=20, color="0.55", label="configuration")
        ax.step(frame["trial"], frame["best_so_far"], where="post", color="#0173b2", label="best")
        if missing.any():
            _mark_at_worst_edge(
                ax, frame.loc[missing, "trial"], direction=direction, label="did not complete"
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="trial", ylabel=f"{objective} (mean over seeds)", title=title)
        ax.legend(fontsize="small")
    return Plot(key, title, figure, tuple(notes))


def plot_importance(frame: pd.DataFrame) -> Plot:
    """Each searched parameter's share of the importance (`search.hyperparameter_importance`)."""
    key, title = "importance", "Hyperparameter importance"
    if frame.empty:
        note = "too few complete configurations or no varying searched parameter: no importance"
        return Plot(key, title, None, (note,))
    frame = frame.sort_values("importance", ascending=False, kind="stable")
    with _style():
        figure = _figure(6.5, 0.45 * len(frame) + 1.6)
        ax = figure.subplots()
        positions = np.arange(len(frame))
        bar = "#176d9c"  # seaborn's barplot of "#0173b2": desaturated to 75%
        ax.barh(positions - 0.4, frame["importance"], height=0.8, align="edge", color=bar)
        ax.set_yticks(positions, frame["param"].tolist())
        ax.set_ylim(len(frame) - 0.5, -0.5)
        ax.yaxis.grid(False)
        ax.set(xlabel="share of permutation importance (random forest)", ylabel="", title=title)
    return Plot(key, title, figure, ())


def plot_budget_curve(frame: pd.DataFrame, *, objective: str = "objective") -> Plot:
    """The median best objective among `budget` random configurations, with its 95% band
    (`search.budget_curve`)."""
    key, title = "budget_curve", "Best objective found against trial budget"
    if frame.empty:
        return Plot(key, title, None, ("no configuration completed: no budget curve",))
    notes = ("band: 2.5th to 97.5th percentile over random orders of the configurations",)
    with _style():
        figure = _figure(7.0, 3.6)
        ax = figure.subplots()
        ax.fill_between(frame["budget"], frame["low"], frame["high"], color="#0173b2", alpha=0.2)
        ax.plot(frame["budget"], frame["median"], color="#0173b2", marker="o", markersize=3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="configurations tried (budget)", ylabel=f"best {objective}", title=title)
    return Plot(key, title, figure, notes)
