"""Seeds: every run's seed is derived from the campaign seed, the configuration and the listed seed.

Global seeding happens here only, once per run, through Keras (Python, NumPy and the backend).
"""

from __future__ import annotations

import hashlib

import keras


def derive_seed(campaign_seed: int, configuration_key: str, seed: int) -> int:
    """A seed in [0, 2**31) that changes with any of its three inputs and with nothing else."""
    digest = hashlib.sha256(f"{campaign_seed}:{configuration_key}:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (weights, Dropout masks, shuffling)."""
    keras.utils.set_random_seed(seed)
