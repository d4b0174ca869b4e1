"""Scale-out: several worker processes share one campaign.

`study run FILE --out DIR --workers N` (or `--gpus 0,1 --trials-per-gpu K`) prepares the campaign
once in this process (the folder, the session, the engine's study with its grid enqueued), then
launches N `study worker` children, each running the ordinary trial loop on the shared state:

- Optuna: the journal file DIR/optuna.journal, or the campaign's PostgreSQL database.
- KerasTuner: its chief/worker mode. This process serves the oracle (DIR/keras_tuner/) over gRPC
  on localhost; worker i asks it as tuner<i> (KERASTUNER_ORACLE_IP/_PORT/_TUNER_ID).
- Records: DIR/records.sqlite (WAL), or the same PostgreSQL database; `RecordStore.start_run` is
  an atomic claim, so no configuration x seed is trained twice whatever the engine hands out.

This process shows one progress bar read from the record store, forwards Ctrl-C to the children,
and when they are done (and no worker elsewhere still holds a run) evaluates the chosen
configuration on the test split, once. Children's output goes to DIR/workers/worker-<i>.log.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from study.config import Campaign

LOG_DIR = "workers"
POLL_S = 1.0
CHIEF_HOST = "127.0.0.1"  # KerasTuner's oracle, served by `study run` to its workers


class WorkerError(RuntimeError):
    """A worker process failed; the message holds the end of its log."""


def parse_gpus(text: str) -> tuple[int, ...]:
    """ "0,1,3" -> (0, 1, 3); ValueError for anything but distinct non-negative integers."""
    try:
        gpus = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected GPU indices like 0,1,3, got {text!r}") from None
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise ValueError(f"expected distinct GPU indices of 0 or more, got {text!r}")
    return gpus


def worker_environments(
    *, workers: int = 1, gpus: Sequence[int] = (), trials_per_gpu: int = 1
) -> list[dict[str, str]]:
    """The environment variables each worker process gets, on top of this process's.

    Without GPUs: `workers` processes, nothing set. With GPUs: `trials_per_gpu` workers per GPU,
    each seeing only its GPU (CUDA_VISIBLE_DEVICES) and allocating GPU memory as it needs it
    (TensorFlow: memory growth; JAX: no preallocation), so several can share one GPU.
    """
    if not gpus:
        return [{} for _ in range(workers)]
    return [
        {
            "CUDA_VISIBLE_DEVICES": str(gpu),
            "TF_FORCE_GPU_ALLOW_GROWTH": "true",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        }
        for gpu in gpus
        for _ in range(trials_per_gpu)
    ]


def with_storage(campaign: Campaign, storage: str | None) -> Campaign:
    """`campaign` with its storage URL replaced (the --storage flag), when one is given."""
    if storage is None:
        return campaign
    resolved = campaign.resolved | {
        "campaign": campaign.resolved["campaign"] | {"storage": storage}
    }
    return dataclasses.replace(campaign, storage=storage, resolved=resolved)


def chief_environments(
    environments: Sequence[Mapping[str, str]], host: str, port: int
) -> list[dict[str, str]]:
    """`environments` with KerasTuner's chief/worker variables: worker i asks the oracle at
    host:port as tuner<i>."""
    return [
        {
            **extra,
            "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": str(port),
            "KERASTUNER_TUNER_ID": f"tuner{i}",
        }
        for i, extra in enumerate(environments)
    ]


def worker_command(campaign_file: str | None, directory: Path, storage: str | None) -> list[str]:
    """The command line of one launched worker."""
    return [
        sys.executable,
        "-m",
        "study.cli",
        "worker",
        *([campaign_file] if campaign_file else []),
        "--out",
        str(directory),
        *(["--storage", storage] if storage else []),
        "--quiet",
        "--launched",
    ]


def run_workers(
    campaign: Campaign,
    directory: str | Path,
    *,
    campaign_file: str | None,
    environments: Sequence[Mapping[str, str]],
    source_text: str | None = None,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any] | None:
    """Run (or resume) `campaign` in `directory` with one worker process per environment;
    returns the chosen configuration's summary, as study.campaign.run_campaign does."""
    from study.campaign import evaluate_chosen, open_store, prepare_folder
    from study.drivers import make_driver
    from study.drivers.optuna_driver import ENGINE_STORE, JOURNAL_FILE

    directory = Path(directory)
    data = prepare_folder(
        campaign, directory, source_text=source_text, command=command, record=True
    )
    if campaign.engine == "optuna" and campaign.storage is None:
        if (directory / ENGINE_STORE).exists():
            raise WorkerError(
                f"{directory / ENGINE_STORE}: this campaign started in one process on SQLite, "
                "which parallel workers cannot share; resume it without --workers, or use "
                "another --out folder"
            )
        (directory / JOURNAL_FILE).touch()
    store = open_store(campaign, directory)
    try:
        driver = make_driver(campaign, directory, liveness=store)  # the study and its grid
        driver.open()
        if campaign.engine != "keras-tuner":
            driver.close()
            _supervise(campaign, directory, store, campaign_file, environments, progress)
        else:  # this process is KerasTuner's chief: it serves the oracle the workers ask
            try:
                port = driver.serve(CHIEF_HOST)
                environments = chief_environments(environments, CHIEF_HOST, port)
                _supervise(campaign, directory, store, campaign_file, environments, progress)
            finally:
                driver.close()
        while store.running():  # workers on other machines still hold runs
            time.sleep(POLL_S)
        return evaluate_chosen(campaign, data, store, directory)
    finally:
        store.close()


INTERRUPTED = 130  # the exit status of a worker stopped by Ctrl-C (study.cli)


def _supervise(
    campaign: Campaign,
    directory: Path,
    store: Any,
    campaign_file: str | None,
    environments: Sequence[Mapping[str, str]],
    progress: bool,
) -> None:
    from study.progress import Progress

    logs = directory / LOG_DIR
    logs.mkdir(exist_ok=True)
    children: list[tuple[subprocess.Popen, Path]] = []
    command = worker_command(campaign_file, directory, campaign.storage)
    try:
        for i, extra in enumerate(environments):
            log = logs / f"worker-{i}.log"
            with open(log, "ab") as out:
                child = subprocess.Popen(
                    command,
                    env={**os.environ, **extra},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            children.append((child, log))
        n = campaign.n_configurations()
        total = None if n is None else n * len(campaign.seeds)
        with Progress(total=total, enabled=progress) as bar:
            while True:
                for trial, seed in store.finished_runs():
                    bar.finish_run(trial, seed)
                counts = store.status_counts()
                bar.working(
                    {"workers": sum(c.poll() is None for c, _ in children)}
                    | {s.lower(): n for s, n in sorted(counts.items())}
                )
                if all(c.poll() is not None for c, _ in children):
                    break
                if campaign.engine == "keras-tuner" and any(c.poll() for c, _ in children):
                    # the chief's oracle holds the dead worker's trial until it reloads:
                    # the others could wait for it forever
                    _stop(children)
                    break
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        _stop(children)
        raise
    stopped = [(c, log) for c, log in children if c.returncode == INTERRUPTED]
    failed = [(c, log) for c, log in children if c.returncode not in (0, INTERRUPTED)]
    if failed or stopped:
        child, log = (failed or stopped)[0]
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise WorkerError(
            f"{len(failed)} of {len(children)} workers failed ({len(stopped)} stopped); "
            f"worker exit status {child.returncode}, the end of {log}:\n{tail}\n"
            "Run the same command again to resume."
        )


def _stop(children: list[tuple[subprocess.Popen, Path]], grace_s: float = 30.0) -> None:
    """Forward the interrupt; kill what has not stopped after `grace_s`."""
    for child, _ in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for child, _ in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
