"""Records of tiny real campaigns (digits, 16 units, 2 epochs), each run once per test session.

Two campaigns are trained (14 runs); the one-seed and no-Dropout cases are subsets of the grid's
records, which are exactly what those campaigns would record (a run's seed derives from the
campaign seed, the configuration's values and the seed), without training them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from study.records import Records, load
from tests.conftest import tiny_campaign


def _run(tmp_path_factory, name: str, raw: dict[str, Any]) -> Path:
    from study.campaign import run_campaign
    from study.config import parse_campaign

    directory = tmp_path_factory.mktemp(name)
    run_campaign(parse_campaign(raw), directory, progress=False)
    return directory


@pytest.fixture(scope="session")
def grid_folder(tmp_path_factory) -> Path:
    """Dropout [0, 0.5] x L2 [0, 1e-3] (families none, dropout, l2, dropout+l2), seeds 0 and 1,
    on Optuna."""
    return _run(tmp_path_factory, "grid", tiny_campaign(train={"learning_rate": 0.01}))


@pytest.fixture(scope="session")
def grid_records(grid_folder) -> Records:
    return load(grid_folder)


@pytest.fixture(scope="session")
def one_seed_records(grid_records) -> Records:
    """The grid with seed 0 only: the records a campaign with `seeds = [0]` gives (every run's
    seed derives from the campaign seed, the configuration and the seed, so its runs are these)."""
    trials, epochs = grid_records
    return Records(
        trials[trials["seed"] == 0].reset_index(drop=True),
        epochs[epochs["seed"] == 0].reset_index(drop=True),
    )


@pytest.fixture(scope="session")
def failed_records(tmp_path_factory) -> Records:
    """Dropout x L2 [0, 100] with SGD at learning rate 1: every L2 = 100 run diverges (FAILED,
    and its configuration's second seed is skipped: one run at a time, population = 1)."""
    raw = tiny_campaign(
        campaign={"population": 1}, train={"optimizer": "sgd", "learning_rate": 1.0}
    )
    raw["space"] = {"dropout": [0.0, 0.5], "l2": [0.0, 100.0]}
    records = load(_run(tmp_path_factory, "failed", raw))
    failed = records.trials[records.trials["status"] == "FAILED"]
    assert len(failed) == 2 and failed["failure"].str.startswith("diverged").all()
    return records


@pytest.fixture(scope="session")
def no_dropout_records(grid_records) -> Records:
    """The grid's Dropout = 0 configurations: the records of a campaign that searches only L2
    [0, 1e-3] (Dropout fixed at its default 0): same values, same derived seeds, same trials."""
    trials, epochs = grid_records
    keep = set(trials.loc[trials["param_dropout"] == 0, "trial"])
    return Records(
        trials[trials["trial"].isin(keep)].reset_index(drop=True),
        epochs[epochs["trial"].isin(keep)].reset_index(drop=True),
    )
