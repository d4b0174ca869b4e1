"""`study export DIR --format tensorboard`, read back with TensorBoard's own loader (the event
multiplexer its server uses): every run's curves, its best_/final_/test_ values, the HParams
experiment and sessions; a second export replaces the first; a damaged folder is refused."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing import plugin_event_accumulator, plugin_event_multiplexer
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.util import tensor_util

from search_spaces import Bool, Choice, Condition, Float, Int, SearchSpace
from study import records
from study.cli import main
from study.records import Records
from study.tensorboard_export import export_tensorboard, run_name
from tests.study.test_damaged_folders import FILE_DAMAGES, _refused, read_only


@pytest.fixture
def out(finished_tiny, tmp_path) -> Path:
    """A copy of the finished tiny campaign's folder (4 configurations, seed 0, 1 epoch)."""
    return Path(shutil.copytree(finished_tiny / "out", tmp_path / "out"))


def _load(logdir: Path) -> plugin_event_multiplexer.EventMultiplexer:
    everything = plugin_event_accumulator.STORE_EVERYTHING_SIZE_GUIDANCE
    loader = plugin_event_multiplexer.EventMultiplexer(size_guidance=everything)
    loader.AddRunsFromDirectory(str(logdir))
    loader.Reload()
    return loader


def _series(loader, run: str, tag: str) -> list[tuple[int, float]]:
    return [
        (e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in loader.Tensors(run, tag)
    ]


def _session(loader, run: str) -> dict[str, object]:
    content = loader.PluginRunToTagToContent(metadata.PLUGIN_NAME)[run]
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    values = {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()}
    return values | {"_group": start.group_name, "_status": api_pb2.Status.Name(end.status)}


def _experiment(loader) -> api_pb2.Experiment:
    content = loader.PluginRunToTagToContent(metadata.PLUGIN_NAME)["."]
    return metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])


def _float32(value: float) -> float:
    return float(np.float32(value))


def _equal(written: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    """Equal steps, and values equal once the expected ones are float32 (as TensorBoard stores
    a scalar), NaN equal to NaN."""
    expected = [(step, _float32(value)) for step, value in expected]
    return len(written) == len(expected) and all(
        sa == sb and (va == vb or (math.isnan(va) and math.isnan(vb)))
        for (sa, va), (sb, vb) in zip(written, expected, strict=True)
    )


def test_export_holds_every_runs_curves_values_and_hparams_session(out, capsys):
    assert main(["export", str(out), "--format", "tensorboard"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "tensorboard")
    trials, epochs = records.load(out)
    loader = _load(out / "tensorboard")
    names = {run_name(t, s) for t, s in zip(trials["trial"], trials["seed"], strict=True)}
    assert set(loader.Runs()) == names | {"."} and len(names) == 4
    curves = [c for c in epochs.columns if c not in ("trial", "seed", "epoch")]
    summaries = [c for c in trials.columns if c.startswith(("best_", "final_", "test_"))]
    summaries.remove("best_epoch")
    assert {"train_loss", "val_accuracy"} <= set(curves)
    assert {"best_val_accuracy", "final_train_loss", "test_accuracy"} <= set(summaries)
    for run in trials.to_dict("records"):
        name = run_name(run["trial"], run["seed"])
        curve = epochs[(epochs["trial"] == run["trial"]) & (epochs["seed"] == run["seed"])]
        for column in curves:
            expected = list(zip(curve["epoch"], curve[column], strict=True))
            assert _equal(_series(loader, name, column), expected), (name, column)
        for column in summaries:
            written = [v for _, v in _series(loader, name, column)] if pd.notna(run[column]) else []
            assert written == ([_float32(run[column])] if pd.notna(run[column]) else []), column
        assert _session(loader, name) == {
            "trial": run["trial"],
            "seed": run["seed"],
            "status": "COMPLETE",
            "dropout": run["param_dropout"],
            "l2": run["param_l2"],
            "_group": name,
            "_status": "STATUS_SUCCESS",
        }
    chosen = trials.dropna(subset=["test_accuracy"])
    assert len(chosen) == 1  # the test values are on the chosen configuration's run only
    experiment = _experiment(loader)
    assert [m.name.tag for m in experiment.metric_infos] == summaries
    domains = {h.name: list(h.domain_discrete) for h in experiment.hparam_infos}
    assert domains["dropout"] == [0.0, 0.5] and domains["l2"] == [0.0, 1e-3]
    assert domains["seed"] == [0] and domains["status"][0] == "COMPLETE"


def _event_count(logdir: Path) -> int:
    loader = _load(logdir)
    return sum(
        len(loader.Tensors(run, tag))
        for run, tags in loader.Runs().items()
        for tag in tags[plugin_event_accumulator.TENSORS]
    )


def test_a_second_export_replaces_the_first(out):
    assert main(["export", str(out), "--format", "tensorboard"]) == 0
    first = _event_count(out / "tensorboard")
    assert main(["export", str(out), "--format", "tensorboard"]) == 0
    assert _event_count(out / "tensorboard") == first > 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".tensorboard")] == []


def test_space_domains_and_unfinished_runs(tmp_path):
    """An int and a float range, a string and a bool choice, an inactive conditional value,
    a FAILED run with a NaN loss, and a RUNNING run without epochs: from frames, no training."""
    space = SearchSpace(
        {
            "units": Int(16, 64, step=16),
            "activation": Choice(("relu", "tanh")),
            "batch_norm": Bool(),
            "dropout": Float(0.0, 0.5, condition=Condition("activation", ("relu",))),
        }
    )
    resolved = {
        "campaign": {"seeds": [0, 1], "objective": "val_loss"},
        "space": json.loads(space.to_json()),
    }
    params = {"units": 32, "activation": "relu", "batch_norm": True, "dropout": 0.25}
    trials = pd.DataFrame(
        [
            {"trial": 1, "seed": 0, "status": "COMPLETE", "best_epoch": 2, "best_val_loss": 0.5},
            {"trial": 1, "seed": 1, "status": "FAILED", "best_epoch": 1, "best_val_loss": 0.9},
            {"trial": 2, "seed": 0, "status": "RUNNING", "best_epoch": math.nan},
        ]
    )
    for name, value in params.items():
        trials[f"param_{name}"] = [value, value, "tanh" if name == "activation" else value]
    trials.loc[2, "param_dropout"] = math.nan  # inactive: activation is tanh
    trials["final_val_loss"] = [0.6, math.nan, math.nan]
    epochs = pd.DataFrame(
        {"trial": [1, 1, 1, 1], "seed": [0, 0, 0, 1], "epoch": [1, 2, 3, 1]}
        | {"val_loss": [0.7, 0.5, 0.6, math.nan]}
    )
    logdir = export_tensorboard(tmp_path, resolved, Records(trials, epochs))
    loader = _load(logdir)
    infos = {h.name: h for h in _experiment(loader).hparam_infos}
    units = infos["units"].domain_interval
    assert (units.min_value, units.max_value) == (16, 64)
    assert infos["dropout"].domain_interval.max_value == 0.5
    assert list(infos["activation"].domain_discrete) == ["relu", "tanh"]
    assert list(infos["batch_norm"].domain_discrete) == [False, True]
    assert _equal(_series(loader, "trial-0001-seed-0", "val_loss"), [(1, 0.7), (2, 0.5), (3, 0.6)])
    assert _series(loader, "trial-0001-seed-0", "best_val_loss") == [(2, 0.5)]
    assert _series(loader, "trial-0001-seed-0", "final_val_loss") == [(3, _float32(0.6))]
    assert _equal(_series(loader, "trial-0001-seed-1", "val_loss"), [(1, math.nan)])
    assert _session(loader, "trial-0001-seed-1")["_status"] == "STATUS_FAILURE"
    running = _session(loader, "trial-0002-seed-0")
    assert running["_status"] == "STATUS_RUNNING" and "dropout" not in running
    assert running["activation"] == "tanh" and running["batch_norm"] is True
    no_scalars = {metadata.SESSION_START_INFO_TAG, metadata.SESSION_END_INFO_TAG}
    assert set(loader.Runs()["trial-0002-seed-0"][plugin_event_accumulator.TENSORS]) == no_scalars


@pytest.mark.parametrize("damage", FILE_DAMAGES)
def test_damaged_folder_is_refused_naming_the_file(out, capsys, damage):
    make, names = FILE_DAMAGES[damage]
    make(out)
    _refused(["export", str(out), "--format", "tensorboard"], capsys, names, root=out)


def test_read_only_folder_is_refused(out, capsys):
    with read_only(out):
        argv = ["export", str(out), "--format", "tensorboard"]
        _refused(argv, capsys, re.escape(str(out)) + r": cannot write in", root=out)


def test_damaged_space_or_a_file_in_the_way_is_refused(out, capsys):
    argv = ["export", str(out), "--format", "tensorboard"]
    (out / "tensorboard").write_text("mine")
    _refused(argv, capsys, re.escape(str(out / "tensorboard")) + ": is not a folder", root=out)
    (out / "tensorboard").unlink()
    resolved = json.loads((out / "campaign.json").read_text())
    resolved["space"]["dropout"] = {"type": "Nope"}
    (out / "campaign.json").write_text(json.dumps(resolved))
    _refused(argv, capsys, r"campaign\.json: damaged: space", root=out)


@pytest.mark.slow
def test_export_does_not_import_tensorflow(out):
    """The export writes TensorBoard's protos itself: TensorFlow's import (10 s) is not paid."""
    import subprocess
    import sys

    code = (
        "import sys; from study.cli import main; "
        f"rc = main(['export', {str(out)!r}, '--format', 'tensorboard']); "
        "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0 False False", done.stderr
    assert _load(out / "tensorboard").Runs()  # and TensorBoard reads what it wrote
