"""Engine drivers. Each owns exactly one translator (space -> engine); nothing else imports an
engine, and each engine is imported only when its driver is chosen."""

from __future__ import annotations

from pathlib import Path

from study.config import Campaign
from study.drivers._base import Chief, Driver, Proposal

__all__ = ["Chief", "Driver", "Proposal", "make_driver"]


def make_driver(campaign: Campaign, directory: Path, *, chief: Chief | None = None) -> Driver:
    """The campaign's engine driver; with `chief`, a KerasTuner worker that asks the oracle
    the launching process serves (study.workers)."""
    if campaign.engine == "optuna":
        from study.drivers.optuna_driver import OptunaDriver

        return OptunaDriver(campaign, directory)
    from study.drivers.keras_tuner_driver import KerasTunerDriver

    return KerasTunerDriver(campaign, directory, chief=chief)
