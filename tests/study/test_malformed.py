"""Bad input through the command line: every malformed campaign file, missing file, bad data spec
or bad flag exits with status 2 and one message naming the key or file; never a traceback."""

import re
import sys

import numpy as np
import pytest

from study.cli import main
from tests.conftest import tiny_campaign, to_toml

NO_TRIALS = "no configuration trains"  # none of these cases may get as far as training


def _campaign(**sections) -> str:
    """The tiny campaign as TOML with some sections' keys replaced; `space` is replaced whole,
    and other names become extra top-level tables or values."""
    known = ("campaign", "data", "model", "train")
    raw = tiny_campaign(**{k: v for k, v in sections.items() if k in known})
    if "space" in sections:
        raw["space"] = sections["space"]
    text = to_toml(raw)
    for name, value in sections.items():
        if name not in (*known, "space"):
            text = (
                to_toml({name: value}) if isinstance(value, dict) else f"{name} = {value}\n"
            ) + ("\n" + text)
    return text


def _searching(space, **sections) -> str:
    """The tiny campaign searching `space`, whose keys are no longer fixed in [model] or [train]."""
    raw = tiny_campaign(**sections)
    raw["space"] = space
    for table in ("model", "train"):
        for key in space:
            raw[table].pop(key, None)
    return to_toml(raw)


def _named(name: str) -> tuple[str, str]:
    """The tiny campaign under `name`, and the message that refuses it."""
    shown = re.escape(repr(name) if len(name) < 40 else repr(name)[:37] + "...")
    message = rf"campaign\.name: {shown} is not a safe name \(1 to 100 letters, digits"
    return _campaign(campaign={"name": name}), message


KT = {"engine": "keras-tuner"}
RANDOM = {"strategy": "random"}
NAN, INF = float("nan"), float("inf")
NOT_FINITE = r"is not a finite number"
TOO_BIG_GRID = r"space: the grid has {} configurations \({}\), more than the limit of 10,000"
CASES = [
    # [campaign]: types, choices, ranges, unknown keys, conflicting options
    ("engine-unknown", _campaign(campaign={"engine": "hyperopt"}), r"campaign\.engine: 'hyperopt'"),
    ("engine-type", _campaign(campaign={"engine": 3}), r"campaign\.engine: 3 is not a string"),
    ("strategy-unknown", _campaign(campaign={"strategy": "sobol"}), r"campaign\.strategy: 'sobol'"),
    (
        "strategy-tpe-kt",
        _campaign(campaign={"strategy": "tpe", **KT}),
        r"campaign\.strategy: keras",
    ),
    ("strategy-bayes-optuna", _campaign(campaign={"strategy": "bayesian"}), r"campaign\.strategy"),
    (
        "strategy-hyperband-optuna",
        _campaign(campaign={"strategy": "hyperband"}),
        r"campaign\.strategy: optuna offers .*not 'hyperband'",
    ),
    ("seeds-int", _campaign(campaign={"seeds": 3}), r"campaign\.seeds: must be a list"),
    ("seeds-empty", _campaign(campaign={"seeds": []}), r"campaign\.seeds: an empty list"),
    (
        "seeds-repeated",
        _campaign(campaign={"seeds": [1, 1]}),
        r"campaign\.seeds: needs one or more",
    ),
    (
        "seeds-string",
        _campaign(campaign={"seeds": [0, "1"]}),
        r"campaign\.seeds: '1' is not an int",
    ),
    ("seeds-float", _campaign(campaign={"seeds": [0.5]}), r"campaign\.seeds: 0\.5 is not an int"),
    ("seed-negative", _campaign(campaign={"seed": -1}), r"campaign\.seed: -1 is outside"),
    ("seed-string", _campaign(campaign={"seed": "zero"}), r"campaign\.seed: 'zero' is not an int"),
    (
        "max-trials-zero",
        _campaign(campaign={"max_trials": 0}),
        r"campaign\.max_trials: 0 is outside",
    ),
    ("max-trials-float", _campaign(campaign={"max_trials": 2.5}), r"campaign\.max_trials: 2\.5"),
    (
        "objective-test",
        _campaign(campaign={"objective": "test_accuracy"}),
        r"campaign\.objective: 'test_accuracy' is not one of",
    ),
    (
        "objective-not-for-classes",
        _campaign(campaign={"objective": "val_mae"}),
        r"campaign\.objective: val_mae is not computed for classification",
    ),
    ("pruner-unknown", _campaign(campaign={"pruner": "asha"}), r"campaign\.pruner: 'asha'"),
    ("pruner-kt", _campaign(campaign={"pruner": "median", **KT}), r"campaign\.pruner: only the"),
    (
        "storage-kt",
        _campaign(campaign={"storage": "sqlite:///x.db", **KT}),
        r"campaign\.storage",
    ),
    (
        "failures-zero",
        _campaign(campaign={"max_consecutive_failures": 0}),
        r"campaign\.max_consecutive_failures: 0 is outside",
    ),
    (
        "deterministic-string",
        _campaign(campaign={"deterministic": "yes"}),
        r"campaign\.deterministic: 'yes' is not true or false",
    ),
    ("name-type", _campaign(campaign={"name": 5}), r"campaign\.name: 5 is not a string"),
    ("campaign-unknown-key", _campaign(campaign={"sedes": [0]}), r"campaign\.sedes: unknown key"),
    # [data]
    (
        "validation-high",
        _campaign(data={"validation_fraction": 1.5}),
        r"data\.validation_fraction: 1\.5 is outside",
    ),
    (
        "validation-string",
        _campaign(data={"validation_fraction": "0.2"}),
        r"data\.validation_fraction: '0\.2' is not a number",
    ),
    ("test-fraction-zero", _campaign(data={"test_fraction": 0.0}), r"data\.test_fraction: 0\.0"),
    ("dataset-type", _campaign(data={"dataset": 7}), r"data\.dataset: 7 is not a string"),
    ("limit-small", _campaign(data={"limit": 5}), r"data\.limit: 5 is outside"),
    ("data-unknown-key", _campaign(data={"shuffle": True}), r"data\.shuffle: unknown key"),
    (
        "dataset-unknown",
        _campaign(data={"dataset": "imagenet"}),
        r"data\.dataset: 'imagenet' is not a dataset",
    ),
    (
        "npz-missing",
        _campaign(data={"dataset": "npz:/does/not/exist.npz"}),
        r"npz:/does/not/exist\.npz: file not found",
    ),
    (
        "csv-missing",
        _campaign(data={"dataset": "csv:/does/not/exist.csv"}),
        r"csv:/does/not/exist\.csv: file not found",
    ),
    ("idx-missing", _campaign(data={"dataset": "idx:/does/not/exist"}), r"idx:/does/not/exist"),
    # [model]
    ("builder-unknown", _campaign(model={"builder": "rnn"}), r"model\.builder: 'rnn' is not one"),
    ("units-zero", _campaign(model={"units": 0}), r"model\.units: 0 is outside"),
    ("units-list-string", _campaign(model={"units": [16, "x"]}), r"model\.units: 'x' is not an"),
    ("units-empty-list", _campaign(model={"units": []}), r"model\.units: an empty list"),
    ("activation", _campaign(model={"activation": "swish"}), r"model\.activation: 'swish'"),
    ("mlp-filters", _campaign(model={"filters": 8}), r"model\.filters: unknown key"),
    ("dropout-one", _campaign(model={"dropout": 1.0}), r"model\.dropout: 1\.0 is outside"),
    ("batch-norm-string", _campaign(model={"batch_norm": "yes"}), r"model\.batch_norm: 'yes'"),
    (
        "units-vs-layers",
        _campaign(model={"hidden_layers": 3, "units": [64, 32]}),
        r"model\.units: 2 values, but hidden_layers may be 3",
    ),
    # [train]
    ("epochs-zero", _campaign(train={"epochs": 0}), r"train\.epochs: 0 is outside"),
    ("epochs-string", _campaign(train={"epochs": "10"}), r"train\.epochs: '10' is not an int"),
    ("batch-size-zero", _campaign(train={"batch_size": 0}), r"train\.batch_size: 0 is outside"),
    ("optimizer", _campaign(train={"optimizer": "adamw"}), r"train\.optimizer: 'adamw' is not"),
    ("learning-rate", _campaign(train={"learning_rate": -1.0}), r"train\.learning_rate: -1\.0"),
    ("train-typo", _campaign(train={"lr": 0.1}), r"train\.lr: unknown key"),
    # [space]
    ("choice-out-of-range", _campaign(space={"dropout": [0.0, 1.5]}), r"space\.dropout: 1\.5 is"),
    ("choice-empty", _campaign(space={"dropout": []}), r"space\.dropout: a choice needs at least"),
    ("choice-scalar", _campaign(space={"dropout": 0.5}), r"space\.dropout: a searched value is a"),
    (
        "low-above-high",
        _campaign(space={"l2": {"low": 1e-2, "high": 1e-4, "step": 1e-4}}),
        r"space\.l2: low 0\.01 is greater than high",
    ),
    (
        "log-low-zero",
        _campaign(space={"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}),
        r"space\.learning_rate: 0\.0 is outside",
    ),
    (
        "log-low-zero-l2",
        _campaign(
            space={"l2": {"low": 0.0, "high": 0.1, "log": True}}, campaign={"strategy": "random"}
        ),
        r"space\.l2: a log scale needs low > 0",
    ),
    (
        "grid-continuous",
        _campaign(space={"learning_rate": {"low": 1e-4, "high": 1e-2}}),
        r"space\.learning_rate: a grid needs a list or a range with a step",
    ),
    ("range-no-high", _campaign(space={"l2": {"low": 1e-4}}), r"space\.l2: a range needs low and"),
    (
        "range-unknown-field",
        _campaign(space={"l2": {"low": 0.0, "high": 1.0, "steps": 0.1}}),
        r"space\.l2: unknown field 'steps'",
    ),
    (
        "range-of-strings",
        _campaign(space={"optimizer": {"low": 1, "high": 2}}),
        r"space\.optimizer: 1 is not a string",
    ),
    ("space-typo", _campaign(space={"unit": [16]}), r"space\.unit: unknown key"),
    (
        "fixed-and-searched",
        _campaign(space={"units": [16, 32]}),
        r"space\.units: also fixed in model\.units",
    ),
    (
        "when-unknown-parent",
        _campaign(space={"l1": {"values": [1e-5], "when": {"regularizer": ["l1"]}}}),
        r"space\.l1\.when: 'regularizer' must be a searched key",
    ),
    ("preset-unknown", _campaign(space={"preset": "dropout"}), r"space\.preset: 'dropout' is not"),
    (
        "hyperband-epochs",
        _campaign(
            space={"epochs": [1, 2]}, campaign={"engine": "keras-tuner", "strategy": "hyperband"}
        ),
        r"space\.epochs: hyperband chooses",
    ),
    (
        "choice-of-lists",
        _campaign(space={"units": [[8, 16]]}, model={"hidden_layers": 2}),
        r"space\.units: a choice of lists is not supported",
    ),
    # non-finite numbers (TOML's nan, inf, -inf), wherever a number can appear
    ("lr-nan", _campaign(train={"learning_rate": NAN}), r"train\.learning_rate: nan " + NOT_FINITE),
    ("momentum-inf", _campaign(train={"momentum": INF}), r"train\.momentum: inf " + NOT_FINITE),
    ("l1-minus-inf", _campaign(model={"l1": -INF}), r"model\.l1: -inf " + NOT_FINITE),
    ("dropout-nan", _campaign(model={"dropout": NAN}), r"model\.dropout: nan " + NOT_FINITE),
    ("l2-nan", _campaign(model={"l2": NAN}), r"model\.l2: nan " + NOT_FINITE),
    ("fraction-nan", _campaign(data={"validation_fraction": NAN}), r"data\.validation_fraction"),
    ("choice-nan", _campaign(space={"dropout": [0.0, NAN]}), r"space\.dropout: nan " + NOT_FINITE),
    (
        "range-end-inf",
        _campaign(space={"l2": {"low": 0.0, "high": INF, "step": 0.1}}),
        r"space\.l2: inf " + NOT_FINITE,
    ),
    (
        "step-nan",
        _campaign(space={"dropout": {"low": 0.0, "high": 0.5, "step": NAN}}),
        r"space\.dropout\.step: nan " + NOT_FINITE,
    ),
    (
        "step-inf",
        _campaign(space={"l2": {"low": 0.0, "high": 0.1, "step": INF}}),
        r"space\.l2\.step: inf " + NOT_FINITE,
    ),
    # grids are counted, not built: a huge one is refused at once, naming its keys
    (
        "grid-tiny-step",
        _campaign(space={"dropout": {"low": 0.0, "high": 0.5, "step": 1e-12}}),
        TOO_BIG_GRID.format("500,000,000,001", "dropout: 500,000,000,001 values"),
    ),
    (
        "grid-million",
        _campaign(
            space={
                "dropout": {"low": 0.0, "high": 0.999, "step": 0.001},
                "l2": {"low": 0.0, "high": 0.999, "step": 0.001},
            }
        ),
        TOO_BIG_GRID.format("1,000,000", "l2: 1,000 values, dropout: 1,000 values"),
    ),
    (
        "grid-int-range",
        _searching({"units": {"low": 1, "high": 60_000}}),
        TOO_BIG_GRID.format("60,000", "units: 60,000 values"),
    ),
    (
        "grid-conditional-child",
        _campaign(
            space={
                "regularizer": ["none", "l2"],
                "l2": {"low": 0.0, "high": 1.0, "step": 1e-6, "when": {"regularizer": ["l2"]}},
            }
        ),
        TOO_BIG_GRID.format("1,000,002", "l2: 1,000,001 values, regularizer: 2 values"),
    ),
    (
        "step-below-range-precision",
        _campaign(space={"l2": {"low": 0.0, "high": 1.0, "step": 5e-324}}, campaign=RANDOM),
        r"space\.l2: step 5e-324 is too small for \[0\.0, 1\.0\]",
    ),
    # conditions the parent can never meet, integer ranges with fractions, non-scalar values
    (
        "when-value-never-taken",
        _campaign(
            space={
                "regularizer": ["none", "l2"],
                "l2": {"low": 1e-5, "high": 1e-2, "log": True, "when": {"regularizer": ["l3"]}},
            },
            campaign=RANDOM,
        ),
        r"space\.l2\.when: regularizer never takes 'l3' \(it takes 'none', 'l2'\)",
    ),
    (
        "when-off-the-int-grid",
        _searching(
            {
                "units": {"low": 8, "high": 64, "step": 8},
                "l2": {"values": [1e-3], "when": {"units": [12]}},
            }
        ),
        r"space\.l2\.when: units never takes 12 \(it takes 8 to 64 in steps of 8\)",
    ),
    (
        "when-continuous-parent",
        _campaign(
            space={
                "dropout": {"low": 0.0, "high": 0.5},
                "l2": {"values": [1e-3], "when": {"dropout": [0.25]}},
            },
            campaign=RANDOM,
        ),
        r"space\.l2\.when: dropout is a continuous range",
    ),
    (
        "when-no-values",
        _campaign(
            space={"regularizer": ["l2"], "l2": {"values": [1e-3], "when": {"regularizer": []}}}
        ),
        r"space\.l2\.when: regularizer needs one or more values",
    ),
    (
        "int-range-fractional-end",
        _searching({"units": {"low": 1.5, "high": 9}}),
        r"space\.units: 1\.5 is not an integer",
    ),
    (
        "int-step-half",
        _searching({"units": {"low": 1, "high": 9, "step": 0.5}}),
        r"space\.units\.step: 0\.5 is not an integer",
    ),
    (
        "int-step-one-and-half",
        _searching({"units": {"low": 1, "high": 9, "step": 1.5}}),
        r"space\.units\.step: 1\.5 is not an integer",
    ),
    (
        "int-step-boolean",
        _searching({"units": {"low": 1, "high": 9, "step": True}}),
        r"space\.units\.step: True is not an integer",
    ),
    (
        "log-string",
        _campaign(
            space={"learning_rate": {"low": 1e-4, "high": 1e-2, "log": "yes"}}, campaign=RANDOM
        ),
        r"space\.learning_rate\.log: 'yes' is not true or false",
    ),
    (
        "values-table",
        _campaign(space={"dropout": {"values": {"a": 0.1}}}),
        r"space\.dropout\.values: must be a list",
    ),
    ("seeds-nested-list", _campaign(campaign={"seeds": [0, [1]]}), r"campaign\.seeds: \[1\] is"),
    ("seeds-of-tables", _campaign(campaign={"seeds": [{"a": 1}]}), r"campaign\.seeds: \{'a': 1\}"),
    ("seed-list", _campaign(campaign={"seed": [1]}), r"campaign\.seed: \[1\] is not an integer"),
    ("units-nested-list", _campaign(model={"units": [[16]]}), r"model\.units: \[16\] is not an"),
    ("engine-list", _campaign(campaign={"engine": []}), r"campaign\.engine: \[\] is not a string"),
    ("epochs-boolean", _campaign(train={"epochs": True}), r"train\.epochs: True is not an integer"),
    ("objective-empty", _campaign(campaign={"objective": ""}), r"campaign\.objective: '' is not"),
    # huge integers: each count and size has a documented upper bound
    (
        "epochs-huge",
        _campaign(train={"epochs": 10**30}),
        r"train\.epochs: 10+ is outside \[1, 100,000\]",
    ),
    ("units-huge", _campaign(model={"units": 10**30}), r"model\.units: 10+ is outside \[1, 65,5"),
    (
        "batch-size-huge",
        _campaign(train={"batch_size": 10**30}),
        r"train\.batch_size: 10+ is outside \[1, 1,048,576\]",
    ),
    (
        "max-trials-huge",
        _campaign(campaign={"max_trials": 10**30}),
        r"campaign\.max_trials: 10+ is outside \[1, 100,000\]",
    ),
    (
        "population-huge",
        _campaign(campaign={"population": 10**30}),
        r"campaign\.population: 10+ is not an integer in \[1, 4,096\]",
    ),
    (
        "hidden-layers-huge",
        _campaign(model={"hidden_layers": 10**6}),
        r"model\.hidden_layers: 1000000 is outside \[0, 1,000\]",
    ),
    # campaign.name names a folder (runs/<name>), an Optuna study and a database key
    ("name-absolute", *_named("/tmp/evil")),
    ("name-dotdot", *_named("..")),
    ("name-hidden", *_named(".cache")),
    ("name-slash", *_named("a/b")),
    ("name-empty", *_named("")),
    ("name-space", *_named("my run")),
    ("name-long", *_named("a" * 5000)),
    (
        "name-nul",  # TOML's escape for the NUL character
        _campaign(campaign={"name": "a\\u0000b"}),
        r"campaign\.name: 'a\\x00b' is not a safe name",
    ),
    # whole tables
    ("unknown-section", _campaign(extra={"a": 1}), r"extra: unknown section"),
    ("section-not-table", "campaign = 3\n", r"campaign: must be a table, got 3"),
    # files
    ("invalid-toml", "[campaign\nname = 1\n", r"campaign\.toml: not valid TOML"),
    ("duplicate-key", "[train]\nepochs = 1\nepochs = 2\n", r"campaign\.toml: not valid TOML"),
    ("not-utf8", b"[campaign]\nname = '\xff'\n", r"campaign\.toml: cannot read it"),
]


@pytest.fixture(autouse=True)
def _default_determinism():
    """A run that gets as far as the data switches on the backend's op determinism for the
    whole process; switch it back off, so later tests in this process see the default."""
    yield
    if "keras" in sys.modules:
        from study.backend import set_determinism

        set_determinism(False)


@pytest.mark.parametrize("text, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_campaign_exits_2_with_one_message(tmp_path, capsys, text, message):
    path = tmp_path / "campaign.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    _assert_one_message(err, message)
    assert not (out / "records.sqlite").exists(), NO_TRIALS


_CLASSES = np.arange(60) % 3  # 20 examples each of 0, 1 and 2


@pytest.mark.parametrize(
    "labels, message",
    [
        ({"y": np.where(_CLASSES == 2, 10**9, _CLASSES)}, r"class label 1000000000 is too large"),
        ({"y": np.where(_CLASSES == 2, 2**63 + 5, _CLASSES).astype(np.uint64)}, r"too large"),
        ({"y": _CLASSES - 1}, r"training class labels are negative \(min -1\)"),
        (
            {"y": np.where(_CLASSES == 2, 50, _CLASSES)},
            r"largest class label is 50 but there are only 3 distinct labels \[0, 1, 50\]",
        ),
        (
            {"y_train": _CLASSES, "y_test": np.array([0.0, 1.5, 2.0])},
            r"test class labels are not whole numbers",
        ),
    ],
    ids=["label-1e9", "label-uint64-huge", "label-negative", "labels-sparse", "test-label-1.5"],
)
def test_absurd_class_labels_exit_2_before_any_model(tmp_path, capsys, labels, message):
    x = np.random.default_rng(0).random((60, 4), dtype=np.float32)
    features = {"x": x} if "y" in labels else {"x_train": x, "x_test": x[:3]}
    np.savez(tmp_path / "data.npz", **features, **labels)
    path = tmp_path / "campaign.toml"
    path.write_text(_campaign(data={"dataset": f"npz:{tmp_path / 'data.npz'}"}))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    _assert_one_message(capsys.readouterr().err, r"data\.npz: .*" + message)
    assert not (out / "records.sqlite").exists(), NO_TRIALS


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing.toml", r"missing\.toml: no such campaign file"),
        (lambda tmp: tmp, r": cannot read it \(\[Errno 21\] Is a directory"),
    ],
    ids=["missing-file", "directory-as-file"],
)
def test_unreadable_campaign_file_exits_2(tmp_path, capsys, make, message):
    assert main(["run", str(make(tmp_path)), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    _assert_one_message(capsys.readouterr().err, message)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--bogus"], r"unrecognized arguments: --bogus"),
        (["run", "--runs-per-worker", "0"], r"--runs-per-worker: '0' is not a positive integer"),
        (["export", "x", "--format", "xls"], r"invalid choice: 'xls'"),
        (["verify", "x", "--trials", "-1"], r"--trials: '-1' is not a positive integer"),
        (["status"], r"the following arguments are required: directory"),
        (["launch"], r"invalid choice: 'launch'"),
    ],
)
def test_bad_flags_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_at_least_fifty_malformed_files():
    assert len(CASES) + 2 >= 50


def _assert_one_message(err: str, message: str) -> None:
    """One error message (a bad file lists each of its problems on a line of its own), and it
    names the key or the file."""
    assert "Traceback" not in err
    assert err.count("study: error: ") == 1, err
    assert re.search(message, err[err.index("study: error: ") :]), err
