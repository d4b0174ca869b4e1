"""The record store: what was trained, one row per configuration x seed with its full per-epoch
history, the same whichever engine asked for it.

By default one SQLite file per campaign folder (DIR/records.sqlite, WAL: several local worker
processes may write to it). With a PostgreSQL storage URL the same tables live in that database,
keyed by campaign name, so workers on several machines share them. Every write is one committed
transaction, so a process killed at any moment leaves the store intact.

Liveness and claims: this module alone decides who is alive and who trains a run. Each store
opened to write is one worker (`worker`, host:pid:token) with one row in the `workers` table,
whose heartbeat (the database's clock) a thread renews every `heartbeat_s` until the store is
closed; closing removes the row. `is_gone(worker)` is True once that worker's process on this
host is dead, or its heartbeat is older than `stale_after_s` (or gone). `start_run` atomically
claims a configuration x seed for this worker; it fails when the pair is finished, or claimed by
a worker that is not gone. A gone worker's claim is taken over. So no pair is trained twice at
once, whatever the engine proposes, and a pair left RUNNING by a killed process is trained
again. The Optuna driver follows the same `is_gone` for its RUNNING trials.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from study.results import FINISHED, RunResult, Status

STORE_NAME = "records.sqlite"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0

_T = TypeVar("_T")
_metadata = sa.MetaData()
_configurations = sa.Table(
    "configurations",
    _metadata,
    sa.Column("campaign", sa.Text, primary_key=True),  # "" in a campaign folder's own file
    sa.Column("trial", sa.Integer, primary_key=True, autoincrement=False),  # shared by seeds
    sa.Column("key", sa.Text, nullable=False),  # search_spaces.configuration_key of its values
    sa.Column("params", sa.Text, nullable=False),  # JSON: every fixed and searched value
    sa.UniqueConstraint("campaign", "key"),
)
_runs = sa.Table(
    "runs",
    _metadata,
    sa.Column("campaign", sa.Text, primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.Text, nullable=False),  # study.results.Status
    sa.Column("history", sa.Text, nullable=False, default="{}"),  # {"train_loss": [...], ...}
    sa.Column("duration_s", sa.Float),
    sa.Column("failure", sa.Text, nullable=False, default=""),
    sa.Column("test", sa.Text),  # JSON test metrics; only the chosen configuration's
    sa.Column("worker", sa.Text, nullable=False, default=""),  # host:pid:token of the claim
)
_workers = sa.Table(  # one row per open store that writes; files of earlier versions lack it
    "workers",
    _metadata,
    sa.Column("worker", sa.Text, primary_key=True),  # host:pid:token
    sa.Column("heartbeat", sa.Float, nullable=False),  # last sign of life (the database's clock)
)
_meta = sa.Table(
    "meta",
    _metadata,
    sa.Column("campaign", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_populations = sa.Table(  # which runs trained together, for the runs trained in a population
    "populations",
    _metadata,
    sa.Column("campaign", sa.Text, primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("population", sa.Text, nullable=False),  # JSON: members [[trial, seed], ...], ...
)
_weights = sa.Table(  # best-epoch weights, for a store that workers on other machines share
    "weights",
    _metadata,
    sa.Column("campaign", sa.Text, primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


class StoreError(RuntimeError):
    """A record store this version cannot use."""


@dataclass(frozen=True)
class StoredRun:
    trial: int
    seed: int
    status: str
    history: dict[str, list[float]]
    duration_s: float | None
    failure: str
    test: dict[str, float] | None


def is_remote(storage: str | None) -> bool:
    """Whether `storage` is a database URL that workers on several machines share."""
    return bool(storage) and storage.split(":", 1)[0].split("+", 1)[0] == "postgresql"


def store_url(directory: str | Path, storage: str | None) -> str:
    """Where a campaign's records live: the shared database, or DIR/records.sqlite."""
    return storage if is_remote(storage) else f"sqlite:///{Path(directory) / STORE_NAME}"


def check_storage(url: str, *, timeout_s: int = 5) -> str | None:
    """Why a storage URL cannot be used, or None when it is a PostgreSQL database that can be
    connected to. Nothing is written. Other databases are refused: SQLite is the default, in
    the campaign folder, and a campaign file may not place a file outside its folder."""
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return "not a database URL (expected postgresql://USER@HOST/DB)"
    if backend != "postgresql":
        return (
            f"{backend!r} is not supported: give a PostgreSQL URL (postgresql://USER@HOST/DB), "
            "or no storage for SQLite files in the campaign folder"
        )
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": timeout_s})
    except ModuleNotFoundError as error:
        return f"{error} (install the postgres extra: pip install 'regstudy[postgres]')"
    except Exception as error:  # a malformed URL
        return f"{type(error).__name__}: {error}"
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()
        return reason[0] if reason else type(error).__name__
    finally:
        engine.dispose()
    return None


def _worker_id() -> str:
    """host:pid:token, unique to one store object of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _is_dead_here(worker: str) -> bool:
    """Whether a worker id names a dead process of this host (False for other hosts: unknown)."""
    try:
        host, pid, _ = worker.rsplit(":", 2)
        return host == socket.gethostname() and not _alive(int(pid))
    except ValueError:
        return False  # not an id of this version: its heartbeat decides


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class RecordStore:
    """Configurations, runs and campaign-level facts (such as the chosen configuration).

    `location` is a SQLite file path or a database URL; `campaign` keys the rows (several
    campaigns may share one database)."""

    def __init__(
        self,
        location: str | Path,
        *,
        campaign: str = "",
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = STALE_AFTER_S,
        create: bool = True,
    ) -> None:
        """`create=False` opens an existing store to read it: nothing is created or changed,
        and a file that holds no records is refused. Otherwise the store is a worker, alive
        (its heartbeat renewed every `heartbeat_s`) until it is closed."""
        url = str(location) if "://" in str(location) else f"sqlite:///{location}"
        self.url, self.campaign, self.location = url, campaign, location
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.worker = _worker_id()
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite and Path(location).is_dir():
            raise StoreError(f"{location}: a folder where a SQLite file should be")
        if self.is_sqlite:
            self._engine = sa.create_engine(
                url, connect_args={"timeout": 60, "check_same_thread": False}
            )
            if create:  # WAL is in the file's header once set: a reader needs not set it
                sa.event.listen(self._engine, "connect", _sqlite_connect)
            sa.event.listen(self._engine, "begin", _sqlite_begin)
        else:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            if create:
                self._write(lambda conn: _metadata.create_all(conn))
            self._check_format(location)
            self._tracks_workers = sa.inspect(self._engine).has_table("workers")
            if create:
                self._write(
                    lambda conn: conn.execute(
                        _workers.insert().values(worker=self.worker, heartbeat=self._now(conn))
                    )
                )
        except sa.exc.SQLAlchemyError as error:
            self._engine.dispose()
            raise _unusable(location, error) from None
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        if create:
            self._beater = threading.Thread(target=self._beat, name="store-heartbeat", daemon=True)
            self._beater.start()

    def _check_format(self, location: str | Path) -> None:
        """Refuse a store an older version wrote (no claim columns), rather than fail later."""
        inspector = sa.inspect(self._engine)
        missing = [t for t in ("configurations", "runs") if not inspector.has_table(t)]
        if missing:
            self._engine.dispose()
            raise StoreError(f"{location}: holds no records (no {missing[0]} table)")
        columns = {c["name"] for c in inspector.get_columns("runs")}
        if not {"campaign", "worker"} <= columns:
            self._engine.dispose()
            raise StoreError(
                f"{location}: written by an older version of regstudy (no run claims); "
                "read it with sqlite3, or run the campaign again into a new folder"
            )

    @classmethod
    def for_campaign(
        cls, directory: str | Path, name: str, storage: str | None, *, create: bool = True
    ) -> RecordStore:
        """The store of a campaign: DIR/records.sqlite, or its rows in the shared database."""
        if is_remote(storage):
            return cls(storage, campaign=name, create=create)
        return cls(Path(directory) / STORE_NAME, create=create)

    @property
    def shares_weights(self) -> bool:
        """Whether best-epoch weights go into the store (workers on other machines need them)."""
        return not self.is_sqlite

    def close(self) -> None:
        """Stop the heartbeat; this worker is gone at once (its claims may be taken over)."""
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
            with contextlib.suppress(sa.exc.SQLAlchemyError):  # else gone once it is stale
                self._write(
                    lambda conn: conn.execute(
                        _workers.delete().where(_workers.c.worker == self.worker)
                    )
                )
        self._engine.dispose()

    # Transactions -------------------------------------------------------------------------

    def _write(self, work: Callable[[sa.Connection], _T]) -> _T:
        """One write transaction, retried when a concurrent writer wins a race on a key."""
        for attempt in range(30):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(write=True)
                    with conn.begin():
                        return work(conn)
            except sa.exc.IntegrityError:
                if attempt == 29:
                    raise
                time.sleep(random.uniform(0.01, 0.1))
        raise AssertionError("unreachable")

    def _read(self, statement: Any) -> list[Any]:
        try:
            with self._engine.connect() as conn:
                return list(conn.execute(statement))
        except sa.exc.DatabaseError as error:  # damaged pages surface when they are read
            raise _unusable(self.location, error) from None

    def _now(self, conn: sa.Connection) -> float:
        """Seconds since the epoch on the database's clock (one clock for every machine)."""
        if self.is_sqlite:
            return time.time()
        return float(conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar())

    # Configurations -------------------------------------------------------------------------

    def trial_for(self, key: str, params: Mapping[str, Any]) -> int:
        """The trial number of a configuration, given one the first time it is seen."""
        c = _configurations.c

        def work(conn: sa.Connection) -> int:
            found = conn.execute(
                sa.select(c.trial).where(c.campaign == self.campaign, c.key == key)
            ).scalar()
            if found is not None:
                return int(found)
            last = conn.execute(
                sa.select(sa.func.max(c.trial)).where(c.campaign == self.campaign)
            ).scalar()
            trial = (last or 0) + 1
            conn.execute(
                _configurations.insert().values(
                    campaign=self.campaign, trial=trial, key=key, params=json.dumps(dict(params))
                )
            )
            return trial

        return self._write(work)

    def configurations(self) -> dict[int, dict[str, Any]]:
        c = _configurations.c
        rows = self._read(
            sa.select(c.trial, c.params).where(c.campaign == self.campaign).order_by(c.trial)
        )
        return {trial: json.loads(params) for trial, params in rows}

    # Runs -------------------------------------------------------------------------------------

    def _run_columns(self) -> list[Any]:
        c = _runs.c
        return [c.trial, c.seed, c.status, c.history, c.duration_s, c.failure, c.test]

    def run(self, trial: int, seed: int) -> StoredRun | None:
        c = _runs.c
        rows = self._read(
            sa.select(*self._run_columns()).where(
                c.campaign == self.campaign, c.trial == trial, c.seed == seed
            )
        )
        return _stored_run(rows[0]) if rows else None

    def runs(self) -> list[StoredRun]:
        c = _runs.c
        rows = self._read(
            sa.select(*self._run_columns())
            .where(c.campaign == self.campaign)
            .order_by(c.trial, c.seed)
        )
        return [_stored_run(row) for row in rows]

    def start_run(self, trial: int, seed: int) -> bool:
        """Claim a configuration x seed for this worker; False when it is finished or a worker
        that is not gone holds it. The claim lasts as long as this worker lives."""
        c = _runs.c
        where = sa.and_(c.campaign == self.campaign, c.trial == trial, c.seed == seed)

        def work(conn: sa.Connection) -> bool:
            row = conn.execute(sa.select(c.status, c.worker).where(where).with_for_update()).first()
            claim = dict(
                status=Status.RUNNING,
                history="{}",
                duration_s=None,
                failure="",
                test=None,
                worker=self.worker,
            )
            if row is None:
                conn.execute(
                    _runs.insert().values(campaign=self.campaign, trial=trial, seed=seed, **claim)
                )
                return True
            status, worker = row
            if status in FINISHED:
                return False
            if worker != self.worker and not self._is_gone(conn, worker):
                return False
            conn.execute(_runs.update().where(where).values(**claim))
            return True

        return self._write(work)

    def finish_run(
        self,
        trial: int,
        seed: int,
        result: RunResult,
        *,
        population: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a run's outcome and, in the same transaction, the population it trained in
        (its `members` [[trial, seed], ...] in order, and the settings of its arithmetic);
        None: it trained alone (a population recorded by an earlier, killed attempt is dropped)."""
        c, p = _runs.c, _populations.c

        def work(conn: sa.Connection) -> None:
            conn.execute(
                _runs.update()
                .where(c.campaign == self.campaign, c.trial == trial, c.seed == seed)
                .values(
                    status=result.status,
                    history=json.dumps(result.history),
                    duration_s=result.duration_s,
                    failure=result.failure,
                )
            )
            conn.execute(
                _populations.delete().where(
                    p.campaign == self.campaign, p.trial == trial, p.seed == seed
                )
            )
            if population is not None:
                conn.execute(
                    _populations.insert().values(
                        campaign=self.campaign,
                        trial=trial,
                        seed=seed,
                        population=json.dumps(dict(population), sort_keys=True),
                    )
                )

        self._write(work)

    def populations(self) -> dict[tuple[int, int], dict[str, Any]]:
        """(trial, seed) -> the population that run trained in; runs trained alone are absent."""
        p = _populations.c
        if not sa.inspect(self._engine).has_table("populations"):  # opened to read, and older
            return {}
        rows = self._read(
            sa.select(p.trial, p.seed, p.population).where(p.campaign == self.campaign)
        )
        return {(trial, seed): json.loads(population) for trial, seed, population in rows}

    def running(self) -> int:
        """Runs that a live worker holds now (claims of gone workers not counted)."""
        c = _runs.c
        with self._engine.connect() as conn:
            workers = conn.execute(
                sa.select(c.worker).where(c.campaign == self.campaign, c.status == Status.RUNNING)
            ).scalars()
            return sum(not self._is_gone(conn, worker) for worker in list(workers))

    def status_counts(self) -> dict[str, int]:
        c = _runs.c
        rows = self._read(
            sa.select(c.status, sa.func.count())
            .where(c.campaign == self.campaign)
            .group_by(c.status)
        )
        return {status: int(n) for status, n in rows}

    def finished_runs(self) -> list[tuple[int, int]]:
        """(trial, seed) of the finished runs (COMPLETE, FAILED or PRUNED)."""
        c = _runs.c
        rows = self._read(
            sa.select(c.trial, c.seed).where(c.campaign == self.campaign, c.status.in_(FINISHED))
        )
        return [(int(trial), int(seed)) for trial, seed in rows]

    def set_test(self, trial: int, seed: int, metrics: Mapping[str, float]) -> None:
        c = _runs.c
        self._write(
            lambda conn: conn.execute(
                _runs.update()
                .where(c.campaign == self.campaign, c.trial == trial, c.seed == seed)
                .values(test=json.dumps(dict(metrics)))
            )
        )

    # Liveness ---------------------------------------------------------------------------------

    def is_gone(self, worker: str) -> bool:
        """Whether `worker` (a store's `worker` id) has stopped: its process on this host is
        dead, or its heartbeat is older than `stale_after_s`, or it has none (closed, or never
        seen). Its claims, and the Optuna trials it runs, are then anyone's to take over."""
        with self._engine.connect() as conn:
            return self._is_gone(conn, worker)

    def _is_gone(self, conn: sa.Connection, worker: str) -> bool:
        if _is_dead_here(worker) or not self._tracks_workers:  # no worker of this version
            return True
        w = _workers.c
        heartbeat = conn.execute(sa.select(w.heartbeat).where(w.worker == worker)).scalar()
        return heartbeat is None or self._now(conn) - heartbeat > self.stale_after_s

    def _beat(self) -> None:
        w = _workers.c
        while not self._stop.wait(self.heartbeat_s):
            try:
                self._write(
                    lambda conn: conn.execute(
                        _workers.update()
                        .where(w.worker == self.worker)
                        .values(heartbeat=self._now(conn))
                    )
                )
            except sa.exc.SQLAlchemyError:  # a missed beat; the next one may get through
                pass

    # Campaign-level facts and weights ---------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        c = _meta.c

        def work(conn: sa.Connection) -> None:
            conn.execute(_meta.delete().where(c.campaign == self.campaign, c.key == key))
            conn.execute(
                _meta.insert().values(campaign=self.campaign, key=key, value=json.dumps(value))
            )

        self._write(work)

    def meta(self, key: str, default: Any = None) -> Any:
        c = _meta.c
        rows = self._read(sa.select(c.value).where(c.campaign == self.campaign, c.key == key))
        return json.loads(rows[0][0]) if rows else default

    def put_weights(self, trial: int, seed: int, data: bytes) -> None:
        c = _weights.c

        def work(conn: sa.Connection) -> None:
            where = sa.and_(c.campaign == self.campaign, c.trial == trial, c.seed == seed)
            conn.execute(_weights.delete().where(where))
            conn.execute(
                _weights.insert().values(campaign=self.campaign, trial=trial, seed=seed, data=data)
            )

        self._write(work)

    def weights(self, trial: int, seed: int) -> bytes | None:
        c = _weights.c
        rows = self._read(
            sa.select(c.data).where(c.campaign == self.campaign, c.trial == trial, c.seed == seed)
        )
        return bytes(rows[0][0]) if rows else None


def _unusable(location: str | Path, error: Exception) -> StoreError:
    """A database error opening or reading a store, as one line naming the store."""
    where = masked_url(str(location)) if "://" in str(location) else location
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return StoreError(f"{where}: cannot read the records ({reason[0] if reason else error})")


def masked_url(url: str) -> str:
    """A database URL with its password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def check_sqlite_file(path: Path) -> None:
    """Raise StoreError unless `path` (when it exists) is a SQLite file whose pages are intact;
    an empty file is a new database. Nothing is written."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise StoreError(f"{path}: a folder where a SQLite file should be")
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as error:
        raise StoreError(f"{path}: not a usable SQLite database ({error})") from None
    if verdict != "ok":
        raise StoreError(f"{path}: a damaged SQLite database ({verdict})")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let the "begin" hook below open transactions (pysqlite's own BEGIN is deferred and late).
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    # A commit does not wait for the disk; a killed process still loses nothing it committed
    # (only a power cut may lose the last commits, never the database's integrity).
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(conn: sa.Connection) -> None:
    # A write takes the database's write lock at once: read-then-write is then atomic.
    conn.exec_driver_sql(
        "BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN"
    )


def _stored_run(row: Any) -> StoredRun:
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
