"""The command line: exit status 2 and one message for bad input; status and export; a quick
answer to a bad file, only our own lines on stderr, a closed pipe ends quietly."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from study.cli import main
from tests.conftest import tiny_campaign


@pytest.fixture(scope="module")
def finished(finished_tiny, tmp_path_factory):
    """A tiny campaign run through the command line (this module's copy of tests/conftest.py's)."""
    directory = shutil.copytree(finished_tiny, tmp_path_factory.mktemp("cli") / "copy")
    return directory / "c.toml", directory / "out"


def test_run_prints_the_chosen_configuration_and_where_results_are(finished, capsys):
    path, out = finished
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0  # resumes: nothing to do
    printed = capsys.readouterr().out
    assert "chosen: trial" in printed and "test accuracy" in printed
    assert f"results: {out}" in printed
    for name in ["campaign.json", "campaign.toml", "manifest.json", "records.sqlite"]:
        assert (out / name).exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["data_fingerprint"]) == 64 and manifest["seeds"] == [0]
    assert len(manifest["sessions"]) == 2  # the first run and this resume
    session = manifest["sessions"][-1]
    assert session["keras_backend"] and session["packages"]["optuna"].startswith("5.0")
    assert session["command"].startswith("study run ")


def test_verify_retrains_a_finished_run_bit_for_bit(finished, capsys):
    """`study verify` end to end in the fast tests (test_verify.py trains campaigns of its own)."""
    _, out = finished
    assert main(["verify", str(out), "--trials", "1"]) == 0
    said = capsys.readouterr().out
    assert "1 run(s) retrained; largest difference 0, tolerance 1e-06: reproduced" in said


def test_status_shows_progress_and_best(finished, capsys):
    assert main(["status", str(finished[1])]) == 0
    printed = capsys.readouterr().out
    assert "configurations: 4; runs: 4 COMPLETE" in printed
    assert "best so far: trial" in printed and "val_accuracy" in printed


@pytest.mark.parametrize(
    "fmt, read",
    [
        ("csv", pd.read_csv),
        ("json", pd.read_json),
        ("parquet", pd.read_parquet),
    ],
)
def test_export_writes_trials_and_epochs(finished, fmt, read):
    out = finished[1]
    assert main(["export", str(out), "--format", fmt]) == 0
    trials, epochs = read(out / f"trials.{fmt}"), read(out / f"epochs.{fmt}")
    assert len(trials) == 4 and {
        "trial",
        "seed",
        "status",
        "param_dropout",
        "best_epoch",
        "best_val_accuracy",
        "final_train_loss",
    } <= set(trials.columns)
    assert len(epochs) == 4 and list(epochs.columns[:3]) == ["trial", "seed", "epoch"]


def test_changed_campaign_is_refused_naming_the_keys(finished, tmp_path, capsys):
    path, out = finished
    changed = tmp_path / "changed.toml"
    changed.write_text(path.read_text().replace("epochs = 1", "epochs = 3"))
    assert main(["run", str(changed), "--out", str(out), "--quiet"]) == 2
    assert "changed keys: train.epochs" in capsys.readouterr().err


def test_bad_campaign_file_exits_2_naming_the_key(campaign_file, capsys):
    path = campaign_file(tiny_campaign(space={"dropout": [0.0, 1.5]}))
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("study: error: ") and "space.dropout: 1.5 is outside [0, 1)" in err


def test_bad_data_exits_2_naming_the_file_before_training(tmp_path, campaign_file, capsys):
    data = tmp_path / "bad.npz"
    x = np.random.default_rng(0).random((50, 4)).astype("float32")
    x[3, 1] = np.nan
    np.savez(data, x=x, y=np.arange(50) % 2)
    path = campaign_file(tiny_campaign(data={"dataset": f"npz:{data}"}))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "NaN" in err
    assert not out.exists()


def test_missing_campaign_folder_exits_2(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nowhere")]) == 2
    assert "not a campaign folder" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_reports_without_traceback(campaign_file):
    path = campaign_file(tiny_campaign(train={"optimizer": "adamw"}))
    result = subprocess.run(
        [sys.executable, "-m", "study.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "train.optimizer: 'adamw' is not one of sgd, adam, rmsprop" in result.stderr
    flags = subprocess.run(
        [sys.executable, "-m", "study.cli", "export", "x", "--format", "xls"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flags.returncode == 2 and "invalid choice: 'xls'" in flags.stderr


# What reading a campaign file must not load: Keras and its backends, the engines, scikit-learn.
HEAVY_MODULES = ("keras", "tensorflow", "jax", "torch", "optuna", "keras_tuner", "sklearn")
OWN_PREFIXES = ("study:", "population:")  # the lines this tool writes to stderr


@pytest.mark.slow
def test_a_campaign_file_is_checked_without_loading_keras_or_an_engine(campaign_file):
    bad = campaign_file({"campaign": {"name": "typo", "engnie": "optuna"}}, name="bad.toml")
    good = campaign_file(tiny_campaign(), name="good.toml")
    code = f"""
import sys
from study.cli import main
from study.config import ConfigError, load_campaign
try:
    load_campaign({str(bad)!r})
    raise SystemExit("no ConfigError")
except ConfigError:
    pass
load_campaign({str(good)!r})
load_campaign(None)  # the built-in campaign
assert main(["run", {str(bad)!r}]) == 2
print(sorted(set({HEAVY_MODULES!r}) & set(sys.modules)))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
    assert "campaign.engnie: unknown key (did you mean 'engine'?)" in result.stderr


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("missing.npz", None, "file not found"),
        ("corrupt.npz", b"PK\x03\x04 not really a zip archive", "cannot read .* as .npz"),
        ("text.csv", "a,b,label\n1,x,0\n2,3,1\n", "non-numeric value .*'x'"),
        ("ragged.csv", "a,b,label\n1,2,0\n2,3,4,5\n", "Expected 3 fields in line 3, saw 4"),
    ],
)
def test_a_data_error_is_one_line(tmp_path, campaign_file, capsys, name, content, says):
    data = tmp_path / name
    if isinstance(content, bytes):
        data.write_bytes(content)
    elif content is not None:
        data.write_text(content)
    kind = name.rsplit(".", 1)[1]
    path = campaign_file(tiny_campaign(data={"dataset": f"{kind}:{data}"}))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    summary, error, *more = capsys.readouterr().err.splitlines()
    assert summary.startswith("study: tiny: ") and not more
    assert error.startswith(f"study: error: {kind}:{data}: ")
    assert re.search(says, error)
    assert not out.exists()


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"study {importlib.metadata.version('regstudy')}\n"


@pytest.mark.slow
def test_a_resumed_run_counts_from_the_finished_runs(finished, tmp_path, capsys):
    path, finished_out = finished
    out = shutil.copytree(finished_out, tmp_path / "copy")  # its own session, not the fixture's
    assert main(["run", str(path), "--out", str(out)]) == 0  # progress on: plain lines here
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if re.match(r"study: \d+/\d+ runs", line)]
    assert progress and all(line.startswith("study: 4/4 runs") for line in progress), lines
    assert all(line.startswith(OWN_PREFIXES) for line in lines), lines


def _users_environment() -> dict[str, str]:
    """A shell's environment: TensorFlow's log level left to the command (tests/conftest.py
    sets one for this process)."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


@pytest.mark.slow
def test_on_a_cpu_stderr_carries_only_our_own_lines(campaign_file, tmp_path):
    path = campaign_file(tiny_campaign(campaign={"seeds": [0]}, train={"epochs": 1}))
    out = str(tmp_path / "out")
    for args in [
        ("run", str(path), "--out", out, "--quiet"),
        ("status", out),
        ("report", out),
        ("export", out, "--format", "csv"),
        ("verify", out, "--trials", "1"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "study.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=_users_environment(),
        )
        assert result.returncode == 0, (args, result.stderr)
        lines = result.stderr.splitlines()
        assert all(line.startswith(OWN_PREFIXES) for line in lines), (args, lines)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_closed_stdout_ends_quietly_with_status_141(finished, command):
    path, out = finished
    args = {
        "status": ["status", str(out)],
        "run": ["run", str(path), "--out", str(out), "--quiet"],  # resumes: prints the choice
    }[command]
    process = subprocess.Popen(
        [sys.executable, "-m", "study.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_users_environment(),
    )
    process.stdout.close()  # the reader is gone before the first line (as `| head -0`)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert all(line.startswith(OWN_PREFIXES) for line in stderr.splitlines()), stderr
