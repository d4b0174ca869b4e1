"""The HTML report: one self-contained file (figures embedded as PNG, no network), the only module
of `reports` that writes files.

`write_report(DIR)` writes DIR/report.html for one campaign; `write_comparison([DIR, ...], out=)`
writes one page over several campaigns (the same space under two engines, or a Dropout campaign
and an L2 campaign), with a pooled regularizer comparison when they share data and objective.
Every string that came from a user is escaped by the template (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import gc
import io
import json
import math
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jinja2
import pandas as pd

from reports import ReportError
from reports._fork import in_fork
from reports._format import format_number
from reports.compare import compare_families, describe_comparison, pool_diagnoses
from reports.diagnostics import diagnose_runs, summarize_configurations
from reports.search import hyperparameter_importance
from reports.summary import Headline, headline
from study.atomic import write_atomically
from study.records import (
    REPORT_FILE,
    FolderError,
    check_writable,
    load,
    read_frozen_campaign,
    read_manifest,
)
from study.results import Status, direction_of
from study.store import StoreError

if TYPE_CHECKING:  # reports.plots imports matplotlib: only when a report draws
    from matplotlib.figure import Figure

    from reports.plots import Plot

_TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class CampaignRecords:
    """What a campaign folder holds: the resolved campaign, the manifest and the two frames."""

    directory: Path
    campaign: dict[str, Any]  # campaign.json: the resolved campaign as frozen when it started
    manifest: dict[str, Any]
    trials: pd.DataFrame
    epochs: pd.DataFrame

    @property
    def name(self) -> str:
        return str(self.campaign["campaign"]["name"])

    @property
    def objective(self) -> str:
        return str(self.campaign["campaign"]["objective"])

    @property
    def direction(self) -> str:
        return direction_of(self.objective)

    @property
    def searched(self) -> list[str]:
        return list(self.campaign.get("space", {}))


def read_campaign(directory: str | Path) -> CampaignRecords:
    directory = Path(directory)
    try:
        trials, epochs = load(directory)
        campaign, manifest = read_frozen_campaign(directory), read_manifest(directory) or {}
    except (FolderError, StoreError) as error:
        raise ReportError(error) from None
    return CampaignRecords(directory, campaign, manifest, trials, epochs)


def _check_out(path: Path) -> None:
    """Refuse, before any analysis, a report path that cannot be written."""
    if path.is_dir():
        raise ReportError(f"{path}: a folder, not a file to write the report to")
    try:
        check_writable(path.parent)
    except FolderError as error:
        raise ReportError(f"{path}: cannot write it ({error})") from None


def _write(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as error:  # a read-only folder, a file where a folder should be, a full disk
        raise ReportError(f"{path}: cannot write it ({error.strerror or error})") from None


class CampaignAnalysis(NamedTuple):
    records: CampaignRecords
    diagnosis: pd.DataFrame
    configurations: pd.DataFrame
    families: pd.DataFrame
    family_sentences: list[str]
    headline: Headline
    plots: list[Plot]
    pngs: dict[int, bytes]  # id(figure) -> the figure as a PNG, encoded as soon as it was drawn


def analyse(records: CampaignRecords) -> CampaignAnalysis:
    """Every figure and table of one campaign's report, computed from its frames."""
    r = records
    # scikit-learn's forest (seconds of imports) in a child, while this process draws the rest
    importance = in_fork(
        hyperparameter_importance, r.trials, objective=r.objective, searched=r.searched
    )
    from reports.plots import report_plots  # matplotlib: after the fork, the child needs none

    pngs: dict[int, bytes] = {}

    def encode(plots: list[Plot]) -> None:  # while the importance is computed elsewhere
        figures = [p.figure for p in plots if p.figure is not None]
        pngs.update(zip(map(id, figures), _pngs(figures), strict=True))

    diagnosis = diagnose_runs(r.trials, r.epochs, objective=r.objective)
    configurations = summarize_configurations(diagnosis, direction=r.direction)
    families = compare_families(diagnosis, direction=r.direction)
    return CampaignAnalysis(
        records=r,
        diagnosis=diagnosis,
        configurations=configurations,
        families=families,
        family_sentences=describe_comparison(families),
        headline=headline(r.trials, configurations, searched=r.searched, objective=r.objective),
        plots=report_plots(
            r.trials,
            r.epochs,
            objective=r.objective,
            direction=r.direction,
            searched=r.searched,
            diagnosis=diagnosis,
            configurations=configurations,
            families=families,
            importance=importance,
            before_importance=encode,
        ),
        pngs=pngs,
    )


def write_report(directory: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the campaign's report (default DIR/report.html) and return its path."""
    with _no_cycle_collection():
        records = read_campaign(directory)
        path = Path(out) if out else Path(directory) / REPORT_FILE
        _check_out(path)
        analysis = analyse(records)
        _write(path, render([analysis], title=f"{analysis.records.name}: campaign report"))
    return path


def write_comparison(directories: Sequence[str | Path], *, out: str | Path) -> Path:
    """Write one report over several campaigns to `out` and return its path."""
    if len(directories) < 2:
        raise ReportError("compare needs at least two campaign folders")
    path = Path(out)
    _check_out(path)
    with _no_cycle_collection():
        analyses = [analyse(read_campaign(d)) for d in directories]
        names = " vs ".join(a.records.name for a in analyses)
        pooled = pooled_comparison(analyses)
        _write(path, render(analyses, title=f"Comparison: {names}", pooled=pooled))
    return path


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while a report is made (and in its forked children): it
    makes a great many objects (frames, artists, imported modules) that reference counting
    frees, and the collector's passes over them were a twentieth of its CPU time, for 3 MB."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class PooledComparison(NamedTuple):
    families: pd.DataFrame | None  # None when the campaigns cannot be pooled
    sentences: list[str]
    plot: Plot | None


def pooled_comparison(analyses: Sequence[CampaignAnalysis]) -> PooledComparison:
    """The regularizer families of all campaigns compared as one, when that is fair: the same
    data (fingerprint) and the same objective."""
    objectives = {a.records.objective for a in analyses}
    data = {a.records.manifest.get("data_fingerprint") for a in analyses}
    if len(objectives) > 1:
        return PooledComparison(
            None,
            [
                f"Objectives differ ({', '.join(sorted(objectives))}): "
                "the families are compared within each campaign only."
            ],
            None,
        )
    if len(data) > 1:
        return PooledComparison(
            None,
            [
                "The campaigns ran on different data: the families are "
                "compared within each campaign only."
            ],
            None,
        )
    from reports.plots import plot_family_distributions

    pooled = pool_diagnoses([a.diagnosis for a in analyses])
    direction = analyses[0].records.direction
    families = compare_families(pooled, direction=direction)
    plot = plot_family_distributions(pooled, objective=analyses[0].records.objective)
    return PooledComparison(families, describe_comparison(families), plot)


# ---------------------------------------------------------------------------------- rendering


class Cell(NamedTuple):
    text: str
    sort: str  # the value the table sorts by (numbers as numbers)
    numeric: bool


class Table(NamedTuple):
    columns: list[str]
    rows: list[list[Cell]]


def render(
    analyses: Sequence[CampaignAnalysis], *, title: str, pooled: PooledComparison | None = None
) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    return environment.get_template("report.html.j2").render(
        title=title,
        generated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        campaigns=[_campaign_context(a) for a in analyses],
        overview=_overview(analyses) if len(analyses) > 1 else None,
        pooled=None
        if pooled is None
        else {
            "table": _families_table(pooled.families) if pooled.families is not None else None,
            "sentences": pooled.sentences,
            "figure": _figures([pooled.plot])[0] if pooled.plot is not None else None,
        },
    )


def _campaign_context(a: CampaignAnalysis) -> dict[str, Any]:
    r, h = a.records, a.headline
    c = r.campaign["campaign"]
    failed = a.diagnosis[a.diagnosis["status"] != Status.COMPLETE]
    return {
        "name": r.name,
        "directory": str(r.directory),
        "campaign": c,
        "dataset": r.campaign.get("data", {}).get("dataset", ""),
        "objective": r.objective,
        "direction": r.direction,
        "headline": h,
        "family_sentences": a.family_sentences,
        "families": _families_table(a.families),
        "figures": _figures(a.plots, a.pngs),
        "configurations": _table(a.configurations, searched=r.searched, first=["rank"]),
        "runs": _table(
            a.diagnosis,
            searched=r.searched,
            drop=["failure", "n_epochs", "min_val_loss", "final_val_loss"],
        ),
        "failed": _table(failed[["trial", "seed", "status", "failure"]]),
        "manifest": r.manifest,
        "sessions": r.manifest.get("sessions", []),
        "resolved": json.dumps(r.campaign, indent=2),
        "rerun": _rerun_command(r),
        "verify": shlex.join(["study", "verify", str(r.directory.resolve())]),
    }


def _overview(analyses: Sequence[CampaignAnalysis]) -> Table:
    """One row per campaign: what ran and what it found."""
    rows = []
    for a in analyses:
        h, c = a.headline, a.records.campaign["campaign"]
        best = ", ".join(f"{k}={format_number(v)}" for k, v in h.best_values.items()) or "—"
        rows.append(
            [
                _cell(a.records.name),
                _cell(c["engine"]),
                _cell(c["strategy"]),
                _cell(a.records.objective),
                _cell(int(a.records.trials["trial"].nunique()) if len(a.records.trials) else 0),
                _cell(sum(h.runs.values())),
                _cell(best),
                _cell(h.objective_mean),
                _cell(h.objective_low),
                _cell(h.objective_high),
                _cell(", ".join(f"{k} {format_number(v)}" for k, v in h.test.items()) or "—"),
            ]
        )
    columns = [
        "campaign",
        "engine",
        "strategy",
        "objective",
        "configurations",
        "runs",
        "best configuration",
        "mean",
        "95% low",
        "95% high",
        "test (mean over seeds)",
    ]
    return Table(columns, rows)


def _families_table(families: pd.DataFrame) -> Table:
    return _table(families, first=["rank", "family"], drop=["is_baseline"])


def _table(
    frame: pd.DataFrame,
    *,
    searched: Sequence[str] | None = None,
    first: Sequence[str] = (),
    drop: Sequence[str] = (),
) -> Table:
    """The frame as a table: `first` columns first, then the rest in order, less `drop` and
    (when `searched` is given) the fixed `param_*` columns; `param_` is left off the headers."""
    keep = [
        c
        for c in frame.columns
        if c not in drop
        and not (searched is not None and c.startswith("param_") and c[6:] not in searched)
    ]
    columns = [c for c in first if c in keep] + [c for c in keep if c not in first]
    rows = [[_cell(row[c]) for c in columns] for _, row in frame[columns].iterrows()]
    return Table([c.removeprefix("param_") for c in columns], rows)


def _cell(value: Any) -> Cell:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return Cell(format_number(value), str(value if value is not None else ""), False)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return Cell(str(value), str(value), False)
    sort = "" if math.isnan(number) else repr(number)
    return Cell(format_number(value), sort, True)


def _figures(
    plots: Sequence[Plot], pngs: Mapping[int, bytes] | None = None
) -> list[dict[str, Any]]:
    """Each plot for the template, its figure as a base64 PNG (or None); `pngs` holds those
    encoded already (by `id` of the figure)."""
    pngs = dict(pngs or {})
    figures = [p.figure for p in plots if p.figure is not None and id(p.figure) not in pngs]
    pngs.update(zip(map(id, figures), _pngs(figures), strict=True))
    return [
        {
            "key": p.key,
            "title": p.title,
            "image": None
            if p.figure is None
            else base64.b64encode(pngs[id(p.figure)]).decode("ascii"),
            "notes": list(p.notes),
        }
        for p in plots
    ]


def _pngs(figures: Sequence[Figure]) -> list[bytes]:
    """The figures as PNGs, drawn by one process per core this process may run on (this one and
    forked children, up to one per figure: drawing is most of the report's work), the k-th of
    n drawing every n-th figure from the k-th."""
    n = min(len(figures), _cores())
    if n < 2:
        return _draw(figures)
    others = [in_fork(_draw, figures[k::n]) for k in range(1, n)]
    pngs: list[bytes] = [b""] * len(figures)
    pngs[::n] = _draw(figures[::n])
    for k, result in enumerate(others, start=1):
        pngs[k::n] = result()
    return pngs


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use (a CPU set, a job)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _draw(figures: Sequence[Figure]) -> list[bytes]:
    return [_png(figure) for figure in figures]


def _png(figure: Figure) -> bytes:
    """The figure cropped to what it draws, plus 0.1 inch (as `bbox_inches="tight"`), laid out
    once and drawn once: `savefig` would lay it out in a draw of its own, then measure it in
    another, before the draw that makes the image."""
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine(None)  # the positions stay; savefig draws it once
    tight = figure.get_tightbbox(figure.canvas.get_renderer()).padded(0.1)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches=tight)
    return buffer.getvalue()


def _rerun_command(r: CampaignRecords) -> str | None:
    """`study run` of the folder's campaign into a new folder, runnable as printed from any
    folder (absolute, quoted paths); None when the campaign can no longer be named (the built-in
    default, changed since). The sessions' recorded commands are history: relative to the folder
    they ran in, passwords masked."""
    directory = r.directory.resolve()
    rerun = ["--out", str(directory.with_name(f"{directory.name}-rerun"))]
    if (directory / "campaign.toml").exists():
        return shlex.join(["study", "run", str(directory / "campaign.toml"), *rerun])
    if _is_the_default_campaign(r):
        return shlex.join(["study", "run", *rerun])
    return None


def _is_the_default_campaign(r: CampaignRecords) -> bool:
    """Whether `study run` with no file would run this folder's campaign today."""
    from study.config import load_campaign

    return load_campaign(None).fingerprint == r.manifest.get("campaign_fingerprint")
