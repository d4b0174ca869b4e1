"""Population training: K configurations that share an architecture, trained as one Keras model.

In a regularization study most runs differ only in numbers: the Dropout rates, the L1/L2
strengths, the learning rate, the seed. `train_population` stacks such runs ("members") along a
leading axis: one kernel of shape (K, *kernel shape) per layer (Dense or Conv2D), each member's
Dropout rates, L1/L2 coefficients and learning rate held per member, and the loss the sum of the
members' losses. Gradients of a sum are the members' own gradients, and Adam, RMSprop and SGD
update element by element, so each member trains exactly as it would alone:

- its initial weights are those `Builder.build` draws under `seed_everything(seed)`
  (bit for bit: the same initializer seeds, the fan-in and fan-out of one member's kernel);
- its Dropout masks come from the seed generators the sequential model's Dropout layers would
  own (the same masks, step by step);
- it visits the training examples in its own order, `study.seeding.data_order(seed, epoch, n)`,
  the order `study.trial.train_run` uses;
- its curves mean what Keras reports for the sequential model: `train_<metric>` the running mean
  over the epoch's batches (the loss with the member's own regularization penalty, weighted by
  batch size), `val_<metric>` evaluated at the epoch's end.

A member whose training loss stops being finite fails ("diverged: ...") and is masked out of the
loss while the others go on. Each member's best-epoch weights go to its own .npz, in the layout of
`Builder.build`'s weights, so `study.trial.evaluate_run` reads them unchanged. The stacked model
itself is `search_spaces.stacked.StackedModel`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from search_spaces import Builder
from search_spaces.stacked import StackedModel, member_optimizer
from study.backend import determinism_enabled, has_accelerator, one_pass_eagerly
from study.data import Dataset
from study.results import CurveTracker, RunResult, Status
from study.seeding import data_order
from study.trial import fresh_session, read_weights

# Called after each epoch with its number (1-based), for progress bars.
EpochCallback = Callable[[int], None]


@dataclass(frozen=True)
class Member:
    """One configuration x seed to train in a population: its values, its derived seed (as
    `train_run` gets it) and where its best-epoch weights go."""

    values: Mapping[str, Any]
    seed: int
    weights_path: Path | None = None


def architecture_key(values: Mapping[str, Any], builder: Builder) -> str | None:
    """What the members of one population share (every value but `builder.member_keys`), as a
    string; None when the configuration cannot join a population (batch normalization: its
    statistics are not stacked)."""
    return _architecture_of(builder.complete(values), builder)


def _architecture_of(complete: Mapping[str, Any], builder: Builder) -> str | None:
    """`architecture_key` of complete values."""
    if complete["batch_norm"]:
        return None
    shared = {k: v for k, v in complete.items() if k not in builder.member_keys}
    return json.dumps(shared, sort_keys=True, default=str)


def train_population(
    members: Sequence[Member],
    *,
    builder: Builder,
    data: Dataset,
    objective: str,
    direction: str,
    on_epoch: EpochCallback | None = None,
    masks: str = "member",
    order: str = "member",
    jit_compile: bool | str = "auto",
    conv: str = "auto",
) -> list[RunResult]:
    """Train `members` (sharing one `architecture_key`) together; one RunResult per member, in
    order. Each result's `duration_s` is the population's wall time divided by its size.

    `masks` (`search_spaces.stacked.MASKS`) and `order` ("member": each member visits the
    examples in its own order, as `train_run` does; "shared": all in the first member's order,
    so each step feeds one batch for all) trade exact agreement with `train_run` for speed;
    "member" for both reproduces `train_run` curve for curve.
    `jit_compile` is Keras's (XLA; "auto": off on CPU for TensorFlow); `conv` is one of
    `search_spaces.stacked.CONVOLUTIONS`, "auto": "grouped" on an accelerator, else "loop"."""
    if order not in ("member", "shared"):
        raise ValueError(f"order: {order!r} is not 'member' or 'shared'")
    values = [builder.complete(m.values) for m in members]
    keys = {_architecture_of(v, builder) for v in values}
    if None in keys or len(keys) != 1:
        raise ValueError("population members must share one architecture (architecture_key)")
    start = time.perf_counter()
    fresh_session(values[0]["precision"])  # members share it (not a member key)
    arithmetic = population_arithmetic(masks=masks, order=order, jit_compile=jit_compile, conv=conv)
    jit_compile, conv = arithmetic["jit_compile"], arithmetic["conv"]
    model = StackedModel(
        values,
        [m.seed for m in members],
        builder=builder,
        input_shape=data.input_shape,
        n_outputs=data.n_outputs,
        task=data.task,
        masks=masks,
        conv=conv,
    )
    model.compile(optimizer=member_optimizer(values), jit_compile=jit_compile)
    trackers = [CurveTracker(objective, direction) for _ in members]
    best_weights: list[list[np.ndarray] | None] = [None] * len(members)
    epochs, batch_size = int(values[0]["epochs"]), int(values[0]["batch_size"])
    n = len(data.x_train)
    try:
        for epoch in range(epochs):
            alive = [t.status == Status.COMPLETE for t in trackers]
            if not any(alive):
                break
            model.alive.assign(np.asarray(alive))
            # Row k of `visits` is member k's order this epoch (one row when shared).
            visits = np.stack(
                [data_order(m.seed, epoch, n) for m in members[: 1 if order == "shared" else None]]
            )
            batches = _slices(visits[0] if order == "shared" else visits, n, batch_size)
            train = _epoch_means(
                model.train_batch,
                ((data.x_train[rows], data.y_train[rows], rows.shape[-1]) for rows in batches),
            )
            val = _evaluate(model, data.x_val, data.y_val, batch_size)
            weights = None
            for k, tracker in enumerate(trackers):
                if not alive[k]:
                    continue
                history = {f"train_{name}": float(train[name][k]) for name in sorted(train)}
                history |= {f"val_{name}": float(val[name][k]) for name in sorted(val)}
                if tracker.record(epoch, history):
                    if weights is None:
                        weights = [np.asarray(w) for w in model.get_weights()]
                    best_weights[k] = [w[k].copy() for w in weights]
            if on_epoch is not None:
                on_epoch(epoch + 1)
        for member, weights in zip(members, best_weights, strict=True):
            if weights is not None and member.weights_path is not None:
                member.weights_path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(member.weights_path, *weights)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # a bad population fails its members, not the campaign
        for tracker in trackers:
            tracker.fail(error)
    duration = (time.perf_counter() - start) / len(members)
    return [tracker.result(duration) for tracker in trackers]


def population_arithmetic(
    *,
    masks: str = "member",
    order: str = "member",
    jit_compile: bool | str = "auto",
    conv: str = "auto",
) -> dict[str, Any]:
    """The settings of `train_population` that change its float arithmetic, "auto" resolved as
    on this machine: what a campaign records with each population, and `study verify` replays.

    `jit_compile="auto"` follows Keras's rule (`Trainer._resolve_auto_jit_compile`): XLA with
    JAX, and with TensorFlow on an accelerator without op determinism; never with PyTorch."""
    if conv == "auto":
        conv = "grouped" if has_accelerator() else "loop"
    if jit_compile == "auto":
        backend = keras.backend.backend()
        jit_compile = backend == "jax" or (
            backend == "tensorflow" and has_accelerator() and not determinism_enabled()
        )
    return {"masks": masks, "order": order, "jit_compile": bool(jit_compile), "conv": conv}


def evaluate_population(
    members: Sequence[Member],
    *,
    builder: Builder,
    data: Dataset,
    conv: str = "auto",
) -> list[dict[str, float]]:
    """The test-split metrics of trained runs that share an architecture, from their saved
    best-epoch weights (`Member.weights_path`), in one pass of their stacked model: per member
    what `study.trial.evaluate_run` gives (to float rounding). The pass runs eagerly where one
    pass does not repay tracing it (`one_pass_eagerly`)."""
    values = [builder.complete(m.values) for m in members]
    fresh_session(values[0]["precision"])
    arithmetic = population_arithmetic(conv=conv)
    model = StackedModel(
        values,
        [m.seed for m in members],  # the initial weights it draws are replaced
        builder=builder,
        input_shape=data.input_shape,
        n_outputs=data.n_outputs,
        task=data.task,
        conv=arithmetic["conv"],
    )
    runs = [read_weights(m.weights_path) for m in members]
    model.set_weights([np.stack(layer) for layer in zip(*runs, strict=True)])
    model.compile(run_eagerly=one_pass_eagerly())
    test = _evaluate(model, data.x_test, data.y_test, int(values[0]["batch_size"]))
    return [{name: float(test[name][k]) for name in test} for k in range(len(members))]


def _evaluate(model: StackedModel, x: np.ndarray, y: np.ndarray, batch_size: int):
    """Each member's metrics on (x, y), as Keras's `evaluate` reports them. They do not depend
    on the batch size (the mean loss of a batch weighted by its size is the mean over examples;
    the penalty is constant), so evaluate in as few steps as memory allows: fewer steps, fewer
    traces."""
    chunk = max(batch_size, _EVAL_BYTES // (4 * model.size * model.widest))
    return _epoch_means(
        functools.partial(model.test_on_batch, return_dict=True),
        ((x[rows], y[rows], len(rows)) for rows in _slices(np.arange(len(x)), len(x), chunk)),
    )


_EVAL_BYTES = 64 * 2**20  # activations of one validation step, about


def _slices(index: np.ndarray, n: int, size: int):
    """Consecutive slices of `size` along the last axis (the last one shorter)."""
    for begin in range(0, n, size):
        yield index[..., begin : begin + size]


def _epoch_means(step: Callable[..., dict], batches) -> dict[str, np.ndarray]:
    """What Keras reports for an epoch: each metric's per-batch value (`step(x, y)`, which returns
    one batch's per-member values by name) averaged over the batches, weighted by their sizes."""
    sums: dict[str, np.ndarray] = {}
    count = 0
    for x, y, size in batches:
        for name, value in step(x, y).items():
            sums[name] = sums.get(name, 0.0) + np.asarray(value, "float64") * size
        count += size
    return {name: total / count for name, total in sums.items()}


AUTO_SIZE = 32  # at most this many members per population for `population = "auto"`


def population_size(
    setting: int | str,
    *,
    pruner: str,
    isolated: bool = False,
    shared: bool = False,
    builder: Builder | None = None,
) -> tuple[int, str]:
    """How many runs to train together for the campaign key `population`, and, when population
    training cannot apply, why (one line for the user); 1 means one run at a time.

    `"auto"` (the default) trains populations only where nothing asks for runs one at a time:
    not with `isolated` (`--isolate`: each run in a worker subprocess, for bounded memory) and not
    in one of several workers that `shared` a campaign (a worker would claim every waiting run).
    An explicit K applies there too. A `builder` whose layers cannot be stacked (a custom
    model, search_spaces.custom) trains one run at a time."""
    auto = setting == "auto"
    wanted = AUTO_SIZE if auto else int(setting)
    if wanted <= 1:
        return 1, ""
    if builder is not None and not builder.stacks:
        return 1, (
            f"model.builder = {builder.name} is your own model; it trains one run at a time "
            "(population training stacks the built-in builders' layers)"
        )
    if pruner != "none":
        return 1, "pruning decides epoch by epoch per run; runs train one at a time"
    if auto and isolated:
        return 1, (
            '--isolate trains each run in its own process; population = "auto" trains '
            "one run at a time"
        )
    if auto and shared:
        return 1, (
            'several workers share the campaign; population = "auto" trains one run at a time '
            "in each (set population = K to train populations in each worker)"
        )
    return wanted, ""


def plan_populations(
    runs: Sequence[tuple[Any, Mapping[str, Any]]], *, builder: Builder, size: int
) -> tuple[list[list[Any]], list[Any]]:
    """Split `runs` (tag, values) into populations of up to `size` tags sharing an
    `architecture_key`, and the tags left to train alone (no other run shares theirs)."""
    groups: dict[str, list[Any]] = {}
    alone = []
    for tag, values in runs:
        key = architecture_key(values, builder)
        if key is None:
            alone.append(tag)
        else:
            groups.setdefault(key, []).append(tag)
    populations = []
    for tags in groups.values():
        # As few populations as `size` allows, of near-equal sizes (33 runs: 17 + 16, not 32 + 1).
        n_chunks = -(-len(tags) // size)
        for chunk in np.array_split(np.arange(len(tags)), n_chunks):
            if len(chunk) > 1:
                populations.append([tags[i] for i in chunk])
            else:
                alone.extend(tags[i] for i in chunk)
    return populations, alone
