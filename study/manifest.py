"""The reproducibility manifest: what ran, on what software and hardware, with which command."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

MANIFEST_FILE = "manifest.json"
PACKAGES = (
    "regstudy",
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "keras-tuner",
    "optuna",
    "numpy",
    "scikit-learn",
    "pandas",
)


def session_manifest(command: str) -> dict[str, Any]:
    """One session of `study run`: when, the command, and the software and hardware it ran on."""
    import keras  # here, not at the top: reading a manifest must not load a backend

    from study.backend import determinism_enabled

    return {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "keras_backend": keras.backend.backend(),
        "devices": _devices(keras.backend.backend()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES if _version(name)},
        "git_commit": _git_commit(),
        "git_dirty": _git_dirty(),
        "deterministic_ops": determinism_enabled(),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _devices(backend: str) -> list[str]:
    """The accelerators the backend sees ("cpu" when none)."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices()]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or [
                "cpu"
            ]
    except Exception as error:  # a manifest must not stop a campaign
        return [f"unknown ({error})"]
    return ["cpu"]


def _git_dirty() -> bool | None:
    """Whether the working tree has uncommitted changes (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
