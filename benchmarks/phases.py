"""The phases of a whole `study run` against the bare Keras loop, each a whole process.

Side by side in one invocation (subprocesses, wall clock from their start to their exit):

- `bare`: a Python process that imports Keras, loads digits (`study.data.load_dataset`, the
  campaign's split), and for each of the Dropout [0, 0.1, 0.25, 0.5] x L2 [0, 1e-4, 1e-3, 1e-2]
  x seeds models: `clear_session`, `set_random_seed`, `Builder.build` (the built-in MLP, one
  hidden layer of 128 relu units, Adam 1e-3), `fit` for the epochs with validation each epoch.
- `study`: `study run` of the same campaign (a grid, `population = 32`; the campaign file is
  written to a temporary folder), with STUDY_PHASES set so that it notes the time at each
  phase boundary (study.phases; its output is unchanged).

Prints each phase of both (imports: process start to the backend and our modules imported;
data; setup: driver, record store, folder; start to first epoch: build, compile, trace and
epoch 1; the other epochs; test evaluation; report; exit) and the ratio bare / study of the
whole process. `--repeat` alternates the two that many times.

    .venv/bin/python benchmarks/phases.py                      # 32 runs x 10 epochs
    .venv/bin/python benchmarks/phases.py --seeds 1 --epochs 3 --no-bare    # a quick look
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

DROPOUT = [0.0, 0.1, 0.25, 0.5]
L2 = [0.0, 1e-4, 1e-3, 1e-2]
MODEL = {"hidden_layers": 1, "units": 128, "activation": "relu"}
TRAIN = {"batch_size": 64, "optimizer": "adam", "learning_rate": 1e-3}

CAMPAIGN = """\
[campaign]
name = "phases"
engine = "optuna"
strategy = "grid"
seeds = {seeds}
objective = "val_accuracy"
population = 32

[data]
dataset = "digits"

[model]
builder = "mlp"
hidden_layers = 1
units = 128
activation = "relu"

[train]
epochs = {epochs}
batch_size = 64
optimizer = "adam"
learning_rate = 0.001

[space]
dropout = {dropout}
l2 = {l2}
"""

# (phase, mark that ends it): each phase runs from the previous mark to its own.
STUDY_PHASES = [
    ("imports: backend", "backend"),
    ("imports: our modules, engine", "imports"),
    ("data", "data"),
    ("setup (driver, store, folder)", "setup"),
    ("start to first epoch (build, compile, trace, epoch 1)", "first_epoch"),
    ("other epochs", "trained"),
    ("test evaluation", "evaluated"),
    ("report", "report"),
    ("exit", "exit"),
]
BARE_PHASES = [
    ("imports: backend", "backend"),
    ("data", "data"),
    ("training (build, compile, fit)", "trained"),
    ("exit", "exit"),
]


def bare_child(epochs: int, seeds: int, marks_path: str) -> None:
    """The bare loop, in this process; writes its marks to `marks_path`."""
    marks = []
    import keras

    marks.append(("backend", time.perf_counter()))
    from search_spaces import BUILDERS
    from study.data import load_dataset

    data = load_dataset("digits")
    marks.append(("data", time.perf_counter()))
    builder = BUILDERS["mlp"]
    for seed in range(seeds):
        for dropout in DROPOUT:
            for l2 in L2:
                values = MODEL | TRAIN | {"dropout": dropout, "l2": l2, "epochs": epochs}
                keras.utils.clear_session(free_memory=False)
                keras.utils.set_random_seed(seed)
                model = builder.build(
                    values, input_shape=data.input_shape, n_outputs=data.n_outputs
                )
                model.fit(
                    data.x_train,
                    data.y_train,
                    validation_data=(data.x_val, data.y_val),
                    epochs=epochs,
                    batch_size=TRAIN["batch_size"],
                    verbose=0,
                )
    marks.append(("trained", time.perf_counter()))
    Path(marks_path).write_text(json.dumps(marks))


def timed_process(command: list[str], env: dict[str, str], marks_path: Path) -> dict[str, float]:
    """Run `command`; its marks as seconds since its start, with "exit" at its end."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    end = time.perf_counter()
    if done.returncode != 0:
        raise SystemExit(f"{command}: exit status {done.returncode}\n{done.stderr[-3000:]}")
    marks: dict[str, float] = {}
    for name, at in json.loads(marks_path.read_text()):
        if name == "epoch":
            marks.setdefault("first_epoch", at - start)
            marks.setdefault("epochs", 0)
            marks["epochs"] += 1
        else:
            marks[name] = at - start
    marks["exit"] = end - start
    return marks


def print_phases(title: str, phases: list[tuple[str, str]], marks: dict[str, float]) -> None:
    print(f"{title}: {marks['exit']:.2f} s")
    before = 0.0
    for label, name in phases:
        if name in marks:
            print(f"  {label:55s} {marks[name] - before:7.2f} s")
            before = marks[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2, help="runs: 16 x seeds (default 2: 32)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate both this many times")
    parser.add_argument("--no-bare", action="store_true", help="time `study run` only")
    parser.add_argument("--bare-child", metavar="MARKS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        return bare_child(args.epochs, args.seeds, args.bare_child)
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    script = Path(sys.executable).with_name("study")  # the command as pip installs it
    study = [str(script)] if script.exists() else [sys.executable, "-m", "study.cli"]
    print(
        f"{16 * args.seeds} runs x {args.epochs} epochs; load average at start "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        campaign = folder / "phases.toml"
        campaign.write_text(
            CAMPAIGN.format(
                seeds=list(range(args.seeds)), epochs=args.epochs, dropout=DROPOUT, l2=L2
            )
        )
        for repetition in range(args.repeat):
            out, marks_path = folder / f"out-{repetition}", folder / f"study-{repetition}.json"
            ours = timed_process(
                [*study, "run", str(campaign), "--out", str(out), "--quiet"],
                env | {"STUDY_PHASES": str(marks_path)},
                marks_path,
            )
            print_phases(f"study run (load {os.getloadavg()[0]:.2f} at end)", STUDY_PHASES, ours)
            if "epochs" in ours and ours["epochs"] > 1:
                per_epoch = (ours["trained"] - ours["first_epoch"]) / (ours["epochs"] - 1)
                print(f"  (one epoch after the first: {per_epoch:.2f} s)")
            if args.no_bare:
                continue
            marks_path = folder / f"bare-{repetition}.json"
            sizes = ["--epochs", str(args.epochs), "--seeds", str(args.seeds)]
            child = [sys.executable, __file__, *sizes, "--bare-child", str(marks_path)]
            bare = timed_process(child, env, marks_path)
            print_phases(f"bare loop (load {os.getloadavg()[0]:.2f} at end)", BARE_PHASES, bare)
            print(f"ratio bare / study run, whole process: {bare['exit'] / ours['exit']:.2f}x")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
