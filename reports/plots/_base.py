"""Shared pieces of the report's figures: the `Plot` record, sizes and style, colours per
family, and small frame helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reports.compare import FAMILIES, assign_families
from search_spaces.keys import regularizer_of
from study.results import Status, check_direction, direction_of

DPI = 100
MAX_WIDTH = 11.0  # inches
FAILED_MARKER = dict(marker="X", color="#d55e00", s=60, edgecolor="black", linewidth=0.5)
_GAP_LABELS = {
    "gap_loss_best": "val_loss − train_loss at the best epoch",
    "gap_loss_final": "val_loss − train_loss at the final epoch",
    "gap_accuracy_best": "train_accuracy − val_accuracy at the best epoch",
    "gap_accuracy_final": "train_accuracy − val_accuracy at the final epoch",
}


class Plot(NamedTuple):
    """One figure of the report; `figure` is None when nothing could be drawn, and `notes` say
    what could not be drawn and why."""

    key: str
    title: str
    figure: Figure | None
    notes: tuple[str, ...] = ()


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """seaborn's theme for the figures made inside, restored on leaving (no global change)."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        yield


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(min(width, MAX_WIDTH), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _palette(n: int) -> list[tuple[float, float, float]]:
    return sns.color_palette("colorblind", n_colors=max(n, 1))[:n]


def _family_colors(families: Collection[str]) -> dict[str, tuple[float, float, float]]:
    """A fixed color per family (the same in every figure), in `FAMILIES` order, others after."""
    present = set(families)
    others = sorted(present - set(FAMILIES))
    palette = sns.color_palette("colorblind", n_colors=len(FAMILIES) + len(others))
    index = {f: i for i, f in enumerate([*FAMILIES, *others])}
    return {f: palette[index[f]] for f in [*FAMILIES, *others] if f in present}


def _legend_outside(figure: Figure, ax: Axes) -> None:
    legend = ax.get_legend()
    if legend is None:
        return
    handles, labels = ax.get_legend_handles_labels()
    legend.remove()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)


def _families(frame: pd.DataFrame) -> pd.Series:
    return frame["family"] if "family" in frame else assign_families(frame)


def _components(family: str) -> set[str]:
    """The regularizers of a family name: "dropout+l1l2" -> {"dropout", "l1", "l2"}."""
    parts = family.split("+")
    penalties = "".join(p for p in parts if p != "dropout")
    found = {p for p in ("l1", "l2") if p in penalties}
    return found | {"dropout"} if "dropout" in parts else found


def _strength_component(name: str) -> str | None:
    """The regularizer ("dropout", "l1", "l2") whose strength `name` sets, by its KeySpec."""
    return regularizer_of(name)


def _complete(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if frame.empty or column not in frame or "status" not in frame:
        return frame.iloc[:0]
    values = pd.to_numeric(frame[column], errors="coerce")
    return frame[(frame["status"] == Status.COMPLETE) & np.isfinite(values)]


def _direction(direction: str | None, objective: str) -> str:
    """`direction`, checked; when None, the objective's (`study.results.direction_of`)."""
    return direction_of(objective) if direction is None else check_direction(direction)


def _mark_at_worst_edge(ax: Axes, x: pd.Series, *, direction: str, label: str) -> None:
    """x marks (`FAILED_MARKER`) at `x`, on the worst edge of the y-axis: the bottom when
    maximizing, the top when minimizing."""
    ax.scatter(
        x,
        np.full(len(x), 0.03 if direction == "maximize" else 0.97),
        transform=ax.get_xaxis_transform(),
        clip_on=False,
        zorder=3,
        label=label,
        **FAILED_MARKER,
    )


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _curve_metrics(epochs: pd.DataFrame) -> list[str]:
    """The loss and the first other metric recorded for both splits."""
    names = [c.removeprefix("val_") for c in epochs if c.startswith("val_")]
    names = [n for n in names if f"train_{n}" in epochs]
    return sorted(names, key=lambda n: n != "loss")[:2]


def _long_curves(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """label, seed, epoch, metric, split ("train"/"validation"), value (non-finite dropped)."""
    pieces = []
    for metric in metrics:
        for split, prefix in (("train", "train_"), ("validation", "val_")):
            if frame.empty or f"{prefix}{metric}" not in frame:
                continue
            values = pd.to_numeric(frame[f"{prefix}{metric}"], errors="coerce")
            pieces.append(
                frame[["label", "seed", "epoch"]].assign(metric=metric, split=split, value=values)
            )
    columns = ["label", "seed", "epoch", "metric", "split", "value"]
    long = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=columns)
    return long[np.isfinite(long["value"].to_numpy(dtype=float))]


def _positions(values: pd.Series) -> tuple[pd.Series, list[str] | None]:
    """Numeric values as they are (ticks None); others as positions of their sorted levels."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.to_numeric(values, errors="coerce").astype(float), None
    levels = sorted(values.dropna().astype(str).unique())
    mapping = {v: float(i) for i, v in enumerate(levels)}
    positions = values.map(lambda v: mapping.get(str(v)) if pd.notna(v) else np.nan)
    return positions.astype(float), levels


def _set_scale(ax: Axes, x: pd.Series, *, force_log: bool) -> None:
    positive = x[x > 0]
    if positive.empty:
        return
    spread = positive.max() / positive.min() >= 10
    if (force_log or spread) and (x > 0).all():
        ax.set_xscale("log")
    elif force_log or spread:
        ax.set_xscale("symlog", linthresh=float(positive.min()))
