"""Every plot on the records of tiny real campaigns (two seeds, one seed, failures, Dropout not
searched) and on frames where there is nothing to draw; figures are checked on what they hold."""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from reports.compare import compare_families
from reports.diagnostics import diagnose_runs, summarize_configurations
from reports.plots import (
    Plot,
    plot_best_so_far,
    plot_budget_curve,
    plot_family_distributions,
    plot_gap_vs_strength,
    plot_heatmaps,
    plot_importance,
    plot_learning_curves,
    plot_objective_vs_params,
    report_plots,
)
from reports.search import best_so_far

OBJECTIVE, DIRECTION = "val_accuracy", "maximize"
KEYS = [
    "learning_curves",
    "family_learning_curves",
    "family_distributions",
    "gap_vs_strength",
    "heatmaps",
    "objective_vs_params",
    "best_so_far",
    "importance",
    "budget_curve",
]
SEARCHED = {
    "grid": ["dropout", "l2"],
    "one_seed": ["dropout", "l2"],
    "failed": ["dropout", "l2"],
    "no_dropout": ["l2"],
}


@pytest.fixture(scope="module", params=list(SEARCHED))
def case(request) -> SimpleNamespace:
    """A campaign's frames with their analysis and every report plot."""
    trials, epochs = request.getfixturevalue(f"{request.param}_records")
    diagnosis = diagnose_runs(trials, epochs, objective=OBJECTIVE)
    configurations = summarize_configurations(diagnosis, direction=DIRECTION)
    families = compare_families(diagnosis, direction=DIRECTION)
    before = dict(matplotlib.rcParams)
    plots = report_plots(
        trials,
        epochs,
        objective=OBJECTIVE,
        direction=DIRECTION,
        searched=SEARCHED[request.param],
        diagnosis=diagnosis,
        configurations=configurations,
        families=families,
    )
    return SimpleNamespace(
        name=request.param,
        trials=trials,
        epochs=epochs,
        diagnosis=diagnosis,
        configurations=configurations,
        families=families,
        plots={p.key: p for p in plots},
        order=[p.key for p in plots],
        rc_changed=dict(matplotlib.rcParams) != before,
    )


def png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def visible_axes(plot: Plot):
    return [ax for ax in plot.figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


# ------------------------------------------------------------------- the report's plots, per case

# (case, key): whether a figure is drawn, and a phrase its notes must hold ("" for none)
EXPECTED = {
    ("grid", "importance"): (False, "too few complete configurations"),
    ("one_seed", "learning_curves"): (True, "one seed: no bands over seeds"),
    ("one_seed", "family_learning_curves"): (True, "one seed: no bands over seeds"),
    ("one_seed", "gap_vs_strength"): (True, "one seed: no bands over seeds"),
    ("one_seed", "family_distributions"): (True, "one seed: the boxes span strengths"),
    ("one_seed", "importance"): (False, "too few complete configurations"),
    ("failed", "objective_vs_params"): (True, "2 failed runs marked x at the bottom edge"),
    ("failed", "best_so_far"): (True, "2 configurations did not complete on every seed"),
    ("failed", "family_distributions"): (True, "dropout+l2, l2: no complete run"),
    ("failed", "importance"): (False, "too few complete configurations"),
    ("no_dropout", "heatmaps"): (False, "dropout was not searched: no Dropout x L2 heatmap"),
    ("no_dropout", "importance"): (False, "too few complete configurations"),
}


@pytest.mark.parametrize("key", KEYS)
def test_each_report_plot_draws_or_says_why_not(case, key):
    plot = case.plots[key]
    assert isinstance(plot, Plot) and plot.key == key and plot.title
    assert isinstance(plot.notes, tuple) and all(isinstance(n, str) and n for n in plot.notes)
    drawn, phrase = EXPECTED.get((case.name, key), (True, ""))
    assert (plot.figure is not None) == drawn, plot.notes
    if phrase:
        assert any(phrase in note for note in plot.notes), plot.notes
    if plot.figure is None:
        assert plot.notes  # it says why
    else:
        assert png(plot.figure).startswith(b"\x89PNG")
        width, height = plot.figure.get_size_inches()
        assert width <= 11 and plot.figure.dpi == 100
        assert all(ax.get_title() for ax in visible_axes(plot))


def test_report_plots_come_in_report_order_and_leave_no_global_state(case):
    import matplotlib.pyplot as plt

    assert case.order == KEYS
    assert plt.get_fignums() == []  # no pyplot figure was made
    assert not case.rc_changed  # the seaborn theme was applied locally only


def test_the_figures_drawn_before_the_importance_are_handed_over_before_it_is_asked(
    grid_records,
):
    trials, epochs = grid_records
    events = []
    empty = pd.DataFrame({"param": pd.Series(dtype=str), "importance": pd.Series(dtype=float)})
    plots = report_plots(
        trials,
        epochs,
        objective=OBJECTIVE,
        direction=DIRECTION,
        searched=SEARCHED["grid"],
        importance=lambda: events.append("importance asked") or empty,
        before_importance=lambda drawn: events.append([p.key for p in drawn]),
    )
    assert events == [[k for k in KEYS if k != "importance"], "importance asked"]
    assert [p.key for p in plots] == KEYS


@pytest.mark.parametrize("case", ["grid", "failed", "no_dropout"], indirect=True)
def test_two_seeds_give_no_single_seed_notes(case):
    for plot in case.plots.values():
        assert not any("one seed" in note for note in plot.notes), plot.key


def test_learning_curves_draw_train_and_validation_of_the_best_configurations(case):
    plot = case.plots["learning_curves"]
    axes = visible_axes(plot)
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy"]
    ranked = case.configurations.dropna(subset=["rank"]).head(3)
    labels = [t.get_text() for t in plot.figure.legends[0].get_texts()]
    for trial in ranked["trial"]:
        assert any(label.endswith(f"trial {trial}") for label in labels), labels
    assert {"train", "validation"} <= set(labels)
    # a line per configuration and split in each panel, over the epochs that were run
    for ax in axes:
        curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 0]
        assert len(curves) == 2 * len(ranked)
        assert {tuple(line.get_xdata()) for line in curves} == {(1.0, 2.0)}


def test_family_learning_curves_show_each_family_best(case):
    plot = case.plots["family_learning_curves"]
    labels = [t.get_text() for t in plot.figure.legends[0].get_texts()]
    for family, trial in zip(case.families["family"], case.families["best_trial"], strict=True):
        if pd.notna(trial):
            assert f"{family} (trial {int(trial)})" in labels


def test_gap_vs_strength_panels_and_scales(case):
    plot = case.plots["gap_vs_strength"]
    axes = {ax.get_xlabel(): ax for ax in visible_axes(plot)}
    expected = {"l2"} if case.name in ("no_dropout", "failed") else {"dropout", "l2"}
    # failed: every l2 > 0 run diverged, so only dropout has a complete, regularized run
    if case.name == "failed":
        expected = {"dropout"}
    assert set(axes) == expected
    if "l2" in axes:
        assert axes["l2"].get_xscale() == "log"
    if "dropout" in axes:
        assert axes["dropout"].get_xscale() == "linear"
    for ax in axes.values():  # the unregularized baseline is drawn as a dashed line
        assert "none (baseline)" in [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("case", ["grid", "failed"], indirect=True)  # a Dropout x L2 grid
def test_heatmap_cells_are_the_configurations_means(case):
    plot = case.plots["heatmaps"]
    objective_ax, gap_ax = visible_axes(plot)
    shown = sorted(float(t.get_text()) for t in objective_ax.texts)
    complete = case.configurations["objective_mean"].dropna()
    assert shown == pytest.approx(sorted(complete), abs=5e-4)  # ".3g" annotations
    assert len(gap_ax.texts) == case.configurations["gap_mean"].notna().sum()


def test_objective_vs_params_marks_failed_runs(case):
    plot = case.plots["objective_vs_params"]
    axes = visible_axes(plot)
    assert [ax.get_xlabel() for ax in axes] == SEARCHED[case.name]
    n_failed = int((case.trials["status"] == "FAILED").sum())
    for ax in axes:
        failed = [c for c in ax.collections if c.get_label() == "failed"]
        assert sum(len(c.get_offsets()) for c in failed) == n_failed
        low, high = ax.get_xlim()  # inside the panel, not cut off
        assert all(low <= x <= high for c in failed for x in np.asarray(c.get_offsets())[:, 0])
        points = sum(len(c.get_offsets()) for c in ax.collections if c.get_label() == "runs")
        assert points == int((case.trials["status"] == "COMPLETE").sum())


def test_best_so_far_draws_the_frame(case):
    frame = best_so_far(case.trials, objective=OBJECTIVE, direction=DIRECTION)
    ax = visible_axes(case.plots["best_so_far"])[0]
    step = next(line for line in ax.get_lines() if line.get_label() == "best")
    np.testing.assert_allclose(step.get_ydata(), frame["best_so_far"])


# --------------------------------------------------------------- nothing, or too little, to draw


def test_plots_of_empty_frames_say_why_they_are_empty(grid_records):
    trials, epochs = grid_records
    diagnosis = diagnose_runs(trials.iloc[:0], epochs.iloc[:0], objective=OBJECTIVE)
    configurations = summarize_configurations(diagnosis, direction=DIRECTION)
    empty = pd.DataFrame()
    plots = [
        plot_learning_curves(epochs.iloc[:0], {"best": 1}),
        plot_learning_curves(epochs, {}),
        plot_gap_vs_strength(diagnosis),
        plot_heatmaps(configurations),
        plot_family_distributions(diagnosis),
        plot_objective_vs_params(trials.iloc[:0], searched=["dropout"], objective=OBJECTIVE),
        plot_objective_vs_params(empty, searched=[], objective=OBJECTIVE),
        plot_best_so_far(best_so_far(trials.iloc[:0], objective=OBJECTIVE, direction=DIRECTION)),
        plot_importance(pd.DataFrame(columns=["param", "importance"])),
        plot_budget_curve(pd.DataFrame(columns=["budget", "median", "low", "high"])),
    ]
    for plot in plots:
        assert plot.figure is None and plot.notes, plot.key
    assert "best: no epochs recorded for trial 1" in plots[0].notes


def test_report_plots_of_an_empty_campaign_draw_nothing_and_never_raise(grid_records):
    trials, epochs = grid_records
    plots = report_plots(
        trials.iloc[:0], epochs.iloc[:0], objective=OBJECTIVE, direction=DIRECTION, searched=[]
    )
    assert [p.key for p in plots] == KEYS
    assert all(p.figure is None and p.notes for p in plots)


def test_a_searched_parameter_without_values_is_named(grid_records):
    trials, _ = grid_records
    plot = plot_objective_vs_params(trials, searched=["dropout", "units_2"], objective=OBJECTIVE)
    assert plot.figure is not None
    assert "units_2: no recorded values" in plot.notes
    assert [ax.get_xlabel() for ax in visible_axes(plot)] == ["dropout"]


def test_a_missing_trial_is_named_and_the_others_drawn(grid_records):
    _, epochs = grid_records
    plot = plot_learning_curves(epochs, {"best": 1, "ghost": 999})
    assert plot.figure is not None
    assert "ghost: no epochs recorded for trial 999" in plot.notes


def test_categorical_parameters_get_one_position_per_level(failed_records):
    trials, _ = failed_records
    frame = trials.assign(param_act=np.where(trials["param_dropout"] > 0, "tanh", "relu"))
    plot = plot_objective_vs_params(frame, searched=["act"], objective=OBJECTIVE)
    ax = visible_axes(plot)[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu", "tanh"]


def test_strengths_spanning_decades_get_a_log_scale_that_reaches_zero(grid_records):
    trials, _ = grid_records
    frame = trials.assign(param_l2=np.resize([0.0, 1e-4, 1e-3], len(trials)))
    plot = plot_objective_vs_params(frame, searched=["l2", "dropout"], objective=OBJECTIVE)
    assert [ax.get_xscale() for ax in visible_axes(plot)] == ["symlog", "linear"]
    positive = frame.assign(param_l2=np.resize([1e-5, 1e-4, 1e-3], len(trials)))
    plot = plot_objective_vs_params(positive, searched=["l2"], objective=OBJECTIVE)
    assert visible_axes(plot)[0].get_xscale() == "log"


def test_a_forced_log_scale_is_used(grid_records):
    trials, _ = grid_records
    frame = trials.assign(param_lr=np.where(trials["param_dropout"] > 0, 1e-3, 2e-3))
    plot = plot_objective_vs_params(frame, searched=["lr"], objective=OBJECTIVE, log={"lr"})
    assert visible_axes(plot)[0].get_xscale() == "log"
    plain = plot_objective_vs_params(frame, searched=["lr"], objective=OBJECTIVE)
    assert visible_axes(plain)[0].get_xscale() == "linear"  # a factor of 2: linear


@pytest.mark.slow
def test_reports_import_no_engine_and_no_keras():
    code = (
        "import sys, reports.plots, reports.search, reports.html\n"
        "bad = [m for m in ('keras', 'tensorflow', 'optuna', 'keras_tuner') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_heatmaps_of_configurations_none_complete_are_not_drawn():
    configurations = pd.DataFrame(
        {
            "trial": [1, 2, 3, 4],
            "param_dropout": [0.0, 0.0, 0.5, 0.5],
            "param_l2": [0.0, 1e-3, 0.0, 1e-3],
            "objective_mean": np.nan,
            "gap_mean": np.nan,
            "rank": np.nan,
        }
    )
    plot = plot_heatmaps(configurations)
    assert plot.figure is None and "no configuration complete on every seed" in plot.notes[0]
    half = configurations.assign(objective_mean=[0.9, np.nan, 0.8, np.nan], rank=[1, None, 2, None])
    plot = plot_heatmaps(half)
    assert plot.figure is not None
    assert "2 blank cells: not tried, or not complete on every seed" in plot.notes
    assert "gap (val_loss − train_loss): no values to draw" in plot.notes
    assert png(plot.figure).startswith(b"\x89PNG")


def test_heatmaps_leave_out_l1_and_keep_the_best_configuration_of_a_cell():
    configurations = pd.DataFrame(
        {
            "trial": [1, 2, 3, 4, 5],
            "param_dropout": [0.0, 0.0, 0.5, 0.5, 0.5],
            "param_regularizer": ["none", "l2", "l2", "l2", "l1"],
            "param_l1": [np.nan, np.nan, np.nan, np.nan, 1e-4],
            "param_l2": [np.nan, 1e-3, 1e-3, 1e-3, np.nan],
            "param_units": [16, 16, 16, 32, 16],
            "objective_mean": [0.5, 0.6, 0.7, 0.8, 0.99],
            "gap_mean": [0.1, 0.2, 0.3, 0.4, 0.5],
            "rank": [5, 4, 3, 2, 1],
        }
    )
    plot = plot_heatmaps(configurations)
    assert "1 configurations using L1 left out" in plot.notes
    assert "cells with several configurations show the best-ranked one" in plot.notes
    objective_ax = visible_axes(plot)[0]
    assert sorted(t.get_text() for t in objective_ax.texts) == ["0.5", "0.6", "0.8"]
