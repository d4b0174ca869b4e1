"""A fair comparison of regularizer families, the tuning playbook's way.

Whether a family (Dropout, L1, L2, ...) is present is the scientific question; its strength is a
nuisance to tune away first. So within each family the configuration with the best validation
objective mean over seeds wins (among configurations complete on every seed), and families are
then compared over that configuration's seeds against the unregularized baseline.

Seeds are not paired across configurations (each run's initialization derives from its
configuration too), so the tests are unpaired: Welch's t-test or the Mann-Whitney U test, both
two-sided, Holm-corrected across the non-baseline families. Hedges' g is the effect size.
Differences and effect sizes are signed so that > 0 means better than the baseline, whether the
objective is maximized or minimized. With 3 seeds a side the Mann-Whitney test cannot reach
p < 0.1 (exact), so it never reports significance there.

The best strength of each family is chosen on the same validation scores that are then compared:
the winner's score is optimistic, more so for families that tried more strengths
(`n_configurations`). Confirm on the test split or on fresh seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from reports._format import format_number
from reports.diagnostics import bootstrap_interval
from search_spaces.keys import regularizer_of
from study.records import rank_by_objective
from study.results import best_index, check_direction, configuration_objective, direction_sign

FAMILIES = (
    "none",
    "dropout",
    "l1",
    "l2",
    "l1l2",
    "dropout+l1",
    "dropout+l2",
    "dropout+l1l2",
)
TESTS = ("welch", "mann-whitney")
_NO_DIFFERENCE = "no difference beyond seed noise"
PENALTIES = ("l1", "l2")

__all__ = [
    "FAMILIES",
    "TESTS",
    "assign_families",
    "pool_diagnoses",
    "compare_families",
    "describe_comparison",
    "family_of",
    "holm",
    "hedges_g",
    "strength_of",
]

_COLUMNS = [
    "family",
    "best_trial",
    "strength",
    "n_configurations",
    "n_seeds",
    "objective_mean",
    "objective_std",
    "objective_low",
    "objective_high",
    "gap_mean",
    "gap_low",
    "gap_high",
    "difference",
    "effect_size",
    "p_value",
    "p_holm",
    "significant",
    "rank",
    "is_baseline",
    "note",
]


def family_of(params: Mapping[str, Any]) -> str:
    """The regularizer family of one configuration's values (keys without `param_`).

    Any Dropout rate > 0 (a key whose KeySpec is a Dropout rate: `dropout`, `input_dropout`,
    `block_dropout`) counts as Dropout. The kernel penalty is `regularizer` when set ("none",
    "l1", "l2", "l1l2"), less any component whose strength is explicitly 0; unset, it is inferred
    from which of `l1`, `l2` are > 0. A missing or NaN strength is absent when inferring and
    present under a named family.
    """
    dropout = any(_positive(v) for k, v in params.items() if _is_dropout_key(k))
    named = params.get("regularizer")
    if _is_set(named):
        named = str(named).lower()
        if named not in ("none", *PENALTIES, "l1l2"):
            raise ValueError(f"regularizer: {named!r} is not one of none, l1, l2, l1l2")
        penalties = [p for p in PENALTIES if p in named and not _zero(params.get(p))]
    else:
        penalties = [p for p in PENALTIES if _positive(params.get(p))]
    penalty = "".join(penalties)
    if dropout:
        return f"dropout+{penalty}" if penalty else "dropout"
    return penalty or "none"


def strength_of(params: Mapping[str, Any]) -> str:
    """The configuration's regularization values as text, e.g. "dropout=0.25, l2=0.001"."""
    family = family_of(params)
    parts = [
        f"{k}={format_number(v)}" for k, v in params.items() if _is_dropout_key(k) and _positive(v)
    ]
    for penalty in PENALTIES:
        if penalty in family.split("+")[-1]:
            value = params.get(penalty)
            parts.append(f"{penalty}={format_number(value)}" if _is_set(value) else penalty)
    return ", ".join(parts) or "none"


def assign_families(frame: pd.DataFrame) -> pd.Series:
    """The family of each row of a trials or diagnosis frame, from its `param_*` columns."""
    params = [c for c in frame.columns if c.startswith("param_")]
    values = frame[params].rename(columns=lambda c: c.removeprefix("param_"))
    families = [family_of(row) for row in values.to_dict("records")]
    return pd.Series(families, index=frame.index, name="family", dtype=object)


def compare_families(
    diagnosis: pd.DataFrame,
    *,
    direction: str,
    baseline: str = "none",
    test: str = "welch",
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    min_seeds: int = 3,
) -> pd.DataFrame:
    """One row per family present: its best configuration (best validation objective mean among
    those complete on every seed), that configuration's objective and gap over seeds with
    bootstrap intervals, and an unpaired test against `baseline`'s best configuration.

    `diagnosis` is `reports.diagnostics.diagnose_runs`'s frame (`objective`, `gap_loss_best`,
    `status`, `param_*`). Sorted by rank (1 = best); families with no configuration complete on
    every seed come last with NaN figures and a note.
    """
    check_direction(direction)
    if test not in TESTS:
        raise ValueError(f"test: {test!r} is not one of {', '.join(TESTS)}")
    sign = direction_sign(direction)
    frame = diagnosis.assign(family=assign_families(diagnosis))
    rows = []
    for family, runs in frame.groupby("family", sort=False):
        rows.append(
            _family_row(
                family, runs, direction=direction, confidence=confidence, n_boot=n_boot, seed=seed
            )
        )
    if not rows:
        return _with_attrs(pd.DataFrame(columns=_COLUMNS), direction, baseline, alpha, min_seeds)
    table = pd.DataFrame(rows)
    table["is_baseline"] = table["family"] == baseline
    base = table[table["is_baseline"]]
    base_values = base["_values"].iloc[0] if len(base) else np.array([])
    for i in table.index[~table["is_baseline"]]:
        values = table.at[i, "_values"]
        table.loc[i, ["difference", "effect_size", "p_value"]] = _versus(
            values, base_values, sign=sign, test=test
        )
    table["p_holm"] = holm(table["p_value"].to_numpy(dtype=float))
    enough = table["n_seeds"].ge(min_seeds) & (len(base_values) >= min_seeds)
    table["significant"] = enough & (table["p_holm"] < alpha) & ~table["is_baseline"]
    table["note"] = [
        _note(row, n_base=len(base_values), has_base=len(base) > 0, min_seeds=min_seeds)
        for row in table.to_dict("records")
    ]
    table["rank"] = rank_by_objective(table["objective_mean"], direction)
    table = table.sort_values(["rank", "family"], na_position="last", kind="stable")
    table = table[_COLUMNS].reset_index(drop=True)
    return _with_attrs(table, direction, baseline, alpha, min_seeds, confidence=confidence)


def _family_row(
    family: str, runs: pd.DataFrame, *, direction: str, confidence: float, n_boot: int, seed: int
) -> dict[str, Any]:
    """The family's best configuration and its figures over seeds (`_values`: the objectives)."""
    row: dict[str, Any] = dict.fromkeys(_COLUMNS, math.nan)
    row |= {"family": family, "strength": "", "n_seeds": 0, "_values": np.array([])}
    scores = {
        trial: configuration_objective(seeds["status"], seeds["objective"])
        for trial, seeds in runs.groupby("trial", sort=True)
    }
    row["n_configurations"] = len(scores)
    best_position = best_index(scores.values(), direction)  # the first trial on ties
    if best_position is None:
        return row
    best = list(scores)[best_position]
    chosen = runs[runs["trial"] == best]
    values = chosen["objective"].to_numpy(dtype=float)
    gaps = chosen["gap_loss_best"].to_numpy(dtype=float)
    params = {c.removeprefix("param_"): chosen[c].iloc[0] for c in chosen if c.startswith("param_")}
    interval = {"confidence": confidence, "n_boot": n_boot, "seed": seed}
    row |= {"best_trial": best, "strength": strength_of(params), "n_seeds": len(values)}
    row["objective_mean"] = scores[best]
    row["objective_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    row["objective_low"], row["objective_high"] = bootstrap_interval(values, **interval)
    finite_gaps = gaps[np.isfinite(gaps)]
    row["gap_mean"] = float(finite_gaps.mean()) if finite_gaps.size else math.nan
    row["gap_low"], row["gap_high"] = bootstrap_interval(finite_gaps, **interval)
    row["_values"] = values
    return row


def _versus(
    values: np.ndarray, base: np.ndarray, *, sign: float, test: str
) -> tuple[float, float, float]:
    """(difference, Hedges' g, two-sided p) of `values` against `base`, > 0 meaning better."""
    if len(values) == 0 or len(base) == 0:
        return math.nan, math.nan, math.nan
    difference = sign * (values.mean() - base.mean())
    effect = sign * hedges_g(values, base)
    p = math.nan
    if len(values) >= 2 and len(base) >= 2:
        with warnings.catch_warnings():  # near-identical samples: scipy warns, p stays usable
            warnings.simplefilter("ignore", RuntimeWarning)
            if test == "mann-whitney":
                from scipy.stats import mannwhitneyu  # a second to import: only when asked

                p = float(mannwhitneyu(values, base, alternative="two-sided").pvalue)
            elif np.ptp(values) > 0 or np.ptp(base) > 0:
                p = welch_p(values, base)
    return float(difference), float(effect), p


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of Welch's t-test, as `scipy.stats.ttest_ind(a, b, equal_var=False)` computes
    it (Welch-Satterthwaite degrees of freedom, Student's t distribution), without importing SciPy
    (`scipy.stats` takes a second, `scipy.special` a third); not both samples constant."""
    spread_a, spread_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (spread_a + spread_b) ** 2 / (spread_a**2 / (len(a) - 1) + spread_b**2 / (len(b) - 1))
    t = (a.mean() - b.mean()) / math.sqrt(spread_a + spread_b)
    return student_t_two_sided(float(t), float(df))


def student_t_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom (`2 * scipy.special.stdtr(df,
    -abs(t))` to 1e-10): the regularized incomplete beta I_x(df/2, 1/2), x = df / (df + t^2)."""
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function I_x(a, b), y = 1 - x (given, to keep its digits),
    by its continued fraction (modified Lentz) on the side of x where it converges fast
    (Numerical Recipes, 6.4)."""
    if x <= 0.0 or y <= 0.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    log_front += a * math.log(x) + b * math.log(y)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 1000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return fraction


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g of mean(a) - mean(b): Cohen's d on the pooled standard deviation, small-sample
    corrected; NaN under 2 values a side, +-inf when both sides are constant and differ."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return math.nan
    pooled = math.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2))
    difference = a.mean() - b.mean()
    if pooled == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    correction = 1 - 3 / (4 * (n_a + n_b) - 9)
    return float(correction * difference / pooled)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of the finite entries (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        adjusted[i] = running
    return adjusted


def _note(row: dict[str, Any], *, n_base: int, has_base: bool, min_seeds: int) -> str:
    """Plain words on what the row's test can and cannot say."""
    if not row["n_seeds"]:
        return "no configuration completed every seed"
    if row["is_baseline"]:
        return "baseline"
    if not has_base:
        return "no baseline in this campaign"
    if n_base == 0:
        return "the baseline has no configuration complete on every seed"
    n = row["n_seeds"]
    if n < min_seeds or n_base < min_seeds:
        seeds = f"{n} per family" if n == n_base else f"{n} here, {n_base} in the baseline"
        return f"too few seeds to tell ({seeds}; need {min_seeds})"
    if not np.isfinite(row["p_value"]):
        return "cannot test: no spread over seeds"
    if row["significant"]:
        better = "better" if row["difference"] > 0 else "worse"
        return f"{better} than the baseline beyond seed noise"
    return _NO_DIFFERENCE


def pool_diagnoses(diagnoses: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Several campaigns' diagnoses as one frame, trials renumbered so they stay unique."""
    frames, offset = [], 0
    for diagnosis in diagnoses:
        frame = diagnosis.assign(trial=diagnosis["trial"] + offset)
        frames.append(frame)
        offset = int(frame["trial"].max()) + 1 if len(frame) else offset
    return pd.concat(frames, ignore_index=True)


def describe_comparison(table: pd.DataFrame) -> list[str]:
    """A few plain sentences on `compare_families`'s table for a report's summary.

    A family is called best only when it beats the baseline beyond seed noise; equal means are
    called a tie, and a difference within seed noise is said to be one."""
    ranked = table[table["rank"].notna()] if "rank" in table else table.iloc[0:0]
    if ranked.empty:
        return ["No regularizer family has a configuration complete on every seed to compare."]
    confidence = table.attrs.get("confidence", 0.95)
    min_seeds = table.attrs.get("min_seeds", 3)
    baseline = table.attrs.get("baseline", "none")
    base = ranked[ranked["is_baseline"]]
    families = ranked[~ranked["is_baseline"]]
    if base.empty:
        sentences = _without_baseline(table, ranked, baseline, confidence)
    elif families.empty:
        sentences = [f"Only the baseline ({baseline}) ran: there is no regularizer to compare."]
    else:
        sentences = _against_baseline(families, base.iloc[0], baseline, confidence)
    better, worse = _significant(families, better=True), _significant(families, better=False)
    if better and better != [families.iloc[0]["family"]]:  # more than the best family named
        sentences.append(f"Better than the baseline beyond seed noise: {', '.join(better)}.")
    if worse:
        sentences.append(f"Worse than the baseline beyond seed noise: {', '.join(worse)}.")
    few = table["n_seeds"].between(1, min_seeds - 1)
    if few.any():
        n = int(table.loc[few, "n_seeds"].min())
        sentences.append(
            f"Warning: seeds are too few to tell families apart ({n} for some families; at "
            f"least {min_seeds} are needed): run more seeds before drawing conclusions."
        )
    sentences.append(
        "Each family's strength was picked on the same validation scores compared here, which "
        "flatters every winner and most the families that tried more strengths; confirm on the "
        "test split or on fresh seeds."
    )
    return sentences


def _without_baseline(
    table: pd.DataFrame, ranked: pd.DataFrame, baseline: str, confidence: float
) -> list[str]:
    top = ranked.iloc[0]
    if (table["family"] == baseline).any():
        why = f"The baseline ({baseline}) has no configuration complete on every seed"
    else:
        why = f"This campaign has no {baseline!r} baseline"
    return [
        f"{why}, so no family was tested against it.",
        f"The highest on average is {_named(top)}: objective {_figure(top, confidence)}.",
    ]


def _against_baseline(
    families: pd.DataFrame, base: pd.Series, baseline: str, confidence: float
) -> list[str]:
    """What the family with the highest mean (sorted first) did against the baseline."""
    top = families.iloc[0]
    versus = f"the baseline ({baseline}, objective {format_number(base['objective_mean'])})"
    if _tied(top["objective_mean"], base["objective_mean"]):
        tied = families[[_tied(m, base["objective_mean"]) for m in families["objective_mean"]]]
        names = _listed([_named(row) for _, row in tied.iterrows()])
        verb = "ties" if len(tied) == 1 else "tie"
        return [
            f"No family beats {versus}: {names} {verb} with it "
            f"(equal means over {int(top['n_seeds'])} seeds)."
        ]
    difference = top["difference"]
    if difference < 0:
        return [
            f"No regularizer family beats {versus} on average: the closest, {_named(top)}, "
            f"is {format_number(-difference)} worse "
            f"(objective {format_number(top['objective_mean'])})."
        ]
    effect = format_number(top["effect_size"])
    margin = f"by {format_number(difference)} (Hedges' g {effect}{_p(top)})"
    if not top["significant"]:
        why = "within seed noise: a tie" if top["note"] == _NO_DIFFERENCE else top["note"]
        return [
            f"No family beats {versus} beyond seed noise: the highest on average, "
            f"{_named(top)}, is above it {margin}, {why}."
        ]
    leaders = families[families["rank"] == top["rank"]]
    if len(leaders) > 1:
        names = _listed([_named(row) for _, row in leaders.iterrows()])
        best, subject = f"The best families, tied, are {names}", "They beat"
    else:
        best, subject = f"The best family is {_named(top)}", "It beats"
    return [
        f"{best}: objective {_figure(top, confidence)}.",
        f"{subject} {versus} {margin}: more than seed noise.",
    ]


def _significant(families: pd.DataFrame, *, better: bool) -> list[str]:
    hits = families[families["significant"].astype(bool)]
    return list(hits.loc[(hits["difference"] > 0) == better, "family"])


def _tied(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _named(row: pd.Series) -> str:
    return f"{row['family']} ({row['strength']})"


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _figure(row: pd.Series, confidence: float) -> str:
    return (
        f"{format_number(row['objective_mean'])} on average over {int(row['n_seeds'])} seeds"
        + _interval(row, confidence)
    )


def _p(row: pd.Series) -> str:
    p_holm = row["p_holm"]
    return f", Holm-corrected p = {format_number(p_holm)}" if np.isfinite(p_holm) else ""


def _interval(row: pd.Series, confidence: float) -> str:
    if not (np.isfinite(row["objective_low"]) and np.isfinite(row["objective_high"])):
        return ""
    low, high = format_number(row["objective_low"]), format_number(row["objective_high"])
    return f", {confidence:.0%} interval {low} to {high}"


def _with_attrs(
    table: pd.DataFrame,
    direction: str,
    baseline: str,
    alpha: float,
    min_seeds: int,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    table.attrs.update(
        direction=direction,
        baseline=baseline,
        alpha=alpha,
        min_seeds=min_seeds,
        confidence=confidence,
    )
    return table


def _is_dropout_key(key: str) -> bool:
    """A Dropout rate, by its KeySpec: `dropout`, `input_dropout`, `block_dropout`."""
    return regularizer_of(key) == "dropout"


def _is_set(value: Any) -> bool:
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: set
        return True


def _positive(value: Any) -> bool:
    if isinstance(value, bool | np.bool_) or not _is_set(value):
        return False
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def _zero(value: Any) -> bool:
    try:
        return _is_set(value) and float(value) <= 0
    except (TypeError, ValueError):
        return False
