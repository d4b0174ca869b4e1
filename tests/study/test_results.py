"""The one score (study.results): a run's best epoch, a configuration's objective, the better."""

import math

import pytest

from study.results import (
    FINISHED,
    Status,
    best_index,
    check_direction,
    configuration_objective,
    direction_sign,
    is_better,
)

NAN, INF = math.nan, math.inf
DONE = Status.COMPLETE


def test_statuses_are_the_stored_strings():
    assert [s.value for s in Status] == ["COMPLETE", "FAILED", "PRUNED", "RUNNING"]
    assert Status.COMPLETE == "COMPLETE" and f"{Status.FAILED}" == "FAILED"
    assert "PRUNED" in FINISHED and "RUNNING" not in FINISHED  # plain strings from the store


@pytest.mark.parametrize(
    ("values", "direction", "expected"),
    [
        ([0.5, 0.9, 0.9, 0.8], "maximize", 1),  # the first on ties
        ([0.5, 0.2, 0.2, 0.8], "minimize", 1),
        ([NAN, 0.3, INF, 0.2], "minimize", 3),  # NaN and inf are never the best
        ([NAN, 0.3, INF, 0.2], "maximize", 1),
        ([NAN, INF, -INF], "maximize", None),
        ([], "minimize", None),
    ],
)
def test_best_index_is_the_first_best_finite_value(values, direction, expected):
    assert best_index(values, direction) == expected


@pytest.mark.parametrize(
    ("a", "b", "direction", "expected"),
    [
        (0.9, 0.8, "maximize", True),
        (0.9, 0.8, "minimize", False),
        (0.8, 0.8, "maximize", False),  # equal is not better: the earlier one stays
        (NAN, 0.1, "maximize", False),  # NaN is never better ...
        (NAN, NAN, "minimize", False),
        (0.1, NAN, "minimize", True),  # ... and anything beats it
    ],
)
def test_is_better(a, b, direction, expected):
    assert is_better(a, b, direction) is expected


@pytest.mark.parametrize(
    ("statuses", "objectives", "expected"),
    [
        ([DONE, DONE, DONE], [0.1, 0.2, 0.4], 0.7 / 3),
        (["COMPLETE"], [0.7], 0.7),
        ([DONE, Status.FAILED, DONE], [0.9, 0.99, 0.9], NAN),  # a failed seed
        ([DONE, Status.PRUNED], [0.9, 0.9], NAN),
        ([DONE, DONE], [0.9, NAN], NAN),  # a seed with no finite objective
        ([DONE, DONE], [0.9, INF], NAN),
        ([], [], NAN),
    ],
)
def test_configuration_objective_needs_every_seed_complete_and_finite(
    statuses, objectives, expected
):
    score = configuration_objective(statuses, objectives)
    assert score == pytest.approx(expected, nan_ok=True)


def test_configuration_objective_is_the_same_in_any_seed_order():
    # Summed in order, 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last bit: a tie that
    # an order-dependent mean would break by the order the seeds were recorded in.
    assert (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1
    forward = configuration_objective([DONE] * 3, [0.1, 0.2, 0.3])
    assert forward == configuration_objective([DONE] * 3, [0.3, 0.2, 0.1])
    assert forward == pytest.approx(0.2)


def test_configuration_objective_refuses_unpaired_inputs():
    with pytest.raises(ValueError, match="2 statuses for 1 objectives"):
        configuration_objective([DONE, DONE], [0.5])


def test_one_direction_check():
    assert check_direction("minimize") == "minimize"
    assert direction_sign("maximize") == 1.0 and direction_sign("minimize") == -1.0
    for call in (check_direction, lambda d: best_index([1.0], d), lambda d: is_better(1, 0, d)):
        with pytest.raises(ValueError, match="direction: 'max' is not one of maximize, minimize"):
            call("max")
