"""Engine drivers. Each owns exactly one translator (space -> engine); nothing else imports an
engine, and each engine is imported only when its driver is chosen."""

from __future__ import annotations

from pathlib import Path

from study.config import Campaign
from study.drivers._base import Chief, ConfigurationRecord, Driver, Liveness, Proposal

__all__ = ["Chief", "ConfigurationRecord", "Driver", "Liveness", "Proposal", "make_driver"]


def make_driver(
    campaign: Campaign,
    directory: Path,
    *,
    chief: Chief | None = None,
    liveness: Liveness | None = None,
    shared: bool = False,
) -> Driver:
    """The campaign's engine driver; with `chief`, a KerasTuner worker that asks the oracle
    the launching process serves (study.workers). `liveness` (the record store) says which
    worker is gone; the Optuna driver needs it to hand a gone worker's trials back. `shared`:
    other workers ask the same study (an Optuna worker then seeds its sampler for itself)."""
    if campaign.engine == "optuna":
        from study.drivers.optuna_driver import OptunaDriver

        return OptunaDriver(campaign, directory, liveness=liveness, shared=shared)
    from study.drivers.keras_tuner_driver import KerasTunerDriver

    return KerasTunerDriver(campaign, directory, chief=chief, liveness=liveness, shared=shared)
