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


@pytest.fixture
def campaign_file(tmp_path):
    """Write a campaign mapping to a TOML file and return its path."""

    def write(raw: dict[str, Any], name: str = "campaign.toml"):
        path = tmp_path / name
        path.write_text(to_toml(raw))
        return path

    return write
