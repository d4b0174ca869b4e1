"""Crash safety under SIGKILL: kill `study run` at random moments, rerun it, count what was lost.

The kill loop and the audit (what each count means) are in tests/study/kill_loop.py, which
tests/study/test_kills.py runs with 5 kills per engine; this runs it with 20.

    .venv/bin/python benchmarks/kill_stress.py                       # 20 kills, optuna
    .venv/bin/python benchmarks/kill_stress.py --engine keras-tuner
    .venv/bin/python benchmarks/kill_stress.py --kills 20 --max-delay 3 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from tests.study.kill_loop import stress  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("optuna", "keras-tuner"), default="optuna")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--max-delay", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kill-stress-") as tmp:
        start = time.perf_counter()
        done, result, final_s = stress(
            args.engine,
            Path(tmp),
            kills=args.kills,
            max_delay_s=args.max_delay,
            seed=args.seed,
            epochs=args.epochs,
            seeds=args.seeds,
        )
        total = time.perf_counter() - start
    print(
        f"engine {args.engine}: 2 configurations x {args.seeds} seeds, {args.epochs} epochs; "
        f"{len(done.delays)} SIGKILLs (delays {min(done.delays, default=0):.2f}.."
        f"{max(done.delays, default=0):.2f} s after start-up, seed {args.seed}), "
        f"{done.completed_early} launch(es) finished before their kill; runs COMPLETE at the "
        f"kills: {', '.join(str(len(f)) for f in done.finished_at_kill)}; "
        f"final run {final_s:.1f} s; total {total:.1f} s"
    )
    print(
        f"complete {result.complete}/{2 * args.seeds}  lost {result.lost}  "
        f"duplicated {result.duplicated}  retrained {result.retrained}  "
        f"running {result.running}  integrity {result.integrity}  "
        f"engine duplicates {result.engine_duplicates}"
    )
    bad = result.lost or result.duplicated or result.running or result.integrity != "ok"
    return 1 if bad or result.engine_duplicates else 0


if __name__ == "__main__":
    sys.exit(main())
