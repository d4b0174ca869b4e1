"""Shared test helpers: tiny campaigns on digits that train in about a second per run."""

from __future__ import annotations

import copy
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

TINY = {
    "campaign": {"name": "tiny", "engine": "optuna", "strategy": "grid", "seeds": [0, 1]},
    "data": {"dataset": "digits"},
    "model": {"builder": "mlp", "hidden_layers": 1, "units": 16},
    "train": {"epochs": 2, "batch_size": 128},
    "space": {"dropout": [0.0, 0.5], "l2": [0.0, 1e-3]},
}


def tiny_campaign(**sections: dict[str, Any]) -> dict[str, Any]:
    """The tiny campaign mapping with some keys of some sections replaced."""
    raw = copy.deepcopy(TINY)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def to_toml(raw: dict[str, Any]) -> str:
    """A campaign mapping written as TOML (enough for the values our tests use)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    return "\n".join(
        f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())
        for section, table in raw.items()
    )


@pytest.fixture(scope="session")
def finished_tiny(tmp_path_factory):
    """A folder holding c.toml, the tiny campaign with one seed and one epoch, and out/, that
    campaign run by the command line: once per session; copy it before changing anything."""
    from study.cli import main

    base = tmp_path_factory.mktemp("finished-tiny")
    (base / "c.toml").write_text(
        to_toml(tiny_campaign(campaign={"seeds": [0]}, train={"epochs": 1}))
    )
    assert main(["run", str(base / "c.toml"), "--out", str(base / "out"), "--quiet"]) == 0
    return base


@pytest.fixture
def campaign_file(tmp_path):
    """Write a campaign mapping to a TOML file and return its path."""

    def write(raw: dict[str, Any], name: str = "campaign.toml"):
        path = tmp_path / name
        path.write_text(to_toml(raw))
        return path

    return write
