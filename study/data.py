"""Dataset loading, validation and train/validation/test splitting.

Specs: ``digits | mnist | fashion_mnist | cifar10 | idx:DIR | npz:FILE | csv:FILE |
py:MODULE:FUNCTION`` (the user's loader: it returns the arrays an npz file holds, as a mapping,
or a `Dataset`). Features are float32 (images (N, H, W, C) in [0, 1]); classification labels are
int64 in [0, n_outputs); regression targets are float32 (N,) or (N, k).
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.user_code import (
    UserCodeError,
    find_function,
    importable_from,
    is_import_path,
    one_line,
    raised,
)

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "DataError",
    "Dataset",
    "find_loader",
    "is_loader_spec",
    "load_dataset",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

SPEC_FORMS = (
    "digits | mnist | fashion_mnist | cifar10 | idx:DIR | npz:FILE | csv:FILE | py:MODULE:FUNCTION"
)
_KERAS_NAMES = ("mnist", "fashion_mnist", "cifar10")
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# IDX type byte -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# The keys of an npz file, and of the mapping a py: loader returns.
_SPLIT_KEYS = "x, y or x_train, y_train, x_test, y_test"
_HOLDOUT_SEED = 0  # fixed, so a held-out test split never changes between campaigns
# Class labels are 0 to K-1 (K output units): K at most MAX_CLASSES, and at most twice the number
# of distinct labels plus 10, so that a stray label (1e9 among 0s and 1s) builds no absurd layer.
MAX_CLASSES = 100_000

# (x_train, y_train, x_test, y_test); x_test/y_test are None when test must be held out.
_Raw = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


class DataError(ValueError):
    """Bad or unreadable data; the message names the dataset spec or file and what is wrong."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated dataset with fixed train/validation/test splits."""

    name: str
    task: str  # "classification" | "regression"
    n_outputs: int
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 over every split's shape, dtype and bytes (the name is not included)."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(f"{a.shape}|{a.dtype.str}|".encode())
            h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()


def load_dataset(
    spec: str,
    *,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    limit: int | None = None,
    folder: str | Path | None = None,
) -> Dataset:
    """Load ``spec``, validate it and split it; raises DataError on any data problem.

    `folder`: where a ``py:`` spec's module is looked for before sys.path (the campaign file's
    folder)."""
    for what, frac in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0 < frac < 1:
            raise DataError(f"{spec}: {what} must be in (0, 1), got {frac!r}")
    if limit is not None and limit < 1:
        raise DataError(f"{spec}: limit must be a positive integer, got {limit!r}")

    x_tr, y_tr, x_te, y_te = _read(spec, folder)
    # what messages name: a loader is named as the campaign key that gives it
    label = f"data.dataset: {spec}" if is_loader_spec(spec) else spec
    given_test = x_te is not None
    parts = [("training", x_tr, y_tr)] + ([("test", x_te, y_te)] if given_test else [])
    for part, x, y in parts:
        _check_xy(label, part, x, y)
    # Integer images are scaled when the training images are; test follows the same rule.
    scale = x_tr.ndim >= 3 and x_tr.dtype.kind in "iu" and x_tr.max() > 1
    x_tr, x_te = _features(x_tr, scale), (_features(x_te, scale) if given_test else None)
    if x_te is not None and x_te.shape[1:] != x_tr.shape[1:]:
        raise DataError(
            f"{label}: test examples have shape {x_te.shape[1:]}, training ones {x_tr.shape[1:]}"
        )
    for part, x in (("training", x_tr), ("test", x_te)):
        if x is not None and not np.isfinite(x).all():
            raise DataError(f"{label}: NaN or inf in the {part} features")

    classification = y_tr.dtype.kind in "iub"
    if classification:
        y_tr = _labels(label, "training", y_tr)
        classes = np.unique(y_tr)
        if len(classes) < 2:
            raise DataError(
                f"{label}: classification needs at least 2 classes, found only label {classes[0]}"
            )
        if given_test:
            y_te = _labels(label, "test", y_te)
            unseen = np.setdiff1d(np.unique(y_te), classes)
            if len(unseen):
                raise DataError(
                    f"{label}: label {unseen[0]} in the test split is outside "
                    f"the training labels {_describe(classes)}"
                )
        n_outputs = int(classes[-1]) + 1
        if n_outputs > 2 * len(classes) + 10:
            raise DataError(
                f"{label}: the largest class label is {classes[-1]} but there are only "
                f"{len(classes)} distinct labels {_describe(classes)}; number the classes "
                "0 to K-1 (K may be at most twice the number of classes plus 10)"
            )
    else:
        y_tr = y_tr.astype(np.float32)
        y_te = y_te.astype(np.float32) if given_test else None
        n_outputs = 1 if y_tr.ndim == 1 else int(np.prod(y_tr.shape[1:]))

    if not given_test:  # hold out the test split with a fixed seed
        rest, test = _split(label, "test", y_tr, test_fraction, _HOLDOUT_SEED, classification)
        x_te, y_te, x_tr, y_tr = x_tr[test], y_tr[test], x_tr[rest], y_tr[rest]
    if limit is not None and limit < len(y_tr):
        keep, _ = _split(label, "limited training", y_tr, len(y_tr) - limit, seed, classification)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    train, val = _split(label, "validation", y_tr, validation_fraction, seed, classification)
    assert x_te is not None and y_te is not None
    return Dataset(
        name=spec,
        task="classification" if classification else "regression",
        n_outputs=n_outputs,
        x_train=x_tr[train],
        y_train=y_tr[train],
        x_val=x_tr[val],
        y_val=y_tr[val],
        x_test=x_te,
        y_test=y_te,
    )


# --- validation and conversion helpers -------------------------------------------------


def _check_xy(spec: str, part: str, x: np.ndarray, y: np.ndarray) -> None:
    """Empty data, length mismatch, non-numeric or non-finite values."""
    if x.ndim < 2:
        raise DataError(
            f"{spec}: {part} features must be at least 2-D (N, ...), got shape {x.shape}"
        )
    if y.ndim < 1:
        raise DataError(f"{spec}: {part} labels must be at least 1-D (N,), got shape {y.shape}")
    if len(x) == 0 or len(y) == 0:
        raise DataError(f"{spec}: the {part} data is empty")
    if len(x) != len(y):
        raise DataError(f"{spec}: {part} x has {len(x)} examples but y has {len(y)}")
    for what, a in (("features", x), ("labels", y)):
        if a.dtype.kind not in "iubf":
            raise DataError(f"{spec}: {part} {what} are not numeric (dtype {a.dtype})")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{spec}: NaN or inf in the {part} labels")


def _features(x: np.ndarray, scale: bool) -> np.ndarray:
    """float32, integer images scaled by 1/255 when `scale`; (N, H, W) gets a channel axis."""
    scale = scale and x.dtype.kind in "iu"
    x = x.astype(np.float32)
    if scale:
        x /= 255.0
    return x[..., None] if x.ndim == 3 else x


def _labels(spec: str, part: str, y: np.ndarray) -> np.ndarray:
    """Classification labels as int64 (N,); whole numbers >= 0."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(
            f"{spec}: {part} class labels must have shape (N,) or (N, 1), got {y.shape}"
        )
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise DataError(f"{spec}: {part} class labels are not whole numbers")
    if y.min() < 0:
        raise DataError(f"{spec}: {part} class labels are negative (min {y.min()})")
    if y.max() >= MAX_CLASSES:
        raise DataError(
            f"{spec}: {part} class label {y.max()} is too large: classes are numbered 0 to K-1, "
            f"with K at most {MAX_CLASSES:,}"
        )
    return y.astype(np.int64)


def _describe(classes: np.ndarray) -> str:
    lo, hi = int(classes[0]), int(classes[-1])
    return f"{lo}..{hi}" if hi - lo + 1 == len(classes) else str(classes.tolist())


def _split(
    spec: str, what: str, y: np.ndarray, size: float | int, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (kept, split off), stratified on y when asked."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(
            np.arange(len(y)), test_size=size, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as e:
        kind = f" into {len(np.unique(y))} classes" if stratify else ""
        raise DataError(
            f"{spec}: too little data for the {what} split ({len(y)} examples{kind}, "
            f"split size {size}): {'each class needs more examples' if stratify else e}"
        ) from e


# --- readers ---------------------------------------------------------------------------


def _read(spec: str, folder: str | Path | None) -> _Raw:
    kind, sep, arg = spec.partition(":")
    if kind == "py" and is_loader_spec(spec):
        return _read_py(spec, folder)
    if spec == "digits":
        return _read_digits()
    if spec == "fashion_mnist" and Path(DEBIAN_FASHION_MNIST).is_dir():
        return _read_idx(spec, Path(DEBIAN_FASHION_MNIST))
    if spec in _KERAS_NAMES:
        return _read_keras(spec)
    if sep and arg:
        path = Path(arg).expanduser()
        if kind == "idx":
            return _read_idx(spec, path)
        if kind in ("npz", "csv"):
            if not path.is_file():
                raise DataError(f"{spec}: file not found: {path}")
            return _read_npz(spec, path) if kind == "npz" else _read_csv(spec, path)
    raise DataError(f"unknown dataset spec {spec!r}; valid forms: {SPEC_FORMS}")


def _read_digits() -> _Raw:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[..., None], d.target.astype(np.int64), None, None


def _read_keras(name: str) -> _Raw:
    """keras.datasets.<name>.load_data(); a failed download becomes a DataError."""
    try:
        import keras  # lazy: pulls in the backend (TensorFlow)

        (x_tr, y_tr), (x_te, y_te) = getattr(keras.datasets, name).load_data()
    except Exception as e:
        hint = (
            f"install Debian's dataset-fashion-mnist package ({DEBIAN_FASHION_MNIST}) "
            "or use idx:DIR"
            if name == "fashion_mnist"
            else "use idx:DIR with MNIST-format IDX files, or npz:FILE"
        )
        raise DataError(
            f"{name}: keras.datasets.{name}.load_data() failed "
            f"({type(e).__name__}: {one_line(e)}); offline, {hint}"
        ) from e
    return np.asarray(x_tr), np.asarray(y_tr), np.asarray(x_te), np.asarray(y_te)


def _read_idx(spec: str, folder: Path) -> _Raw:
    if not folder.is_dir():
        raise DataError(f"{spec}: directory not found: {folder}")
    arrays = []
    for name in _IDX_FILES:
        plain, gz = folder / name, folder / f"{name}.gz"
        if not (plain.is_file() or gz.is_file()):
            raise DataError(f"{spec}: missing IDX file {name} (or {name}.gz) in {folder}")
        arrays.append(_parse_idx(spec, plain if plain.is_file() else gz))
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _parse_idx(spec: str, path: Path) -> np.ndarray:
    """Parse one IDX file: 2 zero bytes, type byte, ndim byte, big-endian uint32 dims, data."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{spec}: cannot read {path}: {one_line(e)}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{spec}: {path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], ">u4")) if len(raw) >= header else ()
    if len(dims) != ndim or len(raw) != header + int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{spec}: {path} is truncated or has the wrong size for its header")
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _read_npz(spec: str, path: Path) -> _Raw:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # unreadable, not an npz at all, a damaged zip, pickled objects
        # np.load reads what is no zip archive as a pickle, and names pickles in its message
        zipped = isinstance(e, OSError) or zipfile.is_zipfile(path)
        why = one_line(e) if zipped else "not a zip archive, as numpy.savez writes"
        raise DataError(f"{spec}: cannot read {path} as .npz: {why}") from e
    raw = _named_splits(arrays)
    if raw is None:
        found = sorted(arrays) or "none"
        raise DataError(f"{spec}: {path} needs keys {_SPLIT_KEYS}; found {found}")
    return raw


def _named_splits(arrays: Mapping[Any, Any]) -> _Raw | None:
    """The splits under the keys of an npz file (`_SPLIT_KEYS`); None when they are not there."""
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
    if {"x", "y"} <= arrays.keys():
        return arrays["x"], arrays["y"], None, None
    return None


def _read_csv(spec: str, path: Path) -> _Raw:
    """Header row; label column `label`, `target` or the last one; whole numbers become int."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as e:  # empty file, bad encoding, ragged rows
        raise DataError(f"{spec}: cannot read {path} as CSV: {one_line(e)}") from e
    if len(df.columns) < 2:
        raise DataError(
            f"{spec}: {path} needs a header row with at least one feature and one label column"
        )
    label = next((c for c in ("label", "target") if c in df.columns), df.columns[-1])
    try:
        x = df.drop(columns=[label]).to_numpy(dtype=np.float32)
        y = df[label].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as e:
        raise DataError(f"{spec}: non-numeric value in {path}: {one_line(e)}") from e
    if len(y) and np.isfinite(y).all() and np.all(np.mod(y, 1) == 0):
        y = _labels(spec, "training", y)
    return x, y, None, None


# --- the user's loader: py:MODULE:FUNCTION --------------------------------------------------


def is_loader_spec(spec: str) -> bool:
    """Whether `spec` is ``py:package.module:function``."""
    kind, _, path = spec.partition(":")
    return kind == "py" and is_import_path(path)


def find_loader(spec: str, folder: str | Path | None = None) -> Callable[[], Any]:
    """Import the function a ``py:`` spec names (its module looked for in `folder`, then on
    sys.path) without calling it; DataError naming `data.dataset` when it cannot."""
    try:
        return find_function(spec.partition(":")[2], folder)
    except UserCodeError as e:
        raise DataError(f"data.dataset: {spec}: {e}") from e


def _read_py(spec: str, folder: str | Path | None) -> _Raw:
    """Call the user's loader (with no arguments) and take the splits it returns."""
    function = find_loader(spec, folder)
    name = spec.rpartition(":")[2]
    with importable_from(folder):  # for modules the loader imports as it runs
        try:
            returned = function()
        except Exception as e:
            raise DataError(_raised(spec, f"{name}()", e)) from e
    if isinstance(returned, Dataset):  # its training and validation examples are split again
        x = np.concatenate([returned.x_train, returned.x_val])
        y = np.concatenate([returned.y_train, returned.y_val])
        return x, y, returned.x_test, returned.y_test
    expected = f"a mapping with keys {_SPLIT_KEYS} (arrays), or a study.data.Dataset"
    if not isinstance(returned, Mapping):
        raise DataError(
            f"data.dataset: {spec}: {name}() returned {type(returned).__name__}, not {expected}"
        )
    raw = _named_splits(returned)
    if raw is None:
        keys = sorted(map(repr, returned)) or ["none"]
        raise DataError(
            f"data.dataset: {spec}: {name}() returned a mapping with keys {', '.join(keys)}, "
            f"not {expected}"
        )
    try:
        x_tr, y_tr, x_te, y_te = (None if a is None else np.asarray(a) for a in raw)
    except (ValueError, TypeError) as e:  # ragged lists, objects numpy cannot convert
        raise DataError(
            f"data.dataset: {spec}: {name}() returned a value that is not an array ({one_line(e)})"
        ) from e
    return x_tr, y_tr, x_te, y_te


def _raised(spec: str, what: str, error: Exception) -> str:
    return f"data.dataset: {spec}: {raised(what, error)}"
