"""Resident memory over 200 consecutive small trials, in one process and with `--isolate`.

Each mode runs in a fresh Python process (this script calls itself with `--mode`): the campaign
is 200 random configurations (learning rate and dropout, continuous) x 1 seed of the tiny
digits MLP (1 hidden layer of 16 units, 1 epoch, batch 128), run by `study.campaign.run_campaign`
with the Optuna engine, so every run goes through the real trial loop, record store and engine.
The resident set size (VmRSS of /proc/self/status) of the campaign process is read before the
campaign (TensorFlow and the data loaded, one warm-up fit done) and after every finished run.

Modes:
  in-process        every run in the campaign process (the default of `study run`)
  isolate           `study run --isolate`: runs in worker processes, replaced every N runs
                    (the workers' own peak VmRSS is reported too)
  in-process-leaky  in-process with study.backend.forget_traced_gradients disabled: what the
                    TensorFlow leak costs without the fix

    .venv/bin/python benchmarks/memory.py                        # all three modes, 200 runs
    .venv/bin/python benchmarks/memory.py --runs 50 --modes in-process isolate

Target: growth of at most 150 MB over 200 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("in-process", "isolate", "in-process-leaky")
TARGET_MB = 150.0
CHECKPOINTS = (20, 100, 200)


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process, in MB (MiB), from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def campaign(runs: int) -> dict:
    return {
        "campaign": {
            "name": "memory",
            "engine": "optuna",
            "strategy": "random",
            "max_trials": runs,
            "seeds": [0],
            "max_consecutive_failures": runs,
        },
        "data": {"dataset": "digits"},
        "model": {"builder": "mlp", "hidden_layers": 1, "units": 16},
        "train": {"epochs": 1, "batch_size": 128},
        "space": {
            "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
            "dropout": {"low": 0.0, "high": 0.5},
        },
    }


def measure(mode: str, runs: int, runs_per_worker: int) -> dict:
    """One mode, in this process: the RSS before and after each run."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import study.isolate
    from study.campaign import run_campaign
    from study.config import parse_campaign
    from study.data import load_dataset
    from study.store import RecordStore
    from study.trial import train_run

    if mode == "in-process-leaky":
        import study.trial

        study.trial.forget_traced_gradients = lambda: 0
    c = parse_campaign(campaign(runs), source="memory benchmark")
    data = load_dataset(c.dataset, seed=c.seed)
    # Warm-up: TensorFlow's kernels, Keras and the first trace are loaded before the baseline.
    train_run(
        c.values({"learning_rate": 1e-3, "dropout": 0.0}),
        builder=c.builder,
        data=data,
        seed=0,
        objective=c.objective,
        direction=c.direction,
    )
    samples: list[float] = []
    workers: list[float] = []
    runners: list[study.isolate.IsolatedRunner] = []
    real_init = study.isolate.IsolatedRunner.__init__

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        runners.append(self)

    study.isolate.IsolatedRunner.__init__ = remember
    real_finish = RecordStore.finish_run

    def finish_run(self, trial, seed, result):
        real_finish(self, trial, seed, result)
        samples.append(rss_mb())
        worker = runners[0]._worker if runners else None
        if worker is not None and worker.process.poll() is None:
            workers.append(rss_mb(worker.process.pid))

    RecordStore.finish_run = finish_run
    before = rss_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"memory-{mode}-") as tmp:
        run_campaign(c, tmp, progress=False, isolate=runs_per_worker if mode == "isolate" else 0)
    return {
        "mode": mode,
        "before": before,
        "samples": samples,
        "worker_peak": max(workers, default=None),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--runs-per-worker", type=int, default=20)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, this process
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args.mode, args.runs, args.runs_per_worker)))
        return 0

    print(
        f"{args.runs} runs of a 16-unit digits MLP, 1 epoch each, Optuna random search; "
        f"--isolate replaces its worker every {args.runs_per_worker} runs",
        flush=True,
    )
    results = []
    for mode in args.modes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--runs",
                str(args.runs),
                "--runs-per-worker",
                str(args.runs_per_worker),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"{mode}: failed\n{out.stderr[-3000:]}")
            return 1
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {mode} done", flush=True)

    points = [n for n in CHECKPOINTS if n <= args.runs] or [args.runs]
    header = f"{'mode':<17} {'before MB':>9}" + "".join(f" {'after ' + str(n):>10}" for n in points)
    print(header + f" {'growth MB':>10} {'MB/run':>7} {'worker peak':>11} {'wall s':>7}  target")
    for r in results:
        s = r["samples"]
        growth = s[-1] - r["before"]
        per_run = (s[-1] - s[min(19, len(s) - 1)]) / max(len(s) - 20, 1)
        peak = f"{r['worker_peak']:.0f}" if r["worker_peak"] else "-"
        verdict = "met" if growth <= TARGET_MB else "MISSED"
        print(
            f"{r['mode']:<17} {r['before']:9.0f}"
            + "".join(f" {s[n - 1]:10.0f}" for n in points)
            + f" {growth:10.1f} {per_run:7.2f} {peak:>11} {r['seconds']:7.0f}  {verdict}"
        )
    print("(MB/run: the slope from run 20 to the last; growth: last run's RSS minus before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
