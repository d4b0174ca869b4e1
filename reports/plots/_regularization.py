"""Regularization figures: the gap against each strength, Dropout x L2 heatmaps, and the
objective per regularizer family over seeds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cbook import boxplot_stats
from matplotlib.colors import Colormap, to_rgba_array

from reports._format import format_number
from reports.plots._base import (
    _GAP_LABELS,
    MAX_WIDTH,
    Plot,
    _complete,
    _components,
    _direction,
    _families,
    _family_colors,
    _figure,
    _key,
    _mean_line,
    _numeric,
    _rocket,
    _strength_component,
    _style,
)


def plot_gap_vs_strength(diagnosis: pd.DataFrame, *, gap: str = "gap_loss_best") -> Plot:
    """One panel per strength parameter (a Dropout rate, `l1`, `l2`): the gap against its value
    for the family that uses it alone (mean over seeds, their range as a band; log x for L1/L2),
    and the unregularized baseline as a dashed line. Families that combine regularizers are drawn
    (pooled over their other strengths) only in a panel where no family uses it alone."""
    key, title = "gap_vs_strength", "Generalization gap against regularization strength"
    notes: list[str] = []
    runs = _complete(diagnosis, gap)
    if runs.empty:
        return Plot(key, title, None, ("no complete run with a finite gap: nothing to draw",))
    runs = runs.assign(family=_families(runs))
    panels, pooled, left_out = [], set(), set()
    for column in [c for c in runs if c.startswith("param_")]:
        component = _strength_component(column.removeprefix("param_"))
        if component is None:
            continue
        values = pd.to_numeric(runs[column], errors="coerce")
        uses = np.array([component in _components(f) for f in runs["family"]]) & (values > 0)
        users = runs[uses].assign(strength=values[uses])
        alone = np.array([_components(f) == {component} for f in users["family"]], dtype=bool)
        if alone.any():
            left_out |= set(users.loc[~alone, "family"])
            users = users[alone]
        else:
            pooled |= set(users["family"])
        if not users.empty:
            panels.append((column.removeprefix("param_"), component, users))
    if not panels:
        return Plot(key, title, None, ("no regularization strength was searched: nothing to draw",))
    if runs.groupby("trial").size().max() < 2:
        notes.append("one seed: no bands over seeds")
    if left_out:
        words = ", ".join(sorted(left_out))
        notes.append(f"{words}: combined regularizers, not drawn here (see the heatmaps)")
    if pooled:
        notes.append(f"{', '.join(sorted(pooled))}: pooled over the family's other strengths")
    baseline = runs.loc[runs["family"] == "none", gap]
    if baseline.empty:
        notes.append("no unregularized configuration: no baseline line")
    colors = _family_colors(runs["family"])
    with _style():
        figure = _figure(min(MAX_WIDTH, 3.8 * len(panels) + 2.5), 3.8)
        axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        for ax, (name, component, users) in zip(axes, panels, strict=True):
            families = [f for f in colors if f in set(users["family"])]
            several = users.groupby(["family", "strength"]).size().max() > 1
            for family in families:
                rows = users[users["family"] == family]
                line = dict(color=colors[family], band=several, marker="o", label=family)
                _mean_line(ax, rows, x="strength", y=gap, **line)
            if not baseline.empty:
                ax.axhline(baseline.mean(), color="0.3", linestyle="--", label="none (baseline)")
                if len(baseline) > 1:
                    ax.axhspan(baseline.min(), baseline.max(), color="0.5", alpha=0.12)
            if component in ("l1", "l2"):
                ax.set_xscale("log")
            ax.set(xlabel=name, title=name)
            ax.legend(fontsize="small")
            if users["strength"].nunique() < 2:
                notes.append(f"{name}: one strength tried, points rather than lines")
        axes[0].set_ylabel(_GAP_LABELS.get(gap, gap))  # the y-axis is shared
    return Plot(key, title, figure, tuple(notes))


def plot_heatmaps(
    configurations: pd.DataFrame, *, objective: str = "objective", direction: str | None = None
) -> Plot:
    """Heatmaps over Dropout rate x L2 strength of the objective (its best end yellow: `direction`,
    by default the objective's) and of the gap (val_loss - train_loss at the best epoch), means
    over seeds; a cell holding several configurations shows the best-ranked one."""
    key, title = "heatmaps", "Dropout x L2"
    better_high = _direction(direction, objective) == "maximize"
    notes: list[str] = []
    frame = configurations
    if frame.empty:
        return Plot(key, title, None, ("no configurations: no Dropout x L2 heatmap",))
    families = _families(frame)
    plane = frame[families.isin(["none", "dropout", "l2", "dropout+l2"])]
    if len(plane) < len(frame):
        notes.append(f"{len(frame) - len(plane)} configurations using L1 left out")
    dropout = _numeric(plane, "param_dropout").fillna(0.0)
    l2 = _numeric(plane, "param_l2").where(families[plane.index].str.endswith("l2"), 0.0)
    missing = [n for n, v in (("dropout", dropout), ("l2", l2.fillna(0.0))) if v.nunique() < 2]
    if missing:
        note = f"{' and '.join(missing)} was not searched: no Dropout x L2 heatmap"
        return Plot(key, title, None, (*notes, note))
    cells = plane.assign(dropout=dropout, l2=l2.fillna(0.0))
    if cells["objective_mean"].isna().all():
        note = "no configuration complete on every seed: no Dropout x L2 heatmap"
        return Plot(key, title, None, (*notes, note))
    cells = cells.sort_values("rank", na_position="last", kind="stable")
    if cells.duplicated(["dropout", "l2"]).any():
        notes.append("cells with several configurations show the best-ranked one")
    cells = cells.drop_duplicates(["dropout", "l2"])
    with _style():
        figure = _figure(10.0, max(3.2, 0.5 * cells["dropout"].nunique() + 2.2))
        axes = figure.subplots(1, 2, squeeze=False)[0]
        maps = (
            ("objective_mean", objective, "viridis" if better_high else "viridis_r"),
            ("gap_mean", "gap (val_loss − train_loss)", _rocket(reverse=True)),
        )
        for ax, (column, label, cmap) in zip(axes, maps, strict=True):
            table = cells.pivot(index="dropout", columns="l2", values=column).astype(float)
            table.index = [format_number(v) for v in table.index]
            table.columns = [format_number(v) for v in table.columns]
            if table.isna().to_numpy().all():
                notes.append(f"{label}: no values to draw")
                ax.set_axis_off()
                continue
            _heatmap(ax, table, cmap=cmap, label=label)
            ax.set(xlabel="l2", ylabel="dropout", title=f"{label}, mean over seeds")
            ax.tick_params(axis="y", rotation=0)
            ax.grid(False)
            if column == "objective_mean" and table.isna().to_numpy().any():
                blank = int(table.isna().to_numpy().sum())
                notes.append(f"{blank} blank cells: not tried, or not complete on every seed")
    return Plot(key, title, figure, tuple(notes))


def plot_family_distributions(
    diagnosis: pd.DataFrame,
    *,
    objective: str = "objective",
    best_trials: Mapping[str, int] | None = None,
) -> Plot:
    """A box per family over its complete runs (every strength and seed), the runs as points, and
    the seeds of each family's best configuration (`best_trials`) highlighted."""
    key, title = "family_distributions", "Objective per regularizer family"
    notes: list[str] = []
    runs = _complete(diagnosis, "objective")
    if runs.empty:
        return Plot(key, title, None, ("no complete run: no family distributions",))
    runs = runs.assign(family=_families(runs))
    present = set(_families(diagnosis)) if len(diagnosis) else set()
    lost = sorted(present - set(runs["family"]))
    if lost:
        notes.append(f"{', '.join(lost)}: no complete run")
    if runs.groupby("trial").size().max() < 2:
        notes.append("one seed: the boxes span strengths, not seed noise")
    order = [f for f in _family_colors(runs["family"])]
    best = pd.Series(False, index=runs.index)
    if best_trials:
        best = pd.Series(
            [best_trials.get(f) == t for f, t in zip(runs["family"], runs["trial"], strict=True)],
            index=runs.index,
        )
    runs = runs.assign(points=np.where(best, "best strength's seeds", "other runs"))
    with _style():
        figure = _figure(min(MAX_WIDTH, 1.0 * len(order) + 3.5), 4.0)
        ax = figure.subplots()
        _boxes(ax, [runs.loc[runs["family"] == f, "objective"] for f in order])
        points = runs["points"].map(_POINTS)
        x = runs["family"].map({f: i for i, f in enumerate(order)})
        ax.scatter(x, runs["objective"], s=25, color=points.tolist(), linewidth=0, zorder=3)
        ax.set_xticks(range(len(order)), order)
        ax.set_xlim(-0.5, len(order) - 0.5)
        ax.xaxis.grid(False)
        ax.set(xlabel="family", ylabel=objective, title=title)
        ax.tick_params(axis="x", rotation=30)
        if best_trials:
            dots = dict(linestyle="", marker="o", markersize=5, markeredgewidth=0)
            keys = [_key(label, color=color, **dots) for label, color in _POINTS.items()]
            ax.legend(handles=keys, fontsize="small")
    return Plot(key, title, figure, tuple(notes))


# ----------------------------------------------- seaborn 0.13's heatmap and boxplot, as drawn here

_POINTS = {"other runs": "0.55", "best strength's seeds": "#0173b2"}
_BOX_FACE, _BOX_LINE = (0.9, 0.9, 0.9), (0.54, 0.54, 0.54)  # the line: 60% of the face's lightness


def _heatmap(ax: Axes, table: pd.DataFrame, *, cmap: str | Colormap, label: str) -> None:
    """`table` as colored cells (blank where NaN), each annotated with its value (".3g"; dark
    text on light cells), rows top to bottom, a colorbar labelled `label`, no spines."""
    values = np.ma.masked_invalid(table.to_numpy(dtype=float))
    limits = dict(vmin=values.min(), vmax=values.max())
    mesh = ax.pcolormesh(values, cmap=cmap, **limits, linewidths=0, edgecolor="white")
    rows, columns = values.shape
    ax.set(xlim=(0, columns), ylim=(0, rows))
    ax.invert_yaxis()
    ax.figure.colorbar(mesh, ax=ax, label=label).outline.set_linewidth(0)
    ax.set_xticks(np.arange(columns) + 0.5, list(table.columns))
    ax.set_yticks(np.arange(rows) + 0.5, list(table.index), rotation="vertical", va="center")
    ax.spines[:].set_visible(False)
    mesh.update_scalarmappable()
    blank = np.ma.getmaskarray(values)
    for (row, column), color in zip(np.ndindex(rows, columns), mesh.get_facecolors(), strict=True):
        if not blank[row, column]:
            rgb = to_rgba_array(color)[0, :3]
            linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
            text = ".15" if linear @ [0.2126, 0.7152, 0.0722] > 0.408 else "w"
            value = f"{values[row, column]:.3g}"
            ax.text(column + 0.5, row + 0.5, value, color=text, ha="center", va="center")


def _boxes(ax: Axes, groups: list[pd.Series]) -> None:
    """A box per group at 0, 1, ... (quartiles, whiskers to 1.5 IQR, no fliers)."""
    stats = boxplot_stats([g.to_numpy(dtype=float) for g in groups], whis=1.5)
    ax.bxp(
        stats,
        positions=range(len(groups)),
        widths=0.8,
        capwidths=0.4,
        patch_artist=True,
        manage_ticks=False,
        showfliers=False,
        boxprops={"facecolor": _BOX_FACE, "edgecolor": _BOX_LINE},
        medianprops={"color": _BOX_LINE, "solid_capstyle": "butt"},
        whiskerprops={"color": _BOX_LINE, "solid_capstyle": "butt"},
        capprops={"color": _BOX_LINE},
    )
