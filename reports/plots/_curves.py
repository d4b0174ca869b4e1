"""Learning curves: training and validation loss and accuracy per epoch, bands over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.ticker import MaxNLocator

from reports.plots._base import (
    MAX_WIDTH,
    Plot,
    _curve_metrics,
    _figure,
    _key,
    _legend_outside,
    _long_curves,
    _mean_line,
    _palette,
    _style,
)

_DASHES = {"train": (3, 2), "validation": ""}


def plot_learning_curves(
    epochs: pd.DataFrame,
    trials_to_show: Mapping[str, int],
    *,
    metrics: Sequence[str] | None = None,
    palette: Mapping[str, tuple[float, float, float]] | None = None,
    key: str = "learning_curves",
    title: str = "Learning curves",
) -> Plot:
    """Train (dashed) and validation (solid) curves of each labelled trial, one panel per metric
    (default: the loss and the first other metric), mean over seeds with their range as a band;
    `palette` maps labels to colors (default: the colorblind palette in label order)."""
    notes: list[str] = []
    metrics = list(metrics) if metrics is not None else _curve_metrics(epochs)
    frames = []
    for label, trial in trials_to_show.items():
        rows = epochs[epochs["trial"] == trial] if "trial" in epochs else epochs.iloc[:0]
        if rows.empty:
            notes.append(f"{label}: no epochs recorded for trial {trial}")
        frames.append(rows.assign(label=label))
    long = _long_curves(pd.concat(frames) if frames else pd.DataFrame(), metrics)
    if long.empty:
        return Plot(key, title, None, (*notes, "no learning curves to draw"))
    long = long.rename(columns={"label": "configuration"})
    several = long.groupby("configuration")["seed"].nunique().max() > 1
    if not several:
        notes.append("one seed: no bands over seeds")
    labels = [label for label in trials_to_show if label in set(long["configuration"])]
    colors = dict(zip(labels, _palette(len(labels)), strict=True)) | dict(palette or {})
    with _style():
        figure = _figure(min(MAX_WIDTH, 4.2 * len(metrics) + 2.5), 3.8)
        axes = figure.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            panel = long[long["metric"] == metric]
            for label in labels:
                for split, dashes in _DASHES.items():
                    rows = panel[(panel["configuration"] == label) & (panel["split"] == split)]
                    if not rows.empty:
                        line = dict(color=colors[label], band=several, dashes=dashes)
                        _mean_line(ax, rows, x="epoch", y="value", **line)
            ax.set(xlabel="epoch", ylabel=metric, title=metric)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        splits = [_key(s, color=".2", dashes=d) for s, d in _DASHES.items()]
        configurations = [_key(label, color=colors[label]) for label in labels]
        _legend_outside(figure, [_key("configuration"), *configurations, _key("split"), *splits])
    return Plot(key, title, figure, tuple(notes))
