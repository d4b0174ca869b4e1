"""Trained models back from a campaign folder.

- `trained_model(DIR, trial, seed)`: a run's compiled model with its best-epoch weights
  (`study.load(DIR).model()`).
- `write_keras_tuner_checkpoints`: at the end of a keras-tuner campaign, each completed
  configuration's best-epoch weights (of its best seed) where KerasTuner's `Tuner.load_model`
  reads them, `keras_tuner/trial_<id>/checkpoint.weights.h5`.
- `keras_tuner_hypermodel(DIR)`: a KerasTuner HyperModel that builds the campaign's model for a
  trial's hyperparameters, so a KerasTuner user's `get_best_models()` returns our trained models.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from study.config import Campaign
from study.data import Dataset
from study.store import RecordStore

CHECKPOINT = "checkpoint.weights.h5"  # KerasTuner: Tuner._get_checkpoint_fname (Keras 3)


class ModelError(LookupError):
    """No trained model for that trial and seed in the folder."""


def best_seed(trials: pd.DataFrame, trial: int, objective: str, direction: str) -> int | None:
    """The seed of `trial`'s complete run with the best value of the objective (the first seed
    on ties); None when none completed."""
    from study.results import Status, best_index

    runs = trials[(trials["trial"] == trial) & (trials["status"] == Status.COMPLETE)]
    if runs.empty:
        return None
    best = best_index(runs[f"best_{objective}"], direction)
    return None if best is None else int(runs["seed"].iloc[best])


def _weights(store: RecordStore, directory: Path, trial: int, seed: int) -> list[Any]:
    from study.campaign import fetch_weights
    from study.trial import read_weights

    path = fetch_weights(store, directory, trial, seed)
    if not path.exists():
        raise ModelError(f"{path}: no best-epoch weights for trial {trial}, seed {seed}")
    return read_weights(path)


class _Models:
    """Models of one campaign built for given values, one per architecture reused."""

    def __init__(self, campaign: Campaign, data: Dataset) -> None:
        self.campaign, self.data = campaign, data
        self._built: dict[str, Any] = {}

    def build(self, values: Mapping[str, Any], *, reuse: bool = False) -> Any:
        """The compiled model for a configuration's `values` (as the records hold them); with
        `reuse`, the one already built for their architecture, whatever its weights."""
        import keras

        from study.population import architecture_key
        from study.trial import build_model

        values = self.campaign.builder.complete(self.campaign.values(values))
        stacks = reuse and self.campaign.builder.stacks  # a custom builder's keys are its own
        key = architecture_key(values, self.campaign.builder) if stacks else None
        if key is None or key not in self._built:
            keras.mixed_precision.set_global_policy(values["precision"])
            model = build_model(values, self.campaign.builder, self.data)
            if key is None:
                return model
            self._built[key] = model
        return self._built[key]


def write_keras_tuner_checkpoints(
    campaign: Campaign, data: Dataset, store: RecordStore, directory: Path
) -> int:
    """Write the checkpoint each completed KerasTuner trial lacks; returns how many were written.
    The weights (the best seed's best epoch) are the same numbers as weights/*.npz, written
    through a model of the trial's architecture (one built per architecture)."""
    from study.drivers.keras_tuner_driver import ENGINE_DIR, trial_numbers
    from study.records import load
    from study.results import direction_of

    trials = load(directory).trials
    configurations = store.configurations()
    direction = direction_of(campaign.objective)
    models = _Models(campaign, data)
    written = 0
    for trial_id, number in trial_numbers(directory).items():
        path = directory / ENGINE_DIR / f"trial_{trial_id}" / CHECKPOINT
        seed = best_seed(trials, number, campaign.objective, direction)
        if path.exists() or seed is None:
            continue
        model = models.build(configurations[number], reuse=True)
        model.set_weights(_weights(store, directory, number, seed))
        partial = path.with_name("partial-" + CHECKPOINT)  # Keras wants .weights.h5
        model.save_weights(partial)
        os.replace(partial, path)
        written += 1
    return written


def _folder(directory: Path) -> tuple[Campaign, Dataset]:
    """The campaign a folder froze, and its data (for the model's input and output shapes)."""
    from study.campaign import check_builder_source, load_campaign_data
    from study.records import read_manifest
    from study.verify import frozen_campaign

    campaign = frozen_campaign(directory)
    check_builder_source(campaign, read_manifest(directory) or {}, directory, ModelError)
    return campaign, load_campaign_data(campaign)


def trained_model(directory: str | Path, trial: int, seed: int | None = None) -> Any:
    """Run (`trial`, `seed`)'s compiled Keras model with its best-epoch weights; without
    `seed`, the trial's seed with the best value of the objective."""
    from study.records import load, open_records
    from study.results import direction_of

    directory = Path(directory)
    campaign, data = _folder(directory)
    if seed is None:
        trials = load(directory).trials
        seed = best_seed(trials, trial, campaign.objective, direction_of(campaign.objective))
        if seed is None:
            raise ModelError(f"{directory}: trial {trial} has no complete run")
    store = open_records(directory, campaign.resolved["campaign"])
    try:
        configurations = store.configurations()
        if trial not in configurations:
            raise ModelError(f"{directory}: no trial {trial}")
        model = _Models(campaign, data).build(configurations[trial])
        model.set_weights(_weights(store, directory, trial, seed))
    finally:
        store.close()
    return model


def keras_tuner_hypermodel(directory: str | Path) -> Any:
    """A `keras_tuner.HyperModel` that builds the campaign's compiled model for a KerasTuner
    trial's hyperparameters. With it, a KerasTuner Tuner opened on DIR/keras_tuner returns our
    trained models from `get_best_models()`:

        tuner = keras_tuner.GridSearch(study.keras_tuner_hypermodel(DIR), objective=...,
                                       directory=DIR, project_name="keras_tuner", overwrite=False)
        best = tuner.get_best_models()[0]
    """
    import keras_tuner as kt

    from study.drivers.keras_tuner_driver import searched_values

    campaign, data = _folder(Path(directory))
    models = _Models(campaign, data)

    class CampaignHyperModel(kt.HyperModel):
        def build(self, hp: kt.HyperParameters) -> Any:
            return models.build(searched_values(hp.values, campaign.space))

    return CampaignHyperModel(name=campaign.name)
