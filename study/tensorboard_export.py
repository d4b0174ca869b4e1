"""`study export DIR --format tensorboard`: the records as TensorBoard event files.

DIR/tensorboard/ holds the HParams experiment (each searched value with its domain, `trial`,
`seed` and `status`, and the metrics); each run (configuration x seed) has a folder of its own,
`trial-0001-seed-0`, with its curves (the epochs frame's `train_<metric>` and `val_<metric>`,
one step per epoch), its `best_`, `final_` and `test_` values (the trials frame's), and its
HParams session. Written from the records alone, with TensorBoard's own summary protos
(`scalar_pb`, `hparams_pb`, `hparams_config_pb`) and its record writer, in the files TensorBoard's
`EventFileWriter` writes, without TensorFlow (whose import alone takes 10 s here).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import socket
import tempfile
import time
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
    hp = _hparams_api()
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{TENSORBOARD_DIR}-", dir=directory))
        try:
            _write_experiment(hp, staging, space, resolved, records)
            _replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        raise ExportError(f"{target}: cannot write it ({error.strerror or error})") from None
    return target


def _frozen_space(directory: Path, resolved: Mapping[str, Any]) -> SearchSpace:
    try:
        return SearchSpace.from_json(json.dumps(resolved["space"]))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ExportError(
            f"{directory / CAMPAIGN_FILE}: damaged: space is not a search space ({error})"
        ) from None


def _hparams_api() -> Any:
    """TensorBoard's HParams API (`tensorboard.plugins.hparams.summary_v2`: its classes and its
    TensorFlow-free `*_pb` functions)."""
    try:
        from tensorboard.plugins.hparams import summary_v2
    except ImportError as error:
        raise ExportError(
            f"--format tensorboard needs TensorBoard ({error}); pip install tensorboard"
        ) from None
    return summary_v2


class _EventFile:
    """One folder's event file, as TensorBoard's `EventFileWriter` names and begins it (its
    writer reaches TensorFlow's file system when TensorFlow is installed, so it is not used)."""

    def __init__(self, folder: Path) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
        self._event, self._file = event_pb2.Event, open(folder / name, "wb")  # noqa: SIM115
        self._records = RecordWriter(self._file)
        self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def add(self, summary: Any, step: int = 0) -> None:
        self._write(self._event(wall_time=time.time(), step=step, summary=summary))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def close(self) -> None:
        self._file.close()


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
    hp: Any, root: Path, space: SearchSpace, resolved: Mapping[str, Any], records: Records
) -> None:
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

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
    with _event_file(root) as events:
        events.add(hp.hparams_config_pb(hparams=hparams, metrics=metrics))
    runs = dict(iter(epochs.groupby(["trial", "seed"], sort=False)))
    for run in trials.to_dict("records"):
        curve = runs.get((run["trial"], run["seed"]), epochs.iloc[:0])
        with _event_file(root / run_name(run["trial"], run["seed"])) as events:
            _write_session(events, hp, run, searched)
            for column in curves:
                for epoch, value in zip(curve["epoch"], curve[column], strict=True):
                    events.add(scalar_pb(column, float(value)), step=int(epoch))
            last_epoch = int(curve["epoch"].max()) if len(curve) else 0
            for column in summaries:
                step = last_epoch if column.startswith("final_") else run["best_epoch"]
                if _is_finite(run[column]):
                    step = int(step) if _is_finite(step) else 0
                    events.add(scalar_pb(column, float(run[column])), step=step)


def _write_session(
    events: _EventFile, hp: Any, run: Mapping[str, Any], searched: list[str]
) -> None:
    """The run's HParams session: its values (an inactive conditional one left out), and its
    end with its status, as TensorBoard's own `hp.KerasCallback` writes it."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    values = {"trial": int(run["trial"]), "seed": int(run["seed"]), "status": str(run["status"])}
    for name in searched:
        value = run[f"param_{name}"]
        if not pd.isna(value):
            values[name] = _hparam_value(value)
    events.add(hp.hparams_pb(values, trial_id=run_name(run["trial"], run["seed"])))
    status = api_pb2.Status.Value(_SESSION_STATUS.get(run["status"], "STATUS_UNKNOWN"))
    end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    summary = summary_pb2.Summary()  # as `hparams.summary.session_end_pb`, which imports TF
    summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG,
        metadata=metadata.create_summary_metadata(
            plugin_data_pb2.HParamsPluginData(session_end_info=end)
        ),
        tensor=metadata.NULL_TENSOR,
    )
    events.add(summary)


@contextmanager
def _event_file(folder: Path) -> Iterator[_EventFile]:
    events = _EventFile(folder)
    try:
        yield events
    finally:
        events.close()


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
