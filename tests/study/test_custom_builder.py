"""`model.builder = "module:function"`: the user's own model, with keys the campaign file types,
trained, recorded, compared and verified as the built-in builders are; every bad builder exits 2
with one line naming model.builder."""

from __future__ import annotations

import copy
import json
import re
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from study.cli import main
from study.config import ConfigError, load_campaign, parse_campaign
from tests.conftest import tiny_campaign, to_toml

EXAMPLES = Path(__file__).parents[2] / "examples"

# A functional model of the user's: BatchNormalization and the public Dropout/L2 helpers.
MODEL = """
    import keras
    from search_spaces import dropout_layer, kernel_regularizer

    def build(values, spec):
        inputs = keras.Input(shape=spec.input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(values["width"], kernel_regularizer=kernel_regularizer(values))(x)
        x = keras.layers.BatchNormalization()(x)
        x = dropout_layer(values)(keras.layers.Activation("relu")(x))
        outputs = keras.layers.Dense(spec.outputs, activation="softmax")(x)
        return keras.Model(inputs, outputs)
"""


@pytest.fixture
def write_module(tmp_path):
    """Write a module in tmp_path (where the campaign file goes); returns its import name."""
    names: list[str] = []

    def write(body: str) -> str:
        name = f"user_model_{len(names)}_{tmp_path.name}"  # unique: Python caches imports
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body).lstrip())
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _custom(module: str, function: str = "build", **model) -> dict:
    return tiny_campaign(
        campaign={"seeds": [0]},
        data={"limit": 200},
        model={"builder": f"{module}:{function}", "width": 16, **model},
        train={"epochs": 1},
    ) | {"space": {"dropout": [0.0, 0.5]}}


def _drop_mlp_keys(raw: dict) -> dict:
    raw["model"] = {k: v for k, v in raw["model"].items() if k not in ("hidden_layers", "units")}
    return raw


def _run(tmp_path, raw: dict, capsys=None) -> tuple[int, str]:
    path = tmp_path / "campaign.toml"
    path.write_text(to_toml(_drop_mlp_keys(raw)))
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    return code, capsys.readouterr().err if capsys else ""


@pytest.mark.slow  # two campaigns with their reports, and verify: about a minute
def test_the_example_runs_under_both_engines_and_verifies(tmp_path):
    """examples/custom_model.toml, made tiny, under Optuna (grid) and KerasTuner (random): every
    configuration recorded with its own keys, the regularizer keys understood, verify exact."""
    from reports.compare import assign_families
    from study import records
    from study.verify import verify

    (tmp_path / "custom_model.py").write_text((EXAMPLES / "custom_model.py").read_text())
    raw = tomllib.loads((EXAMPLES / "custom_model.toml").read_text())
    raw["campaign"]["seeds"] = [0]
    raw["data"]["limit"] = 300
    raw["train"]["epochs"] = 2
    raw["model"]["width"] = 16
    raw["space"] = {"dropout": [0.0, 0.5], "l2": [0.0, 1e-3]}
    for engine, strategy in (("optuna", "grid"), ("keras-tuner", "random")):
        raw["campaign"] |= {"engine": engine, "strategy": strategy, "max_trials": 4}
        path = tmp_path / f"{engine}.toml"
        path.write_text(to_toml(raw))
        out = tmp_path / engine
        assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
        trials, epochs = records.load(out)
        assert len(trials) == 4 and set(trials.status) == {"COMPLETE"}, trials
        assert {"param_width", "param_blocks", "param_dropout", "param_l2"} <= set(trials.columns)
        assert len(epochs) == 4 * 2
        assert set(assign_families(trials)) == {"none", "dropout", "l2", "dropout+l2"}
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["builder_source"]) == 64
        assert manifest["sessions"][-1]["campaign_folder"] == str(tmp_path)
        assert (out / "report.html").is_file()
        checks = verify(out, n_runs=2)
        assert [c.max_difference for c in checks] == [0.0, 0.0], checks


@pytest.mark.slow  # a campaign and its test evaluation
def test_the_python_example_runs_with_functions_for_builder_and_loader(tmp_path, monkeypatch):
    import study

    monkeypatch.syspath_prepend(str(EXAMPLES))
    import custom_model_api

    campaign = copy.deepcopy(custom_model_api.CAMPAIGN)  # the functions are kept as they are
    campaign["campaign"] |= {"max_trials": 2, "seeds": [0]}
    campaign["train"] |= {"epochs": 1}
    campaign["model"] |= {"width": 8, "blocks": 1}
    result = study.run(campaign, out=tmp_path / "api", progress=False, report=False)
    assert result.campaign["model"]["builder"] == "custom_model:build"
    assert result.campaign["data"]["dataset"] == "py:custom_model:load"
    assert len(result.trials) == 2 and set(result.trials.status) == {"COMPLETE"}
    assert result.chosen["trial"] in (1, 2)
    # The trained custom model back, and KerasTuner's checkpoints of it (one per trial).
    from study.trial import read_weights

    saved = read_weights(
        tmp_path / "api" / "weights" / f"trial-{result.chosen['trial']}-seed-0.npz"
    )
    for mine, theirs in zip(result.model().get_weights(), saved, strict=True):
        assert (mine == theirs).all()
    assert len(list((tmp_path / "api" / "keras_tuner").glob("trial_*/checkpoint.weights.h5"))) == 2


def test_a_lambda_is_refused_naming_the_key(tmp_path):
    import study

    raw = _custom("anything") | {"model": {"builder": lambda values, spec: None}}
    with pytest.raises(ConfigError, match=r"model\.builder: .*not a module-level function"):
        study.run(raw, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_the_builder_gets_every_value_and_the_data_spec(tmp_path, write_module):
    module = write_module(
        MODEL.replace(
            "def build(values, spec):",
            "SEEN = []\n\n    def build(values, spec):\n        SEEN.append((dict(values), spec))",
        )
    )
    raw = _drop_mlp_keys(_custom(module, flag=True, sizes=[4, 2]))
    raw["space"]["kind"] = ["a", "b"]
    campaign = parse_campaign(raw, folder=tmp_path)
    assert campaign.builder.keys["flag"].kind is bool
    assert campaign.builder.keys["sizes"].per_layer
    assert campaign.builder.keys["dropout"].high == 1.0  # the regularization keys keep theirs
    from study.campaign import load_campaign_data

    load_campaign_data(campaign)  # builds the first configuration once, as a check
    values, spec = sys.modules[module].SEEN[-1]
    assert values["width"] == 16 and values["flag"] is True and values["sizes"] == [4, 2]
    assert values["dropout"] == 0.0 and values["kind"] == "a" and values["epochs"] == 1
    assert spec.input_shape == (8, 8, 1) and spec.outputs == 10 and spec.task == "classification"


def test_an_uncompiled_model_is_compiled_from_train_and_a_compiled_one_kept(tmp_path, write_module):
    import keras

    module = write_module(
        MODEL
        + """
    def compiled(values, spec):
        model = build(values, spec)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model
"""
    )
    for function, kind in (("build", keras.optimizers.Adam), ("compiled", keras.optimizers.SGD)):
        builder = parse_campaign(_drop_mlp_keys(_custom(module, function)), folder=tmp_path).builder
        model = builder.build({"dropout": 0.0}, input_shape=(64,), n_outputs=10)
        assert isinstance(model.optimizer, kind), function


@pytest.mark.parametrize(
    ("body", "function", "message"),
    [
        (MODEL, "missing", r"has no function 'missing'"),
        ("x = 1\n", "x", r"\.x is a int, not a function"),
        ("import nothing_here_at_all\n", "build", r"importing .* raised ModuleNotFoundError"),
        (MODEL, "build", None),  # a module that is not there: named below
    ],
)
def test_a_builder_that_cannot_be_found_is_refused_before_any_work(
    tmp_path, write_module, body, function, message
):
    module = write_module(body) if message else "no_such_module_anywhere"
    message = message or r"module 'no_such_module_anywhere' not found \(in .* or on sys\.path\)"
    with pytest.raises(ConfigError, match=rf"model\.builder: {module}:{function}: .*{message}"):
        parse_campaign(_drop_mlp_keys(_custom(module, function)), folder=tmp_path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "def build(values, spec):\n    raise ValueError('no such layer')\n",
            r"building the model raised ValueError: no such layer \(at .*user_model_0_.*:2\)",
        ),
        (
            "def build(values, spec):\n    return 'a model'\n",
            r"build: the builder returned str, not a Keras model",
        ),
        (
            MODEL.replace("spec.outputs, activation", "3, activation"),
            r"output has shape \(2, 3\) for a batch of 2; the data needs \(2, 10\) \(10 classes\)",
        ),
        (
            MODEL.replace("shape=spec.input_shape", "shape=(3,)"),
            r"calling the model on a batch of shape \(2, 8, 8, 1\) raised",
        ),
    ],
)
def test_a_builder_that_does_not_fit_exits_2_naming_it_and_writes_nothing(
    tmp_path, write_module, capsys, body, message
):
    module = write_module(body)
    code, err = _run(tmp_path, _custom(module), capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("study: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"study: error: model.builder: {module}:build: "), err
    assert re.search(message, errors[0]), errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "space", "message"),
    [
        ({"shape": {"a": 1}}, {}, r"model\.shape: \{'a': 1\}; a key of a custom builder takes"),
        ({"mixed": [1, "a"]}, {}, r"model\.mixed: values of different types"),
        ({"epochs": 3}, {}, r"model\.epochs: a training key; set it in \[train\]"),
        ({}, {"preset": "regularization"}, r"space\.preset: presets search the built-in"),
        ({"dropout": 1.5}, {}, r"model\.dropout: 1\.5 is outside \[0, 1\)"),
        ({"width": 16}, {"width": [8, 16]}, r"space\.width: also fixed in model\.width"),
    ],
)
def test_custom_keys_are_typed_by_their_values_and_checked(tmp_path, model, space, message):
    (tmp_path / "m.py").write_text(textwrap.dedent(MODEL))
    raw = _drop_mlp_keys(_custom("m")) | {"space": {"dropout": [0.0, 0.5], **space}}
    raw["model"] |= model
    try:
        with pytest.raises(ConfigError, match=message):
            parse_campaign(raw, folder=tmp_path)
    finally:
        sys.modules.pop("m", None)


def test_a_custom_model_trains_one_run_at_a_time_and_says_so_once():
    from search_spaces import MLP, CustomBuilder
    from study.population import population_size

    builder = CustomBuilder("m:build", {})
    size, why = population_size("auto", pruner="none", builder=builder)
    assert size == 1 and why.startswith("model.builder = m:build is your own model")
    assert population_size(1, pruner="none", builder=builder) == (1, "")
    assert population_size("auto", pruner="none", builder=MLP)[0] > 1


@pytest.mark.slow  # a campaign run by the command line first
def test_a_resumed_campaign_whose_builder_source_changed_is_refused(tmp_path, write_module, capsys):
    module = write_module(MODEL)
    raw = _custom(module)
    assert _run(tmp_path, raw)[0] == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    source = tmp_path / f"{module}.py"
    source.write_text(source.read_text().replace("relu", "tanh"))
    sys.modules.pop(module)
    capsys.readouterr()
    code, err = _run(tmp_path, raw, capsys)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("study: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"model.builder: the source of {module}:build changed since the campaign" in errors[0]
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before


def test_a_campaign_file_with_a_custom_builder_is_found_beside_it(tmp_path):
    (tmp_path / "beside.py").write_text(textwrap.dedent(MODEL))
    path = tmp_path / "c.toml"
    path.write_text(to_toml(_drop_mlp_keys(_custom("beside"))))
    try:
        campaign = load_campaign(path)
    finally:
        sys.modules.pop("beside", None)
    assert campaign.builder.name == "beside:build"
    assert campaign.resolved["model"]["builder"] == "beside:build"
    assert "folder" not in json.dumps(campaign.resolved)
