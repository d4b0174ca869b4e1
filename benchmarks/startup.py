"""Start-up: how long a user waits for `study run` to answer a campaign file with a typo.

Times, side by side in one run, whole commands as a shell starts them (subprocess, wall clock):

  python -c pass         the interpreter alone: the floor
  study run typo.toml    a campaign file with a misspelt key (`engnie`): exit status 2, one line

each `--repeat` times, alternating, and prints the medians and their ratio. Validation imports
neither Keras nor TensorFlow, so the answer should come in well under a second.

    .venv/bin/python benchmarks/startup.py              # 7 repetitions each
    .venv/bin/python benchmarks/startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TYPO = '[campaign]\nname = "typo"\nengnie = "optuna"\n\n[space]\ndropout = [0.0, 0.5]\n'


def wall_time(command: list[str], *, expect_status: int) -> float:
    """Seconds from start to exit of `command`; its exit status is checked."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != expect_status:
        raise SystemExit(f"{command}: exit status {done.returncode}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions of each (default 7)")
    args = parser.parse_args()
    study = str(Path(sys.executable).with_name("study"))
    with tempfile.TemporaryDirectory() as folder:
        typo = Path(folder) / "typo.toml"
        typo.write_text(TYPO)
        run = [study, "run", str(typo), "--out", str(Path(folder) / "out")]
        answer = subprocess.run(run, capture_output=True, text=True).stderr.strip()
        print(f"study run typo.toml says: {answer}")
        times: dict[str, list[float]] = {"python -c pass": [], "study run typo.toml": []}
        for _ in range(args.repeat):
            bare = wall_time([sys.executable, "-c", "pass"], expect_status=0)
            times["python -c pass"].append(bare)
            times["study run typo.toml"].append(wall_time(run, expect_status=2))
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    for name, median in medians.items():
        spread = ", ".join(f"{s:.3f}" for s in sorted(times[name]))
        print(f"{name:22s} median {median:.3f} s  ({spread})")
    ratio = medians["study run typo.toml"] / medians["python -c pass"]
    print(f"ratio: study run typo.toml takes {ratio:.1f}x python -c pass")


if __name__ == "__main__":
    main()
