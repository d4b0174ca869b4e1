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
