"""Training one configuration with one seed: the unit of work every driver asks for.

A run never raises for a bad configuration: divergence and exceptions become a FAILED result with
its reason, so the campaign goes on. Interrupts (Ctrl-C) propagate.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from search_spaces import Builder
from study.backend import forget_traced_gradients, one_pass_eagerly
from study.data import Dataset
from study.results import CurveTracker, RunResult, Status
from study.seeding import data_order, seed_everything

# Called after each epoch with (epoch, value of the objective); True stops the run as PRUNED.
EpochHook = Callable[[int, float], bool]


def fresh_session(precision: str = "float32") -> None:
    """Reset Keras's global state, set the dtype policy `precision` (the campaign key
    `train.precision`: "float32", "mixed_float16" or "mixed_bfloat16"), and collect the previous
    run's garbage, at a constant cost.

    The policy is set here, the one place for sequential runs, populations and the test
    evaluation: `clear_session` resets it to float32, so it is set anew for every run.

    TensorFlow keeps every traced training step alive (about 10,000 objects a `fit`), so each full
    collection would scan all earlier runs' objects and grow slower run after run. After
    collecting, what survives is frozen out of later collections: each run's collection then
    scans only the objects created since the last one. Dropping TensorFlow's gradient functions
    of earlier runs first (study.backend) lets the collection free their traced steps at all.
    """
    forget_traced_gradients()
    keras.utils.clear_session(free_memory=False)
    keras.mixed_precision.set_global_policy(precision)
    gc.collect()
    gc.freeze()


def build_model(values: Mapping[str, Any], builder: Builder, data: Dataset) -> keras.Model:
    """`builder`'s compiled model for complete `values` (`Builder.complete`) and `data`."""
    return builder.build(
        values, input_shape=data.input_shape, n_outputs=data.n_outputs, task=data.task
    )


def train_run(
    values: Mapping[str, Any],
    *,
    builder: Builder,
    data: Dataset,
    seed: int,
    objective: str,
    direction: str,
    weights_path: Path | None = None,
    on_epoch: EpochHook | None = None,
) -> RunResult:
    """Train one configuration from scratch with `seed`; keep the best epoch's weights.

    The weights of the epoch with the best `objective` are saved to `weights_path` (NumPy .npz),
    for the test-split evaluation of the chosen configuration when the search ends. Missing
    keys of `values` take their defaults.
    """
    start = time.perf_counter()
    values = builder.complete(values)
    fresh_session(values["precision"])
    seed_everything(seed)
    tracker = _Tracker(objective, direction, on_epoch)
    try:
        model = build_model(values, builder, data)
        batches = _InOrder(data, seed, int(values["epochs"]), int(values["batch_size"]))
        model.fit(
            batches,
            validation_data=(data.x_val, data.y_val),
            epochs=int(values["epochs"]),
            steps_per_epoch=batches.steps_per_epoch,
            shuffle=False,
            verbose=0,
            callbacks=[tracker],
        )
        if tracker.best_weights is not None and weights_path is not None:
            weights_path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(weights_path, *tracker.best_weights)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # one bad configuration must not stop the campaign
        tracker.curves.fail(error)
    return tracker.curves.result(time.perf_counter() - start)


def evaluate_run(
    values: Mapping[str, Any], *, builder: Builder, data: Dataset, weights_path: Path
) -> dict[str, float]:
    """The test-split metrics of a finished run, from its saved best-epoch weights, evaluated
    eagerly where one pass does not repay tracing it (`one_pass_eagerly`)."""
    values = builder.complete(values)
    fresh_session(values["precision"])
    model = build_model(values, builder, data)
    model.set_weights(read_weights(weights_path))
    model.run_eagerly = one_pass_eagerly()
    scores = model.evaluate(
        data.x_test, data.y_test, batch_size=int(values["batch_size"]), verbose=0, return_dict=True
    )
    return {name: float(value) for name, value in scores.items()}


def read_weights(path: Path) -> list[np.ndarray]:
    """A run's saved weights (as `train_run` writes them), in `Builder.build`'s order."""
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


class _InOrder(keras.utils.PyDataset):
    """The training batches of all epochs, in the run's own order (`study.seeding.data_order`,
    which population training shares): batch j is a pure function of j, so Keras may peek at
    batches or call `on_epoch_end` without changing what is trained."""

    def __init__(self, data: Dataset, seed: int, epochs: int, batch_size: int) -> None:
        super().__init__()
        self.x, self.y, self.seed, self.batch_size = data.x_train, data.y_train, seed, batch_size
        self.steps_per_epoch, self.epochs = math.ceil(len(self.x) / batch_size), epochs
        self._epoch, self._order = -1, np.arange(0)

    def __len__(self) -> int:
        return self.steps_per_epoch * self.epochs

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, step = divmod(index, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, data_order(self.seed, epoch, len(self.x))
        rows = self._order[step * self.batch_size : (step + 1) * self.batch_size]
        return self.x[rows], self.y[rows]


class _Tracker(keras.callbacks.Callback):
    """Records each epoch's curves (`study.results.CurveTracker`), stops on divergence or
    pruning, and keeps a copy of the weights of the best epoch so far."""

    def __init__(self, objective: str, direction: str, on_epoch: EpochHook | None) -> None:
        super().__init__()
        self.curves = CurveTracker(objective, direction)
        self.on_epoch = on_epoch
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        columns = {
            name if name.startswith("val_") else f"train_{name}": float(value)
            for name, value in (logs or {}).items()
        }
        if self.curves.record(epoch, columns):
            self.best_weights = self.model.get_weights()
        if self.curves.status != Status.COMPLETE:
            self.model.stop_training = True
        elif self.on_epoch is not None and self.on_epoch(
            epoch + 1, self.curves.history[self.curves.objective][-1]
        ):
            self.curves.status = Status.PRUNED
            self.model.stop_training = True
