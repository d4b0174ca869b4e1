"""Overfitting diagnostics per run (trial x seed) and per configuration across seeds.

Pure analysis: the trials and epochs frames of `study.records` in, frames out.

Rules, applied to one run's per-epoch curves (epochs are 1-based):

- Best epochs: `best_loss_epoch` is the epoch of the minimum validation loss (the first one on
  ties); `best_objective_epoch` is the epoch of the best objective (the records' `best_epoch`).
- Gaps: `gap_loss_*` = val_loss - train_loss and `gap_accuracy_*` = train_accuracy - val_accuracy,
  at the best-loss epoch and at the final epoch; positive means the model does better on the data
  it trained on. Keras's train_* are running means over the epoch with Dropout active, so a
  Dropout model's gap reads lower (even negative) than its weights' true gap.
- Onset (the tuning playbook's "validation error starts increasing"): the epoch m of the
  validation-loss minimum, when at least `patience` (`PATIENCE`) later epochs lie above that
  minimum by more than `ONSET_TOLERANCE` of its magnitude, the final epoch among them (the loss
  has not come back). A curve still falling, flat within the tolerance, or whose minimum is too
  close to the end to tell has no onset. A curve with a non-finite value has none either.
- Severity: final validation loss minus its minimum (0 when the last epoch is the best).
- Verdict, the first rule that holds:
  1. "diverged": a non-finite training or validation loss, or a failure starting with "diverged";
  2. "incomplete": the run is not COMPLETE (pruned, failed, running), or has no finite history;
  3. "overfitting": an onset, and a severity above `OVERFIT_SEVERITY` of the minimum validation
     loss or a final relative gap (val_loss - train_loss) / val_loss above `OVERFIT_GAP`;
  4. "underfitting": the validation loss still fell by more than `UNDERFIT_DECREASE` of its value
     over the last `patience` epochs (more training would still help), or the final training
     accuracy is below `UNDERFIT_ACCURACY` (the model does not fit its own training data);
  5. "good fit" otherwise.

Per configuration, `summarize_configurations` gives the mean, standard deviation and a
percentile-bootstrap interval over its COMPLETE seeds of the objective and of the gap.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from study.records import rank_by_objective
from study.results import Status, best_index, check_direction, configuration_objective, direction_of

PATIENCE = 3
"""Later epochs the validation loss must stay above its minimum for an onset."""
ONSET_TOLERANCE = 0.01
"""An epoch counts as above the minimum when it exceeds it by more than 1% of its magnitude."""
OVERFIT_SEVERITY = 0.05
"""Overfitting (with an onset) when the final validation loss ends > 5% above its minimum..."""
OVERFIT_GAP = 0.25
"""... or when the final val-train loss gap is more than 25% of the final validation loss."""
UNDERFIT_DECREASE = 0.05
"""Underfitting when the validation loss fell by more than 5% over the last `patience` epochs..."""
UNDERFIT_ACCURACY = 0.5
"""... or when the final training accuracy is below 0.5."""

UNDERFITTING, GOOD_FIT, OVERFITTING = "underfitting", "good fit", "overfitting"
DIVERGED, INCOMPLETE = "diverged", "incomplete"
VERDICTS = (UNDERFITTING, GOOD_FIT, OVERFITTING, DIVERGED, INCOMPLETE)
# A tie between verdicts over seeds goes to the more worrying one.
_TIE_ORDER = (DIVERGED, OVERFITTING, UNDERFITTING, INCOMPLETE, GOOD_FIT)

__all__ = [
    "DIVERGED",
    "GOOD_FIT",
    "INCOMPLETE",
    "ONSET_TOLERANCE",
    "OVERFITTING",
    "OVERFIT_GAP",
    "OVERFIT_SEVERITY",
    "PATIENCE",
    "UNDERFITTING",
    "UNDERFIT_ACCURACY",
    "UNDERFIT_DECREASE",
    "VERDICTS",
    "bootstrap_interval",
    "diagnose_runs",
    "most_common_verdict",
    "overfitting_onset",
    "summarize_configurations",
    "verdict_of",
]


def overfitting_onset(val_loss: Sequence[float], *, patience: int = PATIENCE) -> int | None:
    """The 1-based epoch after which the validation loss keeps rising, or None (module rules)."""
    if patience < 1:
        raise ValueError(f"patience: {patience} is not a positive integer")
    values = np.asarray(val_loss, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        return None
    best = int(np.argmin(values))
    threshold = values[best] + ONSET_TOLERANCE * abs(values[best])
    above = values[best + 1 :] > threshold
    if above.sum() >= patience and above[-1]:
        return best + 1
    return None


def verdict_of(
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    *,
    train_accuracy: Sequence[float] | None = None,
    status: str = Status.COMPLETE,
    failure: str | None = None,
    patience: int = PATIENCE,
) -> str:
    """One run's verdict from its curves and how it ended (the module's rules, in order)."""
    train = np.asarray(train_loss, dtype=float)
    val = np.asarray(val_loss, dtype=float)
    if not (np.isfinite(train).all() and np.isfinite(val).all()) or _diverged(failure):
        return DIVERGED
    if status != Status.COMPLETE or val.size == 0:
        return INCOMPLETE
    onset = overfitting_onset(val, patience=patience)
    if onset is not None:
        minimum, final = val.min(), val[-1]
        severe = final - minimum > OVERFIT_SEVERITY * abs(minimum)
        wide = train.size > 0 and final > 0 and (final - train[-1]) / final > OVERFIT_GAP
        if severe or wide:
            return OVERFITTING
    if val.size > 1:
        start = val[-1 - min(patience, val.size - 1)]
        if start > 0 and (start - val[-1]) / start > UNDERFIT_DECREASE:
            return UNDERFITTING
    if train_accuracy is not None:
        accuracy = np.asarray(train_accuracy, dtype=float)
        if accuracy.size and np.isfinite(accuracy[-1]) and accuracy[-1] < UNDERFIT_ACCURACY:
            return UNDERFITTING
    return GOOD_FIT


def diagnose_runs(
    trials: pd.DataFrame, epochs: pd.DataFrame, *, objective: str, patience: int = PATIENCE
) -> pd.DataFrame:
    """One row per trials row (every status): best epochs, gaps, onset, severity and verdict.

    `objective` names the validation metric the campaign optimized, e.g. "val_accuracy"; the
    `objective` column is the run's `best_<objective>`.
    """
    params = [c for c in trials.columns if c.startswith("param_")]
    curves = {
        (key[0], key[1]): group.sort_values("epoch", kind="stable")
        for key, group in epochs.groupby(["trial", "seed"], sort=False)
    }
    rows = []
    for record in trials.to_dict("records"):
        curve = curves.get((record["trial"], record["seed"]))
        row: dict[str, Any] = {k: record.get(k) for k in ("trial", "seed", "status", "failure")}
        row |= {c: record[c] for c in params}
        row |= _diagnose_one(record, curve, objective=objective, patience=patience)
        rows.append(row)
    columns = ["trial", "seed", "status", "failure", *params, *_RUN_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


_RUN_COLUMNS = [
    "objective",
    "best_objective_epoch",
    "best_loss_epoch",
    "gap_loss_best",
    "gap_loss_final",
    "gap_accuracy_best",
    "gap_accuracy_final",
    "onset_epoch",
    "severity",
    "verdict",
    "n_epochs",
    "min_val_loss",
    "final_val_loss",
]


def _diagnose_one(
    record: dict[str, Any], curve: pd.DataFrame | None, *, objective: str, patience: int
) -> dict[str, Any]:
    """The diagnostic columns of one run from its trials row and its epochs rows (or None)."""
    curve = curve if curve is not None else pd.DataFrame()

    def column(name: str) -> np.ndarray:
        return curve[name].to_numpy(dtype=float) if name in curve else np.full(len(curve), np.nan)

    train, val = column("train_loss"), column("val_loss")
    train_acc, val_acc = column("train_accuracy"), column("val_accuracy")
    epoch_numbers = curve["epoch"].to_numpy() if "epoch" in curve else np.arange(1, len(curve) + 1)
    out: dict[str, Any] = dict.fromkeys(_RUN_COLUMNS, math.nan)
    out["n_epochs"] = len(curve)
    out["objective"], out["best_objective_epoch"] = _best_objective(record, curve, objective)
    best = best_index(val, "minimize")
    if best is not None:
        out["best_loss_epoch"] = int(epoch_numbers[best])
        out["min_val_loss"] = val[best]
        out["final_val_loss"] = val[-1]
        out["severity"] = val[-1] - val[best]
        out["gap_loss_best"] = val[best] - train[best]
        out["gap_loss_final"] = val[-1] - train[-1]
        out["gap_accuracy_best"] = train_acc[best] - val_acc[best]
        out["gap_accuracy_final"] = train_acc[-1] - val_acc[-1]
    onset = overfitting_onset(val, patience=patience) if len(val) else None
    out["onset_epoch"] = int(epoch_numbers[onset - 1]) if onset is not None else math.nan
    out["verdict"] = verdict_of(
        train if "train_loss" in curve else [],
        val if "val_loss" in curve else [],
        train_accuracy=train_acc if "train_accuracy" in curve else None,
        status=record.get("status", Status.COMPLETE),
        failure=record.get("failure"),
        patience=patience,
    )
    return out


def _best_objective(
    record: dict[str, Any], curve: pd.DataFrame, objective: str
) -> tuple[float, float]:
    """The run's best objective and its epoch: the records' `best_<objective>` and `best_epoch`,
    else from its curve (`study.results.best_index`)."""
    best = None
    if objective in curve:
        best = best_index(curve[objective].to_numpy(dtype=float), direction_of(objective))
    if f"best_{objective}" in record:
        value = _float(record[f"best_{objective}"])
    else:
        value = math.nan if best is None else float(curve[objective].iloc[best])
    if "best_epoch" in record:
        epoch = _float(record["best_epoch"])
    elif best is None:
        epoch = math.nan
    else:
        epoch = float(curve["epoch"].iloc[best]) if "epoch" in curve else float(best + 1)
    return value, epoch


def bootstrap_interval(
    values: Sequence[float] | np.ndarray | pd.Series,
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of the finite `values`; (nan, nan) under 2."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is not between 0 and 1")
    if n_boot < 1:
        raise ValueError(f"n_boot: {n_boot} is not a positive integer")
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_boot, data.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarize_configurations(
    diagnosis: pd.DataFrame,
    *,
    direction: str,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per configuration (trial): the objective and gap over its COMPLETE seeds, its most
    common verdict, and `rank` (1 = best mean among configurations complete on every seed)."""
    check_direction(direction)
    params = [c for c in diagnosis.columns if c.startswith("param_")]
    rows = []
    for trial, runs in diagnosis.groupby("trial", sort=True):
        done = runs[runs["status"] == Status.COMPLETE]
        objective, gap = done["objective"].astype(float), done["gap_loss_best"].astype(float)
        row: dict[str, Any] = {"trial": trial} | {c: runs[c].iloc[0] for c in params}
        row["n_seeds"], row["n_complete"] = len(runs), len(done)
        interval = {"confidence": confidence, "n_boot": n_boot, "seed": seed}
        row |= _stats("objective", objective, mean=statistics.fmean, **interval)
        row |= _stats("gap", gap, mean=np.mean, **interval)
        row["verdict"] = most_common_verdict(runs["verdict"])
        row["_score"] = configuration_objective(runs["status"], runs["objective"])
        rows.append(row)
    stats = [f"{name}_{s}" for name in ("objective", "gap") for s in ("mean", "std", "low", "high")]
    columns = ["trial", *params, "n_seeds", "n_complete", *stats, "verdict", "rank"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    table["rank"] = rank_by_objective(table.pop("_score"), direction)
    table = table.sort_values(["rank", "trial"], na_position="last", kind="stable")
    return table[columns].reset_index(drop=True)


def most_common_verdict(verdicts: Sequence[str] | pd.Series) -> str:
    """The most common verdict; ties go to the more worrying (diverged, overfitting, ...)."""
    counts = Counter(v for v in verdicts if isinstance(v, str))
    if not counts:
        return INCOMPLETE
    top = max(counts.values())
    tied = [v for v, n in counts.items() if n == top]
    order = {v: i for i, v in enumerate(_TIE_ORDER)}
    return min(tied, key=lambda v: order.get(v, len(order)))


def _stats(
    name: str,
    values: pd.Series,
    *,
    mean: Callable[[pd.Series], float],
    confidence: float,
    n_boot: int,
    seed: int,
) -> dict[str, float]:
    """`<name>_mean` (by `mean`: the objective's is `study.results.configuration_objective`'s),
    `_std` (ddof=1), `_low`, `_high` (bootstrap) of the finite values."""
    finite = values[np.isfinite(values)]
    low, high = bootstrap_interval(finite, confidence=confidence, n_boot=n_boot, seed=seed)
    return {
        f"{name}_mean": float(mean(finite)) if len(finite) else math.nan,
        f"{name}_std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
        f"{name}_low": low,
        f"{name}_high": high,
    }


def _diverged(failure: Any) -> bool:
    return isinstance(failure, str) and failure.strip().lower().startswith("diverged")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
