"""`study export DIR --format tensorboard`: the records as TensorBoard event files.

DIR/tensorboard/ holds the HParams experiment (each searched value with its domain, `trial`,
`seed` and `status`, and the metrics); each run (configuration x seed) has a folder of its own,
`trial-0001-seed-0`, with its curves (the epochs frame's `train_<metric>` and `val_<metric>`,
one step per epoch), its `best_`, `final_` and `test_` values (the trials frame's), and its
HParams session. Written from the records alone, with TensorBoard's public summary API
(`tensorboard.plugins.hparams.api`, `tf.summary`); TensorFlow is imported only here.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from search_spaces import Choice, Float, Int, SearchSpace
from study.records import CAMPAIGN_FILE, Records
from study.results import Status

TENSORBOARD_DIR = "tensorboard"
_RUN_KEYS = ("trial", "seed", "epoch")
_SUMMARY_PREFIXES = ("best_", "final_", "test_")
_ABOUT = {
    "best_": "at the epoch of the best {objective}",
    "final_": "at the last epoch",
    "test_": "on the test split (the chosen configuration's runs only)",
}
_SESSION_STATUS = {  # the HParams plugin's api_pb2.Status names
    Status.COMPLETE: "STATUS_SUCCESS",
    Status.FAILED: "STATUS_FAILURE",
    Status.RUNNING: "STATUS_RUNNING",
    Status.PRUNED: "STATUS_UNKNOWN",  # it has no pruned status; the `status` hparam says PRUNED
}


class ExportError(ValueError):
    """The export cannot be written: a damaged space, no TensorFlow, an unwritable folder."""


def run_name(trial: int, seed: int) -> str:
    """The folder (TensorBoard's run, and the HParams session) of one configuration x seed."""
    return f"trial-{trial:04d}-seed-{seed}"


def export_tensorboard(
    directory: str | Path, resolved: Mapping[str, Any], records: Records
) -> Path:
    """Write DIR/tensorboard/ from the folder's frozen campaign and its records, replacing
    what an earlier export wrote there as a whole (never adding to it); returns its path."""
    directory = Path(directory)
    target = directory / TENSORBOARD_DIR
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ExportError(f"{target}: is not a folder; move it away to export there")
    space = _frozen_space(directory, resolved)
    tf, hp = _tensorboard()
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{TENSORBOARD_DIR}-", dir=directory))
        try:
            _write_experiment(tf, hp, staging, space, resolved, records)
            _replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (OSError, tf.errors.OpError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "message", None) or error
        raise ExportError(f"{target}: cannot write it ({reason})") from None
    return target


def _frozen_space(directory: Path, resolved: Mapping[str, Any]) -> SearchSpace:
    try:
        return SearchSpace.from_json(json.dumps(resolved["space"]))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ExportError(
            f"{directory / CAMPAIGN_FILE}: damaged: space is not a search space ({error})"
        ) from None


def _tensorboard() -> tuple[Any, Any]:
    """TensorFlow and the HParams API, imported without TensorFlow's start-up chatter."""
    from study.native_log import native_chatter_held

    try:
        with native_chatter_held():
            import tensorflow as tf
            from tensorboard.plugins.hparams import api as hp
    except ImportError as error:
        raise ExportError(
            f"--format tensorboard needs TensorFlow and TensorBoard ({error}); "
            "pip install tensorflow tensorboard"
        ) from None
    return tf, hp


def _replace_folder(new: Path, target: Path) -> None:
    """Put `new` at `target`, moving an existing `target` aside first and then removing it."""
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{TENSORBOARD_DIR}-old-", dir=target.parent))
    try:
        os.rename(target, old / target.name)
        os.rename(new, target)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _write_experiment(
    tf: Any, hp: Any, root: Path, space: SearchSpace, resolved: Mapping[str, Any], records: Records
) -> None:
    trials, epochs = records
    curves = [c for c in epochs.columns if c not in _RUN_KEYS]
    summaries = [c for c in trials.columns if c.startswith(_SUMMARY_PREFIXES) and c != "best_epoch"]
    searched = [name for name in space.searched if f"param_{name}" in trials]
    campaign = resolved["campaign"]
    hparams = [
        hp.HParam("trial", hp.IntInterval(*_bounds(trials["trial"]))),
        hp.HParam("seed", hp.Discrete([int(s) for s in campaign["seeds"]])),
        hp.HParam("status", hp.Discrete([s.value for s in Status])),
        *(hp.HParam(name, _domain(hp, space.params[name])) for name in searched),
    ]
    metrics = [
        hp.Metric(
            column,
            description=_ABOUT[column[: column.index("_") + 1]].format(**campaign),
            dataset_type=_dataset_type(hp, column),
        )
        for column in summaries
    ]
    with _summary_writer(tf, root):
        hp.hparams_config(hparams=hparams, metrics=metrics)
    runs = dict(iter(epochs.groupby(["trial", "seed"], sort=False)))
    for run in trials.to_dict("records"):
        curve = runs.get((run["trial"], run["seed"]), epochs.iloc[:0])
        with _summary_writer(tf, root / run_name(run["trial"], run["seed"])):
            _write_session(tf, hp, run, searched)
            for column in curves:
                for epoch, value in zip(curve["epoch"], curve[column], strict=True):
                    tf.summary.scalar(column, float(value), step=int(epoch))
            last_epoch = int(curve["epoch"].max()) if len(curve) else 0
            for column in summaries:
                step = last_epoch if column.startswith("final_") else run["best_epoch"]
                if _is_finite(run[column]):
                    step = int(step) if _is_finite(step) else 0
                    tf.summary.scalar(column, float(run[column]), step=step)


def _write_session(tf: Any, hp: Any, run: Mapping[str, Any], searched: list[str]) -> None:
    """The run's HParams session: its values (an inactive conditional one left out), and its
    end with its status, as TensorBoard's own `hp.KerasCallback` writes it."""
    from tensorboard.plugins.hparams import api_pb2, summary

    values = {"trial": int(run["trial"]), "seed": int(run["seed"]), "status": str(run["status"])}
    for name in searched:
        value = run[f"param_{name}"]
        if not pd.isna(value):
            values[name] = _hparam_value(value)
    hp.hparams(values, trial_id=run_name(run["trial"], run["seed"]))
    status = api_pb2.Status.Value(_SESSION_STATUS.get(run["status"], "STATUS_UNKNOWN"))
    tf.summary.experimental.write_raw_pb(summary.session_end_pb(status).SerializeToString(), step=0)


@contextmanager
def _summary_writer(tf: Any, path: Path) -> Iterator[None]:
    """`tf.summary.create_file_writer(path)` as the default writer, closed on leaving."""
    writer = tf.summary.create_file_writer(str(path))
    try:
        with writer.as_default():
            yield
    finally:
        writer.close()


def _domain(hp: Any, param: Any) -> Any:
    """The HParams domain of a searched value: discrete for a choice, an interval for a range
    (None, no domain, for a choice that mixes kinds of values)."""
    if isinstance(param, Float):
        return hp.RealInterval(float(param.low), float(param.high))
    if isinstance(param, Int):
        return hp.IntInterval(int(param.low), int(param.high))
    if isinstance(param, Choice):
        values = [_hparam_value(v) for v in param.values]
        kinds = {type(v) for v in values}
        if kinds == {int, float}:
            return hp.Discrete([float(v) for v in values])
        return hp.Discrete(values) if len(kinds) == 1 else None
    return None


def _hparam_value(value: Any) -> bool | int | float | str:
    """A value as the HParams plugin stores it: a bool, a number or a string."""
    if hasattr(value, "item"):  # a numpy scalar from the frame
        value = value.item()
    return value if isinstance(value, bool | int | float | str) else str(value)


def _dataset_type(hp: Any, column: str) -> Any:
    if "_train_" in f"_{column}":
        return hp.Metric.TRAINING
    return hp.Metric.VALIDATION if "_val_" in f"_{column}" else None


def _bounds(series: pd.Series) -> tuple[int, int]:
    return (int(series.min()), int(series.max())) if len(series) else (1, 1)


def _is_finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)
