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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from study.results import COMPLETE, direction_of
from study.store import STORE_NAME, RecordStore, is_remote

CAMPAIGN_FILE = "campaign.json"


class Records(NamedTuple):
    trials: pd.DataFrame
    epochs: pd.DataFrame


def load(directory: str | Path) -> Records:
    """The trials and epochs frames of the campaign in `directory`."""
    directory = Path(directory)
    if not (directory / CAMPAIGN_FILE).exists():
        raise FileNotFoundError(f"{directory}: not a campaign folder (no {CAMPAIGN_FILE})")
    campaign = json.loads((directory / CAMPAIGN_FILE).read_text())["campaign"]
    storage = campaign.get("storage")  # a shared database holds the records of this campaign
    if not is_remote(storage) and not (directory / STORE_NAME).exists():
        raise FileNotFoundError(f"{directory}: not a campaign folder (no {STORE_NAME})")
    store = RecordStore.for_campaign(directory, campaign["name"], storage)
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
    """`best_epoch`, `best_<column>` at the epoch of the best objective, `final_<column>`."""
    values = np.asarray(history.get(objective, []), dtype=float)
    out: dict[str, float] = {"best_epoch": math.nan}
    best = None
    if values.size and np.isfinite(values).any():
        scores = np.where(np.isfinite(values), values, np.nan)
        best = int(np.nanargmax(scores) if direction == "maximize" else np.nanargmin(scores))
        out["best_epoch"] = best + 1
    for column, series in history.items():
        out[f"best_{column}"] = (
            series[best] if best is not None and best < len(series) else math.nan
        )
    for column, series in history.items():
        out[f"final_{column}"] = series[-1] if series else math.nan
    return out


def rank_configurations(trials: pd.DataFrame, objective: str, direction: str) -> pd.DataFrame:
    """Configurations whose every seed is COMPLETE, best first, by the mean over seeds of the best
    validation objective: `trial`, `seeds`, `mean`, `std`."""
    column = f"best_{objective}"
    if trials.empty or column not in trials:
        return pd.DataFrame(columns=["trial", "seeds", "mean", "std"])
    complete = trials.groupby("trial").filter(lambda g: (g["status"] == COMPLETE).all())
    table = (
        complete.groupby("trial")[column].agg(seeds="count", mean="mean", std="std").reset_index()
    )
    return table.sort_values("mean", ascending=direction == "minimize", kind="stable").reset_index(
        drop=True
    )


def _ordered(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    """Column order: `first`, then the others in order of first appearance."""
    seen = dict.fromkeys(first)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)
