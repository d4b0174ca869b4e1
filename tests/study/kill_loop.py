"""Crash safety under SIGKILL: kill `study run` at random moments, rerun it, count what was lost.

Each round launches `study run CAMPAIGN --out DIR --quiet` as a subprocess, waits until it has
started (its session is in DIR/manifest.json: TensorFlow is loaded, the data read), then until
0 or 1 more runs have finished (seeded coin), sleeps a seeded random delay and sends SIGKILL, so
kills land anywhere: opening the engine, mid-epoch, while a run is recorded, between runs.
After the kills the same command runs to completion, and the folder is audited:

  lost        configuration x seed runs of the grid that are not COMPLETE in records.sqlite
  duplicated  extra rows for a configuration x seed, or a configuration stored under two trials
  retrained   runs that were COMPLETE at some kill and were trained again after it (their
              duration changed): wasted work, not a wrong record
  running     rows left RUNNING
  integrity   `PRAGMA integrity_check` of records.sqlite
  engine      configurations the engine saw COMPLETE more than once (Optuna: COMPLETE trials
              of its storage per configuration; KerasTuner: COMPLETED trials of its oracle)

tests/study/test_kills.py runs it with 5 kills per engine; benchmarks/kill_stress.py with 20.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def campaign_toml(engine: str, *, epochs: int = 20, seeds: int = 2) -> str:
    """Two configurations x `seeds` seeds of the tiny digits MLP, `epochs` epochs each, one run
    at a time (`population = 1`: kills land between runs that finish one by one)."""
    return f"""[campaign]
name = "kills"
engine = "{engine}"
strategy = "grid"
seeds = {list(range(seeds))}
population = 1

[data]
dataset = "digits"

[model]
builder = "mlp"
hidden_layers = 1
units = 16

[train]
epochs = {epochs}
batch_size = 128

[space]
dropout = [0.0, 0.5]
"""


def expected_runs(seeds: int) -> set[tuple[float, int]]:
    """(dropout, seed) of every configuration x seed of campaign_toml."""
    return set(itertools.product((0.0, 0.5), range(seeds)))


def _sessions(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["sessions"])
    except (OSError, ValueError, KeyError):
        return 0


def _finished_durations(out: Path) -> dict[tuple[int, int], float]:
    try:
        with sqlite3.connect(f"file:{out / 'records.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute(
                "SELECT trial, seed, duration_s FROM runs WHERE status = 'COMPLETE'"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {(t, s): d for t, s, d in rows}


@dataclass
class Kills:
    """What the kill loop did: the delays of the kills that landed, and the finished runs'
    durations at each kill (to spot a finished run trained again)."""

    delays: list[float] = field(default_factory=list)
    finished_at_kill: list[dict[tuple[int, int], float]] = field(default_factory=list)
    waited_runs: list[int] = field(default_factory=list)  # runs let finish before each delay
    completed_early: int = 0  # launches that finished before their kill was due


def kill_repeatedly(
    command: list[str], out: Path, *, kills: int, max_delay_s: float, seed: int
) -> Kills:
    """Launch `command` and SIGKILL it after a random delay, `kills` times (fewer if the campaign
    completes first: each launch that exits by itself is counted in `completed_early`)."""
    rng = random.Random(seed)
    done = Kills()
    launches = 0
    while len(done.delays) < kills:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        launches += 1
        deadline = time.monotonic() + 300
        while _sessions(out) < launches and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"{command}: no session started in 300 s")
            time.sleep(0.02)
        more = rng.randint(0, 1)
        target = len(_finished_durations(out)) + more
        while len(_finished_durations(out)) < target and process.poll() is None:
            time.sleep(0.02)
        delay = rng.uniform(0.0, max_delay_s)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            done.delays.append(delay)
            done.waited_runs.append(more)
            done.finished_at_kill.append(_finished_durations(out))
            continue
        if process.returncode != 0:
            raise RuntimeError(f"{command}: exit status {process.returncode} before its kill")
        done.completed_early += 1
        return done
    return done


@dataclass
class Audit:
    complete: int
    lost: int
    duplicated: int
    retrained: int
    running: int
    integrity: str
    engine_duplicates: int


def audit(out: Path, seeds: int, kills: Kills, engine: str) -> Audit:
    """Count what a killed-and-resumed campaign lost or counted twice (see the module doc)."""
    with sqlite3.connect(f"file:{out / 'records.sqlite'}?mode=ro", uri=True) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        configurations = dict(db.execute("SELECT trial, params FROM configurations"))
        rows = db.execute("SELECT trial, seed, status, duration_s FROM runs").fetchall()
    dropout = {t: json.loads(p)["dropout"] for t, p in configurations.items()}
    per_run = collections.Counter((dropout[t], s) for t, s, _, _ in rows)
    complete = {(dropout[t], s) for t, s, status, _ in rows if status == "COMPLETE"}
    durations = {(t, s): d for t, s, status, d in rows if status == "COMPLETE"}
    retrained = {
        run
        for finished in kills.finished_at_kill
        for run, duration in finished.items()
        if durations.get(run) != duration
    }
    duplicated = sum(n - 1 for n in per_run.values()) + (
        len(configurations) - len(set(dropout.values()))
    )
    return Audit(
        complete=len(complete),
        lost=len(expected_runs(seeds) - complete),
        duplicated=duplicated,
        retrained=len(retrained),
        running=sum(status == "RUNNING" for _, _, status, _ in rows),
        integrity=integrity,
        engine_duplicates=_engine_duplicates(out, engine),
    )


def _engine_duplicates(out: Path, engine: str) -> int:
    """Configurations the engine recorded as complete more than once."""
    seen: collections.Counter = collections.Counter()
    if engine == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        journal = out / "optuna.journal"  # the journal file when workers shared the campaign
        storage = (
            optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
            if journal.exists()
            else f"sqlite:///{out / 'optuna.sqlite'}"
        )
        for summary in optuna.get_all_study_summaries(storage):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
                seen[json.dumps(trial.params, sort_keys=True)] += 1
    else:
        for path in (out / "keras_tuner").rglob("trial.json"):
            trial = json.loads(path.read_text())
            if trial.get("status") == "COMPLETED":
                values = trial.get("hyperparameters", {}).get("values", {})
                seen[json.dumps(values, sort_keys=True)] += 1
    return sum(n - 1 for n in seen.values())


def stress(
    engine: str, folder: Path, *, kills: int, max_delay_s: float, seed: int, epochs: int, seeds: int
) -> tuple[Kills, Audit, float]:
    """Write the campaign, kill it `kills` times, run it to the end; the kills, audit and the
    wall time of the final run."""
    path = folder / "kills.toml"
    path.write_text(campaign_toml(engine, epochs=epochs, seeds=seeds))
    out = folder / "out"
    command = [sys.executable, "-m", "study.cli", "run", str(path), "--out", str(out), "--quiet"]
    done = kill_repeatedly(command, out, kills=kills, max_delay_s=max_delay_s, seed=seed)
    start = time.perf_counter()
    final = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if final.returncode != 0:
        raise RuntimeError(f"the final run failed ({final.returncode}): {final.stderr[-2000:]}")
    return done, audit(out, seeds, done, engine), time.perf_counter() - start
