"""Shared pieces of the report's figures: the `Plot` record, sizes and style, colours per
family, and small frame helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports.compare import FAMILIES, assign_families
from search_spaces.keys import regularizer_of
from study.results import Status, check_direction, direction_of

DPI = 100
MAX_WIDTH = 11.0  # inches
FAILED_MARKER = dict(marker="X", color="#d55e00", s=60, edgecolor="black", linewidth=0.5)
# seaborn 0.13's look, drawn with matplotlib alone (importing seaborn costs a second): its
# "whitegrid" style in the "notebook" context at font_scale 0.85, as matplotlib settings ...
STYLE = {
    "axes.axisbelow": True,
    "axes.edgecolor": ".8",
    "axes.grid": True,
    "axes.labelcolor": ".15",
    "axes.labelsize": 10.2,
    "axes.linewidth": 1.25,
    "axes.titlesize": 10.2,
    # titles at the top of their axes, where matplotlib would place them: left to place them,
    # it measures every tick label at each draw (a quarter of the drawing time) to check for
    # labels above the axes, which no figure here has
    "axes.titley": 1.0,
    "font.sans-serif": [
        "Arial",
        "DejaVu Sans",
        "Liberation Sans",
        "Bitstream Vera Sans",
        "sans-serif",
    ],
    "font.size": 10.2,
    "grid.color": ".8",
    "grid.linewidth": 1.0,
    "legend.fontsize": 9.35,
    "legend.title_fontsize": 10.2,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "text.color": ".15",
    "xtick.bottom": False,
    "xtick.color": ".15",
    "xtick.labelsize": 9.35,
    "xtick.major.size": 6.0,
    "xtick.major.width": 1.25,
    "xtick.minor.size": 4.0,
    "xtick.minor.width": 1.0,
    "ytick.color": ".15",
    "ytick.labelsize": 9.35,
    "ytick.left": False,
    "ytick.major.size": 6.0,
    "ytick.major.width": 1.25,
    "ytick.minor.size": 4.0,
    "ytick.minor.width": 1.0,
}
# ... its "colorblind" palette ...
COLORBLIND = (
    *("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc"),
    *("#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"),
)
# ... and its "rocket" colormap, every fifth of its 256 colors (interpolated within 1/400).
_ROCKET = (
    "03051a 08081e 100b23 170f28 1e122d 251433 2d1738 34193d 3c1a42 431c46 4b1d4a 531e4d 5b1e51 "
    "631f53 6b1f56 731f58 7b1f59 841e5a 8c1d5b 951c5b 9e1a5b a6195a af1759 b71657 bf1654 c71951 "
    "ce1d4e d5224a db2946 e03143 e53940 e9423e ec4c3e ef5640 f06043 f26948 f3734e f47c55 f4845d "
    "f58d64 f5966c f69e75 f6a67e f6ae87 f6b691 f6be9b f7c6a6 f7cdb1 f8d4bc f8dcc7 f9e3d2 faebdd"
)
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
    """`STYLE` for the figures made inside, restored on leaving (no global change)."""
    with matplotlib.rc_context(STYLE):
        yield


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(min(width, MAX_WIDTH), height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _palette(n: int) -> list[tuple[float, float, float]]:
    """`n` colors of `COLORBLIND`, cycling past its ten."""
    return [to_rgb(COLORBLIND[i % len(COLORBLIND)]) for i in range(n)]


def _family_colors(families: Collection[str]) -> dict[str, tuple[float, float, float]]:
    """A fixed color per family (the same in every figure), in `FAMILIES` order, others after."""
    present = set(families)
    ordered = [*FAMILIES, *sorted(present - set(FAMILIES))]
    palette = _palette(len(ordered))
    return {f: palette[i] for i, f in enumerate(ordered) if f in present}


def _rocket(*, reverse: bool = False) -> LinearSegmentedColormap:
    colors = [f"#{c}" for c in _ROCKET.split()]
    return LinearSegmentedColormap.from_list("rocket", colors[::-1] if reverse else colors)


def _mean_line(
    ax: Axes, frame: pd.DataFrame, *, x: str, y: str, color: object, band: bool, **line: object
) -> None:
    """The mean of `y` at each `x` as a line and, with `band` and several values at some `x`,
    their range as a band (seaborn's lineplot of one group, `errorbar=("pi", 100)`)."""
    grouped = frame.groupby(x, sort=True)[y]
    mean = grouped.mean()
    ax.plot(mean.index, mean.to_numpy(), color=color, mew=0.75, mec="w", **line)
    if band and grouped.size().max() > 1:
        ax.fill_between(mean.index, grouped.min(), grouped.max(), color=color, alpha=0.2)


def _key(label: str, **line: object) -> Line2D:
    """A legend entry (a line that draws nothing); without `color`, a subtitle."""
    if "color" not in line:
        line |= {"color": "w", "linewidth": 0}
    return Line2D([], [], label=label, **line)


def _legend_outside(figure: Figure, handles: Sequence[Line2D]) -> None:
    labels = [h.get_label() for h in handles]
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
