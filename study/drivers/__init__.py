"""Engine drivers. Each owns exactly one translator (space -> engine); nothing else imports an
engine, and each engine is imported only when its driver is chosen."""

from __future__ import annotations

from pathlib import Path

from study.config import Campaign
from study.drivers._base import Driver, Proposal

__all__ = ["Driver", "Proposal", "make_driver"]


def make_driver(campaign: Campaign, directory: Path) -> Driver:
    if campaign.engine == "optuna":
        from study.drivers.optuna_driver import OptunaDriver

        return OptunaDriver(campaign, directory)
    from study.drivers.keras_tuner_driver import KerasTunerDriver

    return KerasTunerDriver(campaign, directory)
