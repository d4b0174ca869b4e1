"""`dataset = "py:module:function"`: the user's loader, found beside the campaign file, checked
and fingerprinted as files are; every bad loader exits 2 with one line naming data.dataset."""

from __future__ import annotations

import json
import math
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from study.cli import main
from study.config import ConfigError, load_campaign
from study.data import DataError, Dataset, load_dataset
from tests.conftest import tiny_campaign, to_toml

DIGITS = """
    import numpy as np
    from sklearn.datasets import load_digits

    def load():
        d = load_digits()
        return {"x": d.data[:300].astype(np.float32) / 16, "y": d.target[:300]}
"""


@pytest.fixture
def write_loader(tmp_path):
    """Write a module in tmp_path (where the campaign file goes); returns its `py:` spec."""
    names: list[str] = []

    def write(body: str, function: str = "load") -> str:
        name = f"user_data_{len(names)}_{tmp_path.name}"  # unique: Python caches what it imports
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body).lstrip())
        names.append(name)
        return f"py:{name}:{function}"

    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _default_determinism():
    """A campaign that trains switches on op determinism for the process; switch it back off."""
    yield
    if "keras" in sys.modules:
        from study.backend import set_determinism

        set_determinism(False)


def _arrays(n: int = 120) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return {"x": d.images[:n, ..., None] / 16.0, "y": d.target[:n]}


@pytest.mark.parametrize("layout", ["x-y", "train-test"])
def test_a_loader_loads_and_fingerprints_as_the_same_arrays_in_an_npz_file(
    tmp_path, write_loader, layout
):
    a = _arrays()
    arrays = (
        a
        if layout == "x-y"
        else {
            "x_train": a["x"][:90],
            "y_train": a["y"][:90],
            "x_test": a["x"][90:],
            "y_test": a["y"][90:],
        }
    )
    np.savez(tmp_path / "same.npz", **arrays)
    spec = write_loader(f"""
        import numpy as np

        def load():
            with np.load({str(tmp_path / "same.npz")!r}) as f:
                return {{k: f[k] for k in f.files}}
    """)
    from_loader = load_dataset(spec, folder=tmp_path)
    from_file = load_dataset(f"npz:{tmp_path / 'same.npz'}")
    assert from_loader.name == spec and from_loader.input_shape == (8, 8, 1)
    assert from_loader.fingerprint() == from_file.fingerprint()
    assert len(from_loader.x_test) == (30 if layout == "train-test" else 24)


def test_a_returned_dataset_keeps_its_test_split_and_is_split_again(tmp_path, write_loader):
    spec = write_loader("""
        from study.data import load_dataset

        def load():
            return load_dataset("digits", validation_fraction=0.5)
    """)
    given = load_dataset("digits", validation_fraction=0.5)
    data = load_dataset(spec, folder=tmp_path, validation_fraction=0.2)
    np.testing.assert_array_equal(data.x_test, given.x_test)
    examples = np.concatenate([given.y_train, given.y_val])
    assert len(data.x_val) == math.ceil(0.2 * len(examples))  # scikit-learn rounds up
    assert sorted(np.concatenate([data.y_train, data.y_val])) == sorted(examples)


def test_the_module_is_found_beside_the_campaign_file_and_stays_as_written(tmp_path, write_loader):
    spec = write_loader(DIGITS)
    with pytest.raises(DataError, match=r"module 'user_data_0_.*' not found \(on sys\.path\)"):
        load_dataset(spec)  # not on sys.path, and no folder given
    path = tmp_path / "c.toml"
    path.write_text(to_toml(tiny_campaign(data={"dataset": spec})))
    campaign = load_campaign(path)
    assert campaign.folder == tmp_path and campaign.resolved["data"]["dataset"] == spec
    assert isinstance(load_dataset(spec, folder=campaign.folder), Dataset)


@pytest.mark.slow
def test_validation_imports_the_module_but_not_keras(tmp_path, write_loader):
    import subprocess

    spec = write_loader(DIGITS)
    (tmp_path / "c.toml").write_text(to_toml(tiny_campaign(data={"dataset": spec})))
    code = (
        "import sys; from study.config import load_campaign; "
        f"load_campaign({str(tmp_path / 'c.toml')!r}); "
        f"assert {spec.split(':')[1]!r} in sys.modules; assert 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_a_tiny_campaign_runs_on_a_loader_and_refuses_changed_data_on_resume(
    tmp_path, write_loader, capsys
):
    rows = tmp_path / "rows.txt"
    rows.write_text("300")
    spec = write_loader(f"""
        import numpy as np
        from sklearn.datasets import load_digits

        def load():  # as many digits as rows.txt says
            n = int(open({str(rows)!r}).read())
            d = load_digits()
            return {{"x": d.data[:n].astype(np.float32) / 16, "y": d.target[:n]}}
    """)
    raw = tiny_campaign(
        campaign={"seeds": [0], "population": 1},
        data={"dataset": spec},
        train={"epochs": 1},
    )
    raw["space"] = {"dropout": [0.0]}
    path = tmp_path / "c.toml"
    path.write_text(to_toml(raw))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((out / "campaign.json").read_text())["data"]["dataset"] == spec
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data_fingerprint"] == load_dataset(spec, folder=tmp_path).fingerprint()

    capsys.readouterr()
    rows.write_text("299")  # the loader now returns other data
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"the data of py:user_data_0_\S+ changed since this campaign started", err)
    assert "Traceback" not in err


# (module body, function, message): {m} is the module's name; no body: the spec itself.
BAD = [
    (
        "module-missing",
        None,
        "py:no_such_module_xyz:load",
        r"module 'no_such_module_xyz' not found \(in .* or on sys\.path\)",
    ),
    (
        "package-missing",
        None,
        "py:no_such_package_xyz.sub:load",
        r"module 'no_such_package_xyz' not found",
    ),
    (
        "function-missing",
        "def load(): pass",
        "lod",
        r"module {m} \(.*{m}\.py\) has no function 'lod'",
    ),
    ("not-callable", "load = 3", "load", r"{m}\.load is a int, not a function"),
    (
        "import-raises",
        "x = 1\nraise RuntimeError('no\\ndata')",
        "load",
        r"importing {m} raised RuntimeError: no data \(at .*{m}\.py:2\)",
    ),
    (
        "syntax-error",
        "def load(:\n",
        "load",
        r"importing {m} raised SyntaxError: .*\(at .*{m}\.py:1\)",
    ),
    (
        "dependency-missing",
        "import no_such_dependency_xyz",
        "load",
        r"importing {m} raised ModuleNotFoundError: No module named 'no_such_dependency_xyz' \(at .*{m}\.py:1\)",
    ),
    (
        "function-raises",
        "def load():\n    return helper()\n\ndef helper():\n    raise ValueError('bad')",
        "load",
        r"load\(\) raised ValueError: bad \(at .*{m}\.py:5\)",
    ),
    (
        "raises-in-numpy",
        "import numpy as np\n\ndef load():\n    return np.loadtxt('/no/such/file.txt')",
        "load",
        r"load\(\) raised FileNotFoundError: .*file\.txt not found\. \(at .*{m}\.py:4\)",
    ),
    (
        "returns-none",
        "def load(): pass",
        "load",
        r"load\(\) returned NoneType, not a mapping with keys x, y or x_train",
    ),
    (
        "returns-tuple",
        "def load(): return [1], [0]",
        "load",
        r"load\(\) returned tuple, not a mapping",
    ),
    (
        "wrong-keys",
        "def load(): return {'features': 1, 3: 2}",
        "load",
        r"load\(\) returned a mapping with keys 'features', 3, not a mapping with keys x, y",
    ),
    (
        "ragged",
        "def load(): return {'x': [[1, 2], [3]], 'y': [0, 1]}",
        "load",
        r"load\(\) returned a value that is not an array \(setting an array element",
    ),
    (
        "strings",
        "def load(): return {'x': [['a', 'b']] * 20, 'y': [0, 1] * 10}",
        "load",
        r"training features are not numeric \(dtype <U1\)",
    ),
    (
        "scalar-labels",
        "def load(): return {'x': [[0.0, 1.0]] * 20, 'y': 3}",
        "load",
        r"training labels must be at least 1-D \(N,\), got shape \(\)",
    ),
    (
        "nan",
        "def load(): return {'x': [[0.0, float('nan')]] * 20, 'y': [0, 1] * 10}",
        "load",
        r"NaN or inf in the training features",
    ),
    (
        "one-class",
        "def load(): return {'x': [[0.0, 1.0]] * 20, 'y': [1] * 20}",
        "load",
        r"classification needs at least 2 classes, found only label 1",
    ),
    (
        "length-mismatch",
        "def load(): return {'x': [[0.0, 1.0]] * 20, 'y': [0, 1] * 9}",
        "load",
        r"training x has 20 examples but y has 18",
    ),
    (
        "test-shape",
        "def load(): return {'x_train': [[0.0, 1.0]] * 20, 'y_train': [0, 1] * 10, 'x_test': [[0.0]] * 2, 'y_test': [0, 1]}",
        "load",
        r"test examples have shape \(1,\), training ones \(2,\)",
    ),
]


@pytest.mark.parametrize("body, function, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_loader_exits_2_with_one_line_naming_data_dataset(
    tmp_path, write_loader, capsys, body, function, message
):
    spec = function if body is None else write_loader(body, function)
    name = spec.split(":")[1]
    path = tmp_path / "c.toml"
    path.write_text(to_toml(tiny_campaign(data={"dataset": spec})))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("study: error: ") == 1, err
    line = err[err.index("study: error: ") :].strip()
    assert "\n" not in line, line
    expected = rf"data\.dataset: {re.escape(spec)}: " + message.format(m=re.escape(name))
    assert re.search(expected, line), line
    assert not (out / "records.sqlite").exists()


def test_loader_problems_found_by_validation_are_config_errors(tmp_path, write_loader):
    spec = write_loader("def load(): pass", "missing")
    path = tmp_path / "c.toml"
    path.write_text(to_toml(tiny_campaign(data={"dataset": spec})))
    with pytest.raises(ConfigError, match=rf"c\.toml: data\.dataset: {re.escape(spec)}: module"):
        load_campaign(path)


@pytest.mark.parametrize("spec", ["py:", "py:module", "py::load", "py:my-data:load", "py:a.:f"])
def test_malformed_loader_specs_are_not_datasets(tmp_path, spec):
    path = tmp_path / "c.toml"
    path.write_text(to_toml(tiny_campaign(data={"dataset": spec})))
    with pytest.raises(
        ConfigError, match=r"data\.dataset: .* is not a dataset \(forms: .*py:MODULE"
    ):
        load_campaign(path)


def test_the_example_loader_gives_digit_images():
    campaign = load_campaign(Path(__file__).parents[2] / "examples" / "custom_data.toml")
    data = load_dataset(campaign.dataset, folder=campaign.folder)
    assert data.input_shape == (8, 8, 1) and data.n_outputs == 10 and len(data.x_test) == 297
