import json
import time
from pathlib import Path

import pytest

from search_spaces import MAX_GRID, Choice, Condition, Float, Int
from study.config import ConfigError, check_against_data, load_campaign, parse_campaign
from tests.conftest import tiny_campaign


def test_default_campaign_is_the_dropout_l2_grid():
    campaign = load_campaign(None)
    assert campaign.dataset == "digits" and campaign.builder.name == "mlp"
    assert campaign.seeds == (0, 1, 2, 3, 4)
    assert list(campaign.space.params) == ["dropout", "l2"]
    assert campaign.n_configurations() == 6
    assert campaign.direction == "maximize"


def test_resolved_campaign_fills_defaults_and_keeps_searched_keys_out_of_fixed():
    campaign = parse_campaign(tiny_campaign())
    assert campaign.fixed["units"] == 16 and campaign.fixed["optimizer"] == "adam"
    assert "dropout" not in campaign.fixed and "l2" not in campaign.fixed
    assert campaign.resolved["train"]["learning_rate"] == 0.001
    assert campaign.values({"dropout": 0.5, "l2": 0.0})["dropout"] == 0.5


def test_space_forms():
    raw = tiny_campaign(campaign={"strategy": "random"})
    del raw["model"]["units"]
    raw["space"] = {
        "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
        "units": {"low": 32, "high": 256, "step": 32},
        "regularizer": ["l1", "l2"],
        "l1": {"values": [1e-5, 1e-4], "when": {"regularizer": ["l1"]}},
    }
    p = parse_campaign(raw).space.params
    assert p["learning_rate"] == Float(1e-4, 1e-2, log=True)
    assert p["units"] == Int(32, 256, step=32)
    assert p["l1"] == Choice((1e-5, 1e-4), condition=Condition("regularizer", ("l1",)))


def test_preset_with_an_added_key():
    raw = tiny_campaign()
    raw["space"] = {"preset": "dropout-l1", "activation": ["relu", "tanh"]}
    assert list(parse_campaign(raw).space.params) == ["dropout", "l1", "activation"]


def test_integers_where_floats_are_expected_are_accepted():
    campaign = parse_campaign(tiny_campaign(train={"learning_rate": 1}, space={"l2": [0, 1]}))
    assert campaign.fixed["learning_rate"] == 1.0
    assert campaign.space.params["l2"].values == (0.0, 1.0)


@pytest.mark.parametrize(
    "sections, message",
    [
        (
            {"campaign": {"engine": "hyperopt"}},
            r"campaign\.engine: 'hyperopt' is not one of optuna, keras-tuner",
        ),
        (
            {"campaign": {"strategy": "tpe", "engine": "keras-tuner"}},
            r"campaign\.strategy: keras-tuner offers",
        ),
        ({"campaign": {"strategy": "bayesian"}}, r"campaign\.strategy: optuna offers"),
        ({"campaign": {"seeds": 3}}, r"campaign\.seeds: must be a list"),
        ({"campaign": {"seeds": []}}, r"campaign\.seeds: an empty list"),
        ({"campaign": {"seeds": [1, 1]}}, r"campaign\.seeds: needs one or more distinct"),
        ({"campaign": {"seeds": [0, "1"]}}, r"campaign\.seeds: '1' is not an integer"),
        ({"campaign": {"max_trials": 0}}, r"campaign\.max_trials: 0 is outside \[1, 100,000\]"),
        (
            {"campaign": {"objective": "test_accuracy"}},
            r"campaign\.objective: 'test_accuracy' is not one of val_accuracy, val_loss, val_mae",
        ),
        (
            {"campaign": {"pruner": "median", "engine": "keras-tuner"}},
            r"campaign\.pruner: only the optuna",
        ),
        ({"campaign": {"pruner": "asha"}}, r"campaign\.pruner: 'asha' is not one of"),
        (
            {"campaign": {"storage": "sqlite:///x.db", "engine": "keras-tuner"}},
            r"campaign\.storage",
        ),
        ({"campaign": {"sedes": [0]}}, r"campaign\.sedes: unknown key \(did you mean 'seeds'\?\)"),
        ({"data": {"validation_fraction": 1.5}}, r"data\.validation_fraction: 1\.5 is outside"),
        ({"data": {"dataset": 7}}, r"data\.dataset: 7 is not a string"),
        ({"model": {"builder": "rnn"}}, r"model\.builder: 'rnn' is not one of mlp, cnn"),
        ({"model": {"units": 0}}, r"model\.units: 0 is outside \[1, 65,536\]"),
        ({"model": {"units": [16, "x"]}}, r"model\.units: 'x' is not an integer"),
        ({"model": {"activation": "swish"}}, r"model\.activation: 'swish' is not one of relu"),
        ({"model": {"filters": 8}}, r"model\.filters: unknown key"),
        ({"model": {"dropout": 1.0}}, r"model\.dropout: 1\.0 is outside \[0, 1\)"),
        ({"model": {"batch_norm": "yes"}}, r"model\.batch_norm: 'yes' is not true or false"),
        ({"train": {"epochs": 0}}, r"train\.epochs: 0 is outside"),
        (
            {"train": {"optimizer": "adamw"}},
            r"train\.optimizer: 'adamw' is not one of sgd, adam, rmsprop",
        ),
        ({"train": {"learning_rate": -1.0}}, r"train\.learning_rate: -1\.0 is outside"),
        ({"space": {"dropout": [0.0, 1.5]}}, r"space\.dropout: 1\.5 is outside \[0, 1\)"),
        ({"space": {"dropout": []}}, r"space\.dropout: a choice needs at least one value"),
        ({"space": {"dropout": 0.5}}, r"space\.dropout: a searched value is a list or a range"),
        (
            {"space": {"l2": {"low": 1e-2, "high": 1e-4, "step": 1e-4}}},
            r"space\.l2: low 0\.01 is greater than high",
        ),
        (
            {"space": {"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}},
            r"space\.learning_rate: 0\.0 is outside",
        ),
        (
            {
                "space": {"l2": {"low": 0.0, "high": 0.1, "log": True}, "dropout": [0.0]},
                "campaign": {"strategy": "random"},
            },
            r"space\.l2: a log scale needs low > 0",
        ),
        (
            {"space": {"learning_rate": {"low": 1e-4, "high": 1e-2}}},
            r"space\.learning_rate: a grid needs a list or a range with a step",
        ),
        ({"space": {"l2": {"low": 1e-4}}}, r"space\.l2: a range needs low and high"),
        (
            {"space": {"l2": {"low": 0.0, "high": 1.0, "steps": 0.1}}},
            r"space\.l2: unknown field 'steps'",
        ),
        ({"space": {"optimizer": {"low": 1, "high": 2}}}, r"space\.optimizer: 1 is not a string"),
        ({"space": {"unit": [16]}}, r"space\.unit: unknown key \(did you mean 'units'\?\)"),
        ({"space": {"units": [16, 32]}}, r"space\.units: also fixed in model\.units"),
        (
            {"space": {"l1": {"values": [1e-5], "when": {"regularizer": ["l1"]}}}},
            r"space\.l1\.when: 'regularizer' must be a searched key",
        ),
        ({"space": {"preset": "dropout"}}, r"space\.preset: 'dropout' is not one of"),
        (
            {
                "space": {"epochs": [1, 2]},
                "campaign": {"engine": "keras-tuner", "strategy": "hyperband"},
            },
            r"space\.epochs: hyperband chooses",
        ),
        ({"extra": {"a": 1}}, r"extra: unknown section"),
        (
            {"model": {"hidden_layers": 3, "units": [64, 32]}},
            r"model\.units: 2 values, but hidden_layers may be 3",
        ),
        (
            {"model": {"units": [64, 32]}, "space": {"hidden_layers": [1, 2]}},
            r"model\.units: 2 values, but hidden_layers may be 1",
        ),
        (
            {"space": {"filters": [[8, 16]]}, "model": {"builder": "cnn"}},
            r"space\.filters: a choice of lists is not supported",
        ),
    ],
)
def test_every_problem_names_its_key(sections, message):
    raw = tiny_campaign(
        **{k: v for k, v in sections.items() if k in ("campaign", "data", "model", "train")}
    )
    if "space" in sections:
        raw["space"] = sections["space"]
    for name in set(sections) - {"campaign", "data", "model", "train", "space"}:
        raw[name] = sections[name]
    with pytest.raises(ConfigError, match=message):
        parse_campaign(raw, source="c.toml")


def test_all_problems_reported_at_once_with_the_file_name():
    raw = tiny_campaign(train={"epochs": 0, "batch_size": 0}, model={"units": 0})
    with pytest.raises(ConfigError) as error:
        parse_campaign(raw, source="c.toml")
    lines = str(error.value).splitlines()
    assert len(lines) == 3 and all(line.startswith("c.toml: ") for line in lines)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such campaign file"):
        load_campaign(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign\nname = 1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_campaign(bad)


@pytest.mark.parametrize(
    "sections, shape, task, message",
    [
        (
            {"model": {"builder": "cnn"}},
            (64,),
            "classification",
            r"model\.builder: cnn needs images",
        ),
        (
            {"campaign": {"objective": "val_mae"}},
            (8, 8, 1),
            "classification",
            r"campaign\.objective: val_mae is not computed for classification data \(choose val_loss or val_accuracy\)",
        ),
        (
            {},
            (4,),
            "regression",
            r"campaign\.objective: val_accuracy is not computed for regression",
        ),
    ],
)
def test_problems_only_the_data_reveals(sections, shape, task, message):
    raw = tiny_campaign(**sections)
    if raw["model"].get("builder") == "cnn":
        del raw["model"]["hidden_layers"], raw["model"]["units"]
    with pytest.raises(ConfigError, match=message):
        check_against_data(parse_campaign(raw), shape, task)


EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", [None, *EXAMPLES], ids=lambda p: p.name if p else "default")
def test_built_in_and_example_campaigns_pass_the_hostile_input_rules(path):
    campaign = load_campaign(path)
    assert 1 <= (campaign.n_configurations() or 1) <= MAX_GRID
    assert json.loads(json.dumps(campaign.resolved, allow_nan=False)) == campaign.resolved


def test_sampled_strategies_take_huge_stepped_ranges_without_listing_them():
    raw = tiny_campaign(campaign={"strategy": "random"})
    del raw["train"]["epochs"]
    raw["space"] = {
        "dropout": {"low": 0.0, "high": 0.5, "step": 5e-16},  # 10**15 points
        "epochs": {"low": 1, "high": 100_000},
    }
    start = time.perf_counter()
    campaign = parse_campaign(raw)
    assert campaign.max_epochs == 100_000
    assert 0.0 <= campaign.space.sample(0)["dropout"] <= 0.5
    assert time.perf_counter() - start < 1.0


def test_a_condition_on_a_value_the_parent_takes_is_accepted():
    raw = tiny_campaign()
    del raw["model"]["units"]
    raw["space"] = {
        "units": {"low": 8, "high": 64, "step": 8},
        "l2": {"values": [1e-4, 1e-3], "when": {"units": [16, 64.0]}},
    }
    space = parse_campaign(raw).space
    assert space.grid_size() == len(list(space.grid())) == 8 + 2 * 2 - 2


def test_names_that_are_folder_names_are_accepted():
    for name in ("a", "digits-dropout_l2.v2", "-x", "A" * 100):
        assert parse_campaign(tiny_campaign(campaign={"name": name})).name == name
