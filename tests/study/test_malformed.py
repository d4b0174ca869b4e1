"""Bad input through the command line: every malformed campaign file, missing file, bad data spec
or bad flag exits with status 2 and one message naming the key or file; never a traceback."""

import re

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


KT = {"engine": "keras-tuner"}
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
    ("seeds-empty", _campaign(campaign={"seeds": []}), r"campaign\.seeds: needs one or more"),
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
    # whole tables
    ("unknown-section", _campaign(extra={"a": 1}), r"extra: unknown section"),
    ("section-not-table", "campaign = 3\n", r"campaign: must be a table, got 3"),
    # files
    ("invalid-toml", "[campaign\nname = 1\n", r"campaign\.toml: not valid TOML"),
    ("duplicate-key", "[train]\nepochs = 1\nepochs = 2\n", r"campaign\.toml: not valid TOML"),
    ("not-utf8", b"[campaign]\nname = '\xff'\n", r"campaign\.toml: cannot read it"),
]


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
