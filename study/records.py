"""The campaign's results as two tidy frames, the same whichever engine ran it.

- trials: one row per configuration x seed, unique by (trial, seed): `trial`, `seed`, `status`,
  `param_<name>` for every fixed and searched value, `best_epoch` (1-based, the epoch of the best
  objective), `best_<split>_<metric>` (at that epoch), `final_<split>_<metric>`, `duration_s`,
  `failure`, and `test_<metric>` on the rows of the chosen configuration (NaN elsewhere).
- epochs: one row per configuration x seed x epoch: `trial`, `seed`, `epoch` (1-based),
  `train_<metric>` and `val_<metric>` for the loss and every compiled metric.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from study.manifest import MANIFEST_FILE
from study.results import best_index, check_direction, configuration_objective, direction_of
from study.store import STORE_NAME, RecordStore, is_remote

CAMPAIGN_FILE = "campaign.json"
REPORT_FILE = "report.html"  # written by reports.html
# What every reader of campaign.json relies on: each table, and the [campaign] keys with types.
_FROZEN_TABLES = ("campaign", "data", "model", "train", "space")
_FROZEN_KEYS = {"name": str, "engine": str, "strategy": str, "seeds": list, "objective": str}


class FolderError(ValueError):
    """A campaign folder that cannot be used: not one, a damaged file in it, or not writable."""


class Records(NamedTuple):
    trials: pd.DataFrame
    epochs: pd.DataFrame


def read_frozen_campaign(directory: str | Path) -> dict[str, Any]:
    """The resolved campaign a folder froze (DIR/campaign.json), checked for the tables and
    keys that its readers use."""
    path = Path(directory) / CAMPAIGN_FILE
    if not path.exists():
        raise FolderError(f"{directory}: not a campaign folder (no {CAMPAIGN_FILE})")
    resolved = read_json_file(path)
    if not isinstance(resolved, dict):
        raise FolderError(f"{path}: damaged: holds a {type(resolved).__name__}, not the tables")
    missing = [t for t in _FROZEN_TABLES if not isinstance(resolved.get(t), dict)]
    if missing:
        raise FolderError(f"{path}: damaged: no table {missing[0]!r}")
    campaign = resolved["campaign"]
    for key, kind in _FROZEN_KEYS.items():
        if not isinstance(campaign.get(key), kind):
            raise FolderError(f"{path}: damaged: campaign.{key} missing or not a {kind.__name__}")
    if not isinstance(campaign.get("storage"), str | None):
        raise FolderError(f"{path}: damaged: campaign.storage is not a string")
    return resolved


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """DIR/manifest.json, checked for the keys its readers use; None when there is none."""
    path = Path(directory) / MANIFEST_FILE
    if not path.exists() and not path.is_symlink():
        return None
    manifest = read_json_file(path)
    if not isinstance(manifest, dict):
        raise FolderError(f"{path}: damaged: holds a {type(manifest).__name__}, not an object")
    if not isinstance(manifest.get("data_fingerprint"), str):
        raise FolderError(f"{path}: damaged: data_fingerprint is missing or not a string")
    if not isinstance(manifest.get("sessions"), list):
        raise FolderError(f"{path}: damaged: sessions is missing or not a list")
    return manifest


def read_json_file(path: Path) -> Any:
    """A JSON file of the folder, or FolderError naming it and what is wrong."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FolderError(f"{path}: cannot read it ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FolderError(f"{path}: damaged: not valid JSON ({error})") from None


def check_writable(directory: str | Path, *, flag: str = "", why: str = "") -> None:
    """Refuse a folder that cannot be created or written in, without writing anything to it:
    `flag` (such as "--out") names where the folder came from, `why` why it must be written."""
    directory = Path(directory)
    where = f"{flag} {directory}" if flag else str(directory)
    existing = next(p for p in (directory, *directory.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        what = "is a file" if existing == directory else f"is under a file ({existing})"
        raise FolderError(f"{where}: {what}, not a folder")
    try:  # an unnamed file (O_TMPFILE): the real test, whoever runs it, leaves nothing behind
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        place = "it" if existing == directory else str(existing)
        raise FolderError(
            f"{where}: cannot write in {place} ({error.strerror}){why}; "
            "copy the folder somewhere writable"
        ) from None


def open_records(directory: Path, campaign: Mapping[str, Any]) -> RecordStore:
    """The record store of a folder's campaign (its frozen [campaign] table), opened to read:
    nothing is created or changed."""
    storage = campaign.get("storage")  # a shared database holds the records of this campaign
    if not is_remote(storage):
        if not (directory / STORE_NAME).exists():
            raise FolderError(f"{directory}: not a campaign folder (no {STORE_NAME})")
        check_writable(directory, why=f", which SQLite needs to read {STORE_NAME}")
    return RecordStore.for_campaign(directory, campaign["name"], storage, create=False)


def load(directory: str | Path) -> Records:
    """The trials and epochs frames of the campaign in `directory`."""
    directory = Path(directory)
    campaign = read_frozen_campaign(directory)["campaign"]
    read_manifest(directory)
    store = open_records(directory, campaign)
    try:
        configurations, runs = store.configurations(), store.runs()
    finally:
        store.close()
    objective, direction = campaign["objective"], direction_of(campaign["objective"])
    trial_rows, epoch_rows = [], []
    for run in runs:
        row: dict[str, Any] = {"trial": run.trial, "seed": run.seed, "status": run.status}
        row |= {f"param_{k}": v for k, v in configurations[run.trial].items()}
        row |= summarize_history(run.history, objective, direction)
        row |= {"duration_s": run.duration_s, "failure": run.failure}
        row |= {f"test_{k}": v for k, v in (run.test or {}).items()}
        trial_rows.append(row)
        n_epochs = max((len(v) for v in run.history.values()), default=0)
        for e in range(n_epochs):
            epoch_rows.append(
                {"trial": run.trial, "seed": run.seed, "epoch": e + 1}
                | {k: v[e] if e < len(v) else math.nan for k, v in run.history.items()}
            )
    trials = pd.DataFrame(trial_rows, columns=_ordered(trial_rows, ["trial", "seed", "status"]))
    epochs = pd.DataFrame(epoch_rows, columns=_ordered(epoch_rows, ["trial", "seed", "epoch"]))
    return Records(trials, epochs)


def summarize_history(
    history: Mapping[str, list[float]], objective: str, direction: str
) -> dict[str, float]:
    """`best_epoch`, `best_<column>` at the epoch of the best objective
    (`study.results.best_index`), `final_<column>`."""
    best = best_index(history.get(objective, []), direction)
    out: dict[str, float] = {"best_epoch": math.nan if best is None else best + 1}
    for column, series in history.items():
        out[f"best_{column}"] = (
            series[best] if best is not None and best < len(series) else math.nan
        )
    for column, series in history.items():
        out[f"final_{column}"] = series[-1] if series else math.nan
    return out


def configuration_objectives(trials: pd.DataFrame, *, objective: str) -> pd.Series:
    """Each configuration's objective (`study.results.configuration_objective`: NaN unless every
    seed is COMPLETE with a finite `best_<objective>`), indexed by `trial` in trial order."""
    column = f"best_{objective}"
    if trials.empty or column not in trials:
        return pd.Series(dtype=float, name="objective", index=pd.Index([], name="trial"))
    values = pd.to_numeric(trials[column], errors="coerce")
    objectives = {
        trial: configuration_objective(runs["status"], values[runs.index])
        for trial, runs in trials.groupby("trial", sort=True)
    }
    return pd.Series(objectives, dtype=float, name="objective").rename_axis("trial")


def rank_by_objective(scores: pd.Series, direction: str) -> pd.Series:
    """1 for the best score, equal scores sharing the better rank; NaN scores are not ranked."""
    return scores.rank(method="min", ascending=check_direction(direction) == "minimize")


def rank_configurations(trials: pd.DataFrame, objective: str, direction: str) -> pd.DataFrame:
    """The configurations that have an objective (`configuration_objectives`), best first, the
    lower trial first on ties: `trial`, `seeds`, `mean` (the objective), `std` (over seeds)."""
    objectives = configuration_objectives(trials, objective=objective).dropna()
    if objectives.empty:
        return pd.DataFrame(columns=["trial", "seeds", "mean", "std"])
    values = pd.to_numeric(trials[f"best_{objective}"], errors="coerce")
    spread = values.groupby(trials["trial"]).agg(["count", "std"]).loc[objectives.index]
    table = pd.DataFrame(
        {"seeds": spread["count"], "mean": objectives, "std": spread["std"]}
    ).reset_index()
    ascending = check_direction(direction) == "minimize"
    return table.sort_values("mean", ascending=ascending, kind="stable").reset_index(drop=True)


def chosen_configuration(
    trials: pd.DataFrame,
    configurations: Mapping[int, Mapping[str, Any]],
    *,
    objective: str,
    direction: str,
    searched: Iterable[str],
) -> dict[str, Any] | None:
    """The configuration the campaign chooses (the first of `rank_configurations`), as `study
    run` reports it: `trial`, its `searched` `values`, `validation` (`mean` and `std` over its
    seeds, and `seeds`), and `test`: per seed, the test metrics it was evaluated with (empty
    until the campaign has evaluated it). None when no configuration completed on every seed."""
    ranking = rank_configurations(trials, objective, direction)
    if ranking.empty:
        return None
    best = ranking.iloc[0]
    trial = int(best["trial"])
    values = configurations[trial]
    rows = trials[trials["trial"] == trial]
    test_columns = [c for c in rows.columns if c.startswith("test_")]
    test = {
        int(row["seed"]): {c.removeprefix("test_"): float(row[c]) for c in test_columns}
        for _, row in rows.iterrows()
        if test_columns and not row[test_columns].isna().all()
    }
    return {
        "trial": trial,
        "values": {k: values[k] for k in searched if k in values},
        "validation": {
            "mean": float(best["mean"]),
            "std": float(best["std"]),
            "seeds": int(best["seeds"]),
        },
        "test": test,
    }


def _ordered(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    """Column order: `first`, then the others in order of first appearance."""
    seen = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)
