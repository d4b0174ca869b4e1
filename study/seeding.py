"""Seeds: every run's seed is derived from the campaign seed, the configuration and the listed seed.

Global seeding happens here only, once per run, through Keras (Python, NumPy and the backend).
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np


def derive_seed(campaign_seed: int, configuration_key: str, seed: int) -> int:
    """A seed in [0, 2**31) that changes with any of its three inputs and with nothing else."""
    digest = hashlib.sha256(f"{campaign_seed}:{configuration_key}:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (weights, Dropout masks, shuffling)."""
    keras.utils.set_random_seed(seed)


def data_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which a run seeded with `seed` visits its `n` training examples in `epoch`
    (0-based). Sequential runs and population members share it, so their batches are the same."""
    return np.random.default_rng([seed, epoch]).permutation(n)
