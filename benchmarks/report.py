"""The report: how long a user waits for `study report DIR` on a finished campaign folder.

Times the whole command as a shell starts it (subprocess: interpreter start, imports, analysis,
every figure, the HTML written), `--repeat` times, and prints the median and the spread of its
wall clock and of its CPU time (user + system, which other work on the machine inflates less).
The folder must hold a finished campaign; the built-in default campaign makes one:

    .venv/bin/study run --out /tmp/default        # one or two minutes, once
    .venv/bin/python benchmarks/report.py /tmp/default
    .venv/bin/python benchmarks/report.py /tmp/default --repeat 9

It rewrites DIR/report.html, as `study report DIR` does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of `command`, which must succeed. The CPU time
    is what a loaded machine does not inflate much; the wall clock is what a user waits for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit status {done.returncode}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a finished campaign folder")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    args = parser.parse_args()
    study = str(Path(sys.executable).with_name("study"))
    command = [study, "report", str(args.directory)]
    walls, cpus = zip(*(timed(command) for _ in range(args.repeat)), strict=True)
    print(f"study report {args.directory}, {args.repeat} runs (os.cpu_count() = {os.cpu_count()})")
    for name, seconds in (("wall clock", walls), ("CPU (user+sys)", cpus)):
        spread = ", ".join(f"{s:.2f}" for s in sorted(seconds))
        print(f"  {name:15s} median {statistics.median(seconds):.2f} s  ({spread})")
    size = (args.directory / "report.html").stat().st_size
    print(f"  report.html     {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
