"""Population training against the bare sequential Keras loop, side by side in one run.

The grid: Dropout [0, 0.1, 0.25, 0.5] x L2 [0, 1e-4, 1e-3, 1e-2] x seeds (2 by default: 32 models)
of a one-hidden-layer MLP (128 units, relu, adam 1e-3), or with `--builder cnn` of a small CNN
(two blocks of one 3x3 Conv2D, 8 and 16 filters, max pooling; a Dense head of 64 units with the
Dropout), on the same train/validation split.

- `bare`: for each model `clear_session`, `set_random_seed`, `Builder.build`, `fit`
  (Keras's own shuffling, validation each epoch): the plain Keras loop, nothing recorded.
- `population`: `study.population.train_population` of all models at once, in chunks of
  `--members` (everything the trial loop gets: per-member curves, divergence checks, best-epoch
  weights kept in memory), each member's Dropout masks its own (`masks="member"`).
- `population-1m`: the same with one Dropout draw for all members (`masks="population"`),
  each member in its own order: what exact masks cost.
- `population-1`: the same with one Dropout draw for all members (`masks="population"`) and
  one order of the examples for all (`order="shared"`).
- `train-run` (with `--train-run`): `study.trial.train_run` per model, the sequential path of
  `study run` (its explicit per-epoch data order).

Prints each contender's wall time, the speed-up over `bare`, and the final validation accuracy
of the models (mean +- sd, and Welch's t-test between bare and population).

    .venv/bin/python benchmarks/population.py                       # digits, 10 epochs, 32 models
    .venv/bin/python benchmarks/population.py --dataset fashion_mnist --epochs 5 --batch-size 32 \
        --bare-models 2                      # trials per hour of the MNIST-tutorial MLP
    .venv/bin/python benchmarks/population.py --builder cnn --dataset fashion_mnist --limit 2000
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
from scipy import stats  # noqa: E402

from search_spaces import BUILDERS, Builder  # noqa: E402
from study.data import load_dataset  # noqa: E402
from study.population import Member, train_population  # noqa: E402
from study.trial import train_run  # noqa: E402

DROPOUT = [0.0, 0.1, 0.25, 0.5]
L2 = [0.0, 1e-4, 1e-3, 1e-2]


ARCHITECTURES = {
    "mlp": {"hidden_layers": 1, "units": 128},
    "cnn": {"conv_blocks": 2, "filters": [8, 16], "dense_layers": 1, "dense_units": 64},
}


def grid(args: argparse.Namespace) -> list[tuple[dict, int]]:
    base = ARCHITECTURES[args.builder] | {
        "activation": "relu",
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
    }
    return [
        (base | {"dropout": d, "l2": l2}, seed)
        for seed, d, l2 in itertools.product(range(args.seeds), DROPOUT, L2)
    ]


def bare(models, data, builder: Builder) -> list[float]:
    finals = []
    for values, seed in models:
        keras.utils.clear_session(free_memory=False)
        keras.utils.set_random_seed(seed)
        model = builder.build(values, input_shape=data.input_shape, n_outputs=data.n_outputs)
        history = model.fit(
            data.x_train,
            data.y_train,
            validation_data=(data.x_val, data.y_val),
            epochs=values["epochs"],
            batch_size=values["batch_size"],
            verbose=0,
        )
        finals.append(history.history["val_accuracy"][-1])
    return finals


def population(
    models, data, builder: Builder, members: int, masks: str = "member", order: str = "member"
) -> list[float]:
    finals = []
    for begin in range(0, len(models), members):
        chunk = [Member(v, s) for v, s in models[begin : begin + members]]
        results = train_population(
            chunk,
            builder=builder,
            data=data,
            objective="val_accuracy",
            direction="maximize",
            masks=masks,
            order=order,
        )
        finals += [r.history["val_accuracy"][-1] for r in results]
    return finals


def sequential_train_run(models, data, builder: Builder) -> list[float]:
    return [
        train_run(
            v,
            builder=builder,
            data=data,
            seed=s,
            objective="val_accuracy",
            direction="maximize",
        ).history["val_accuracy"][-1]
        for v, s in models
    ]


def timed(name, function, n_models):
    gc.collect()
    gc.freeze()  # each contender pays only for its own garbage (see docs/benchmarks.md)
    start = time.perf_counter()
    finals = function()
    wall = time.perf_counter() - start
    print(
        f"{name:12s} {wall:8.2f} s for {n_models:3d} models  {wall / n_models:7.3f} s/model  "
        f"{3600 * n_models / wall:8.0f} models/h  final val_accuracy "
        f"{np.mean(finals):.4f} +- {np.std(finals, ddof=1) if len(finals) > 1 else 0:.4f}",
        flush=True,
    )
    return wall, finals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builder", choices=sorted(ARCHITECTURES), default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--limit", type=int, default=None, help="use the first N examples")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--members", type=int, default=32, help="models per population")
    parser.add_argument(
        "--bare-models", type=int, default=None, help="time the bare loop on the first N models"
    )
    parser.add_argument("--train-run", action="store_true", help="also time study's train_run")
    args = parser.parse_args()

    data = load_dataset(args.dataset, seed=0, limit=args.limit)
    builder = BUILDERS[args.builder]
    models = grid(args)
    print(
        f"{args.builder} on {args.dataset}: {len(data.x_train)} train, "
        f"{len(data.x_val)} validation examples; "
        f"{len(models)} models, {args.epochs} epochs, batch {args.batch_size}, "
        f"population of {args.members}; Keras {keras.__version__} ({keras.backend.backend()})"
    )
    # Warm-up: TensorFlow's one-time start-up is charged to no contender.
    warm = (models[0][0] | {"epochs": 1}, 0)
    bare([warm], data, builder)
    population([warm, warm], data, builder, 2)

    n_bare = args.bare_models or len(models)
    # Spread over the grid (a stride one more than len / n crosses Dropout, L2 and seeds).
    spread = models[:: len(models) // n_bare + 1][:n_bare] if n_bare < len(models) else models
    bare_wall, bare_finals = timed("bare", lambda: bare(spread, data, builder), n_bare)
    pop_wall, pop_finals = timed(
        "population", lambda: population(models, data, builder, args.members), len(models)
    )
    one_mask_wall, one_mask_finals = timed(
        "population-1m",
        lambda: population(models, data, builder, args.members, masks="population"),
        len(models),
    )
    fast_wall, fast_finals = timed(
        "population-1",
        lambda: population(models, data, builder, args.members, "population", "shared"),
        len(models),
    )
    if args.train_run:
        run_wall, _ = timed(
            "train-run", lambda: sequential_train_run(models, data, builder), len(models)
        )
        print(f"train-run / bare: {run_wall / bare_wall * len(models) / n_bare:.3f}x the time")
    for name, wall, finals in [
        ("population", pop_wall, pop_finals),
        ("population-1m", one_mask_wall, one_mask_finals),
        ("population-1", fast_wall, fast_finals),
    ]:
        speed_up = (bare_wall / n_bare) / (wall / len(models))
        line = f"{name}: speed-up over bare (s/model) {speed_up:.1f}x"
        if n_bare == len(models):
            p = stats.ttest_ind(finals, bare_finals, equal_var=False).pvalue
            line += f"; Welch t-test of final val_accuracy against bare: p = {p:.3f}"
        print(line)


if __name__ == "__main__":
    main()
