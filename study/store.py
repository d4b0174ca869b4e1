"""The record store: one SQLite database per campaign folder, written by the trial loop.

Engines keep their own state (what to try next); this store keeps what was trained, one row per
configuration x seed with its full per-epoch history, the same whichever engine asked for it. Every
write is one committed transaction, so a run killed at any moment leaves the store intact, and a
finished configuration x seed is found here and never trained again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.results import RUNNING, RunResult

STORE_NAME = "records.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS configurations (
    trial INTEGER PRIMARY KEY,          -- names the configuration; shared by its seeds
    key TEXT NOT NULL UNIQUE,           -- search_spaces.configuration_key of its values
    params TEXT NOT NULL                -- JSON: every fixed and searched value
);
CREATE TABLE IF NOT EXISTS runs (
    trial INTEGER NOT NULL REFERENCES configurations(trial),
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,               -- RUNNING, COMPLETE, FAILED, PRUNED
    history TEXT NOT NULL DEFAULT '{}', -- JSON: {"train_loss": [...], "val_loss": [...], ...}
    duration_s REAL,
    failure TEXT NOT NULL DEFAULT '',
    test TEXT,                          -- JSON test metrics; only the chosen configuration's
    PRIMARY KEY (trial, seed)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredRun:
    trial: int
    seed: int
    status: str
    history: dict[str, list[float]]
    duration_s: float | None
    failure: str
    test: dict[str, float] | None


class RecordStore:
    """Configurations, runs and campaign-level facts (such as the chosen configuration)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def trial_for(self, key: str, params: Mapping[str, Any]) -> int:
        """The trial number of a configuration, given one the first time it is seen."""
        with self._transaction() as db:
            row = db.execute("SELECT trial FROM configurations WHERE key = ?", (key,)).fetchone()
            if row:
                return row[0]
            cursor = db.execute(
                "INSERT INTO configurations (key, params) VALUES (?, ?)",
                (key, json.dumps(dict(params))),
            )
            return int(cursor.lastrowid)

    def run(self, trial: int, seed: int) -> StoredRun | None:
        row = self._db.execute(
            "SELECT trial, seed, status, history, duration_s, failure, test FROM runs"
            " WHERE trial = ? AND seed = ?",
            (trial, seed),
        ).fetchone()
        return _stored_run(row) if row else None

    def start_run(self, trial: int, seed: int) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs (trial, seed, status) VALUES (?, ?, ?)",
                (trial, seed, RUNNING),
            )

    def finish_run(self, trial: int, seed: int, result: RunResult) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, history = ?, duration_s = ?, failure = ?"
                " WHERE trial = ? AND seed = ?",
                (
                    result.status,
                    json.dumps(result.history),
                    result.duration_s,
                    result.failure,
                    trial,
                    seed,
                ),
            )

    def set_test(self, trial: int, seed: int, metrics: Mapping[str, float]) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET test = ? WHERE trial = ? AND seed = ?",
                (json.dumps(dict(metrics)), trial, seed),
            )

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def configurations(self) -> dict[int, dict[str, Any]]:
        rows = self._db.execute("SELECT trial, params FROM configurations ORDER BY trial")
        return {trial: json.loads(params) for trial, params in rows}

    def runs(self) -> list[StoredRun]:
        rows = self._db.execute(
            "SELECT trial, seed, status, history, duration_s, failure, test FROM runs"
            " ORDER BY trial, seed"
        )
        return [_stored_run(row) for row in rows]


def _stored_run(row: tuple) -> StoredRun:
    trial, seed, status, history, duration_s, failure, test = row
    return StoredRun(
        trial,
        seed,
        status,
        json.loads(history),
        duration_s,
        failure,
        json.loads(test) if test else None,
    )
