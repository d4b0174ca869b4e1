"""Keras 3 code only: the same campaign runs on the JAX backend, under both engines."""

import json
import os
import subprocess
import sys

import pytest

from study import records
from tests.conftest import tiny_campaign


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_campaign_runs_on_the_jax_backend(tmp_path, campaign_file, engine):
    path = campaign_file(tiny_campaign(campaign={"engine": engine, "seeds": [0]}))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "study.cli", "run", str(path), "--out", str(out), "--quiet"],
        env=os.environ | {"KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sessions"][0]["keras_backend"] == "jax"
    trials, epochs = records.load(out)
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETE"}
    assert len(epochs) == 8 and epochs["val_accuracy"].between(0, 1).all()
