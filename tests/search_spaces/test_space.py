import json

import pytest

from search_spaces import (
    Bool,
    Choice,
    Condition,
    Fixed,
    Float,
    Int,
    SearchSpace,
    configuration_key,
    exploratory_space,
    regularization_grid,
)


def test_grid_counts_and_orders_like_product():
    space = SearchSpace({"dropout": Choice((0.0, 0.5)), "l2": Choice((0.0, 1e-4, 1e-3))})
    grid = list(space.grid())
    assert space.grid_size() == 6
    assert grid[:3] == [
        {"dropout": 0.0, "l2": 0.0},
        {"dropout": 0.0, "l2": 1e-4},
        {"dropout": 0.0, "l2": 1e-3},
    ]
    assert grid[3] == {"dropout": 0.5, "l2": 0.0}
    assert list(space.grid()) == grid  # deterministic


def test_conditional_parameter_absent_when_inactive():
    space = SearchSpace(
        {
            "regularizer": Choice(("none", "l1", "l2")),
            "l1": Choice((1e-5, 1e-4), condition=Condition("regularizer", ("l1",))),
            "l2": Choice((1e-4,), condition=Condition("regularizer", ("l2",))),
        }
    )
    grid = list(space.grid())
    assert grid == [
        {"regularizer": "none"},
        {"regularizer": "l1", "l1": 1e-5},
        {"regularizer": "l1", "l1": 1e-4},
        {"regularizer": "l2", "l2": 1e-4},
    ]
    for seed in range(20):
        sample = space.sample(seed)
        assert ("l1" in sample) == (sample["regularizer"] == "l1")


def test_condition_must_name_an_earlier_parameter():
    with pytest.raises(ValueError, match="listed before it"):
        SearchSpace({"l1": Choice((1.0,), condition=Condition("regularizer", ("l1",)))})


@pytest.mark.parametrize(
    "param, expected",
    [
        (Float(0.0, 1.0, step=0.25), (0.0, 0.25, 0.5, 0.75, 1.0)),
        (Int(32, 128, step=32), (32, 64, 96, 128)),
        (Bool(), (False, True)),
        (Fixed("adam"), ("adam",)),
    ],
)
def test_grid_values(param, expected):
    assert param.grid_values() == expected


def test_float_without_step_has_no_grid():
    with pytest.raises(ValueError, match="no grid"):
        SearchSpace({"lr": Float(1e-4, 1e-2, log=True)}).grid_size()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Float(1.0, 0.0), "greater than high"),
        (lambda: Float(0.0, 1.0, log=True), "log scale needs low > 0"),
        (lambda: Int(1, 10, step=0), "step must be >= 1"),
        (lambda: Choice(()), "at least one value"),
        (lambda: Choice((1, 1)), "twice"),
    ],
)
def test_invalid_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sampling_is_seeded_and_within_bounds():
    space = SearchSpace(
        {
            "lr": Float(1e-4, 1e-2, log=True),
            "units": Int(32, 256, step=32),
            "act": Choice(("relu", "tanh")),
        }
    )
    assert space.sample(3) == space.sample(3)
    samples = [space.sample(s) for s in range(200)]
    assert len({s["lr"] for s in samples}) == 200
    assert all(1e-4 <= s["lr"] <= 1e-2 and s["units"] % 32 == 0 for s in samples)
    # A log scale puts about half the draws below the geometric mean (1e-3).
    below = sum(s["lr"] < 1e-3 for s in samples) / len(samples)
    assert 0.35 < below < 0.65
    assert {s["act"] for s in samples} == {"relu", "tanh"}


@pytest.mark.parametrize(
    "space", [regularization_grid("l1l2"), exploratory_space("mlp"), exploratory_space("cnn")]
)
def test_json_round_trip(space):
    text = space.to_json()
    json.loads(text)
    assert SearchSpace.from_json(text) == space
    assert SearchSpace.from_json(text).sample(5) == space.sample(5)


def test_presets():
    assert regularization_grid("l2").grid_size() == 9
    assert regularization_grid("l1l2").grid_size() == 27
    assert set(regularization_grid("l1").params) == {"dropout", "l1"}
    with pytest.raises(ValueError, match="family"):
        regularization_grid("l3")


def test_configuration_key_ignores_order_and_tells_values_apart():
    assert configuration_key({"a": 1, "b": 0.5}) == configuration_key({"b": 0.5, "a": 1})
    assert configuration_key({"a": 1, "b": 0.5}) != configuration_key({"a": 1, "b": 0.25})


# --- the grid is counted by arithmetic --------------------------------------------------

REG = Choice(("none", "l1", "l2", "l1l2"))


def _when(parent, *values):
    return Condition(parent, values)


@pytest.mark.parametrize(
    "params",
    [
        {"a": Float(0.0, 1.0, step=0.1), "b": Int(1, 10, step=3), "c": Bool()},
        {"c": Fixed("adam"), "d": Float(0.0, 0.3, step=0.1)},
        {  # children of one parent, one naming two of its values
            "reg": REG,
            "l1": Float(0.0, 0.5, step=0.1, condition=_when("reg", "l1", "l1l2")),
            "l2": Choice((1e-4, 1e-3), condition=_when("reg", "l2")),
        },
        {  # a condition on an integer range and one on a stepped float, values off their grids
            "units": Int(8, 64, step=8),
            "drop": Float(0.0, 0.5, step=0.25),
            "x": Choice((1, 2, 3), condition=_when("units", 16, 24, 17, 1000)),
            "y": Int(1, 4, condition=_when("drop", 0.25, 0.3)),
        },
        {  # a chain: a conditional parent of a conditional child
            "reg": REG,
            "l2": Choice((0.0, 1e-3, 1e-2), condition=_when("reg", "l2", "l1l2")),
            "n": Int(1, 3, condition=_when("l2", 1e-2)),
            "m": Bool(condition=_when("n", 2, 3)),
        },
        {  # several parents whose activity combines, a condition never met on a value
            "p": Bool(),
            "q": Int(0, 5),
            "r": Choice(("a", "b"), condition=_when("p", True)),
            "s": Float(0.0, 1.0, step=0.5, condition=_when("q", 0, 5)),
            "t": Int(1, 2, condition=_when("r", "b")),
        },
    ],
    ids=["plain", "fixed", "siblings", "off-grid-values", "chain", "combined"],
)
def test_grid_size_counts_what_grid_lists(params):
    space = SearchSpace(params)
    listed = list(space.grid())
    assert space.grid_size() == len(listed)
    assert len({configuration_key(c) for c in listed}) == len(listed)  # no duplicates


def test_grid_size_of_astronomical_spaces_without_listing_them():
    tiny_step = SearchSpace({"l2": Float(0.0, 1.0, step=1e-12), "act": Bool()})
    assert tiny_step.grid_size() == 2 * (10**12 + 1)
    # A huge parent: the value a child's condition names is followed alone, the others together.
    huge_parent = SearchSpace(
        {"units": Int(1, 10**9), "l2": Choice((0.1, 0.2, 0.3), condition=_when("units", 5))}
    )
    assert huge_parent.grid_size() == 10**9 - 1 + 3
    with pytest.raises(ValueError, match=r"the grid has 2,000,000,000,002 configurations"):
        next(tiny_step.grid())
    with pytest.raises(ValueError, match=r"1,000,000,000 grid points, more than the limit"):
        Int(1, 10**9).grid_values()


@pytest.mark.parametrize(
    "param", [Float(0.0, 1.0, step=0.1), Float(-1.0, 1.0, step=0.3), Int(3, 40, step=7), Int(1, 9)]
)
def test_from_unit_computes_the_grid_point(param):
    points = param.grid_values()
    assert param.count() == len(points)
    units = [i / 97 for i in range(97)] + [0.999999]
    assert {param.from_unit(u) for u in units} == set(points)
    for u in units:
        assert param.from_unit(u) == points[min(int(u * len(points)), len(points) - 1)]


def test_from_unit_on_a_huge_stepped_range_is_arithmetic():
    param = Float(0.0, 0.5, step=5e-16)  # 10**15 points
    assert param.count() == 10**15 + 1  # in decimal: 0.5 / 5e-16 is 10**15 exactly
    assert param.from_unit(0.0) == 0.0 and param.from_unit(0.999999999) <= 0.5
    assert SearchSpace({"x": param, "u": Int(1, 10**15)}).sample(0)["u"] <= 10**15


def test_points_among_finds_grid_values_only():
    assert Float(0.0, 1.0, step=0.25).points_among([0.5, 0.3, "a", float("nan"), 1.0]) == [0.5, 1.0]
    assert Int(8, 64, step=8).points_among([16, 16.0, 17, 72, [16]]) == [16]
    assert REG.points_among(["l2", "l3"]) == ["l2"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Float(0.0, float("nan")), "high must be a finite number"),
        (lambda: Float(float("-inf"), 0.0), "low must be a finite number"),
        (lambda: Float(0.0, 1.0, step=float("nan")), "step must be a finite number"),
        (lambda: Float(0.0, 1.0, step=5e-324), "step 5e-324 is too small"),
        (lambda: Int(1.5, 9), "low must be an integer"),
        (lambda: Int(1, 9, step=0.5), "step must be an integer"),
    ],
)
def test_non_finite_and_fractional_bounds_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
