"""Mixed precision (`[train] precision`) against float32, sequential and population, in one run.

The grid of benchmarks/population.py (Dropout [0, 0.1, 0.25, 0.5] x L2 [0, 1e-4, 1e-3, 1e-2] x
2 seeds: 32 models of a one-hidden-layer MLP, 128 units) on digits. For each precision:

- `sequential`: `study.trial.train_run` on the first `--sequential-models` models, spread
  over the grid (the sequential path of `study run`);
- `population`: `study.population.train_population` of all 32 at once (each member's own
  Dropout masks and data order: what `population = "auto"` does).

Prints wall time, seconds per model, and the final validation accuracy (mean +- sd).
Float16 and bfloat16 pay only where the device computes them natively (GPU tensor cores);
elsewhere the casts cost more than they save.

    .venv/bin/python benchmarks/precision.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/precision.py --sequential-models 8
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from search_spaces import MLP  # noqa: E402
from search_spaces.keys import PRECISIONS  # noqa: E402
from study.data import load_dataset  # noqa: E402
from study.population import Member, train_population  # noqa: E402
from study.trial import train_run  # noqa: E402

DROPOUT = [0.0, 0.1, 0.25, 0.5]
L2 = [0.0, 1e-4, 1e-3, 1e-2]
SCORE = {"objective": "val_accuracy", "direction": "maximize"}


def grid(epochs: int, batch_size: int, precision: str) -> list[tuple[dict, int]]:
    base = {
        "hidden_layers": 1,
        "units": 128,
        "epochs": epochs,
        "batch_size": batch_size,
        "precision": precision,
    }
    return [
        (base | {"dropout": d, "l2": l2}, seed)
        for seed, d, l2 in itertools.product(range(2), DROPOUT, L2)
    ]


def timed(label: str, function, n_models: int) -> None:
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    finals = function()
    wall = time.perf_counter() - start
    print(
        f"{label:28s} {wall:8.2f} s for {n_models:2d} models  {wall / n_models:7.3f} s/model  "
        f"final val_accuracy {np.mean(finals):.4f} +- {np.std(finals, ddof=1):.4f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sequential-models", type=int, default=8)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args()

    data = load_dataset(args.dataset, seed=0)
    print(
        f"{args.dataset}: {len(data.x_train)} train, {len(data.x_val)} validation examples; "
        f"{args.epochs} epochs, batch {args.batch_size}; "
        f"Keras {keras.__version__} ({keras.backend.backend()})"
    )
    for precision in args.precisions.split(","):
        models = grid(args.epochs, args.batch_size, precision)
        # Warm-up: one-time start-up costs are charged to no contender.
        warm = [Member(models[0][0] | {"epochs": 1}, 0), Member(models[1][0] | {"epochs": 1}, 0)]
        train_run(warm[0].values, builder=MLP, data=data, seed=0, **SCORE)
        train_population(warm, builder=MLP, data=data, **SCORE)
        n = args.sequential_models
        spread = models[:: len(models) // n + 1][:n] if n < len(models) else models
        timed(
            f"{precision} sequential",
            lambda spread=spread: [
                train_run(v, builder=MLP, data=data, seed=s, **SCORE).history["val_accuracy"][-1]
                for v, s in spread
            ],
            len(spread),
        )
        timed(
            f"{precision} population",
            lambda models=models: [
                r.history["val_accuracy"][-1]
                for r in train_population(
                    [Member(v, s) for v, s in models], builder=MLP, data=data, **SCORE
                )
            ],
            len(models),
        )
    keras.mixed_precision.set_global_policy("float32")


if __name__ == "__main__":
    main()
