"""The Python API, for notebooks and scripts: run a campaign, or read one back.

    import study

    result = study.run("campaign.toml", out="runs/mine")  # or a dict of the file's tables
    result.chosen          # the chosen configuration, its validation and test metrics
    result.trials          # one row per configuration x seed (study.records)
    result.epochs          # one row per epoch of every run
    result.report          # the HTML report's path
    result.model()         # the chosen configuration's trained Keras model (best seed)
    study.load("runs/mine")  # the same, for a finished or an interrupted folder

Nothing here prints a traceback or exits: bad input raises the typed errors the command line
turns into exit status 2 (`study.config.ConfigError`, `study.data.DataError`,
`study.campaign.CampaignError`, `study.records.FolderError`, `study.store.StoreError`,
`reports.html.ReportError`, `study.models.ModelError`). Progress shows as `study run`'s does
(a widget in Jupyter).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Result:
    """A campaign folder read back: what `study run` printed and wrote, as Python objects."""

    directory: Path
    campaign: dict[str, Any]  # the resolved campaign the folder froze (campaign.json)
    chosen: dict[str, Any] | None  # study.records.chosen_configuration; None: nothing complete
    trials: pd.DataFrame
    epochs: pd.DataFrame
    report: Path | None  # None until a report is written

    def model(self, trial: int | None = None, seed: int | None = None) -> Any:
        """A run's compiled Keras model with its best-epoch weights (`study.models`): by
        default the chosen configuration's, from its seed with the best value of the objective."""
        from study.models import ModelError, trained_model

        if trial is None:
            if self.chosen is None:
                raise ModelError(f"{self.directory}: no configuration has completed")
            trial = int(self.chosen["trial"])
        return trained_model(self.directory, trial, seed)


def run(
    source: str | Path | Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    progress: bool = True,
    report: bool = True,
) -> Result:
    """Run (or resume) a campaign and read its folder back.

    `source`: a campaign file's path, a mapping of its tables (`{"campaign": {...}, "data":
    {...}, ...}`, as the TOML file would give), or None for the built-in default campaign. In a
    mapping, `model.builder` and `data.dataset` may be the functions themselves (module-level
    functions: the folder freezes their import paths).
    `out`: the campaign folder (default `runs/<campaign.name>`). `report`: write the HTML
    report when the campaign ends."""
    from study.campaign import run_campaign
    from study.config import load_campaign, parse_campaign

    if isinstance(source, Mapping):
        tables, folder = _functions_named(source)
        campaign, text = parse_campaign(tables, source="campaign", folder=folder), None
    else:
        campaign = load_campaign(source)
        text = None if source is None else Path(source).read_text()
    directory = Path(out) if out is not None else Path("runs") / campaign.name
    run_campaign(campaign, directory, source_text=text, progress=progress)
    if report:
        from reports.html import write_report

        write_report(directory)
    return load(directory)


def _functions_named(source: Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """`source` with a builder or a loader given as a function replaced by its import path
    (a loader's with `py:`), and the folder of its module, where it is imported from again (by
    `--isolate` workers and `study verify`)."""
    from search_spaces.user_code import UserCodeError, import_path_of
    from study.config import ConfigError

    tables = {k: dict(v) if isinstance(v, Mapping) else v for k, v in source.items()}
    folder = None
    for section, key, prefix in (("model", "builder", ""), ("data", "dataset", "py:")):
        table = tables.get(section)
        function = table.get(key) if isinstance(table, dict) else None
        if not callable(function):
            continue
        try:
            table[key] = prefix + import_path_of(function)
        except UserCodeError as error:
            raise ConfigError(f"{section}.{key}: {error}") from None
        file = getattr(sys.modules.get(function.__module__), "__file__", None)
        folder = folder or (Path(file).parent if file else None)
    return tables, folder


def load(directory: str | Path) -> Result:
    """A campaign folder's records, chosen configuration and report (finished or not)."""
    from study import records
    from study.results import direction_of

    directory = Path(directory)
    campaign = records.read_frozen_campaign(directory)
    trials, epochs = records.load(directory)
    store = records.open_records(directory, campaign["campaign"])
    try:
        configurations = store.configurations()
    finally:
        store.close()
    objective = campaign["campaign"]["objective"]
    chosen = records.chosen_configuration(
        trials,
        configurations,
        objective=objective,
        direction=direction_of(objective),
        searched=campaign["space"],  # the searched keys (the frozen SearchSpace's JSON)
    )
    path = directory / records.REPORT_FILE
    return Result(
        directory=directory,
        campaign=campaign,
        chosen=chosen,
        trials=trials,
        epochs=epochs,
        report=path if path.exists() else None,
    )
