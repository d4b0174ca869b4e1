"""Tests for study.data: specs, conventions, splits and every DataError case."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from study import data as data_mod
from study.data import DEBIAN_FASHION_MNIST, DataError, Dataset, load_dataset

N_DIGITS = 1797


def blobs(n: int = 60, k: int = 3, f: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tiny classification data: n rows, k balanced classes, f float features."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return rng.normal(size=(n, f)) + y[:, None], y


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, dtype: str = ">u1") -> None:
    """Write an IDX file (gzipped when the name ends in .gz)."""
    raw = (
        bytes([0, 0, code, arr.ndim])
        + np.array(arr.shape, ">u4").tobytes()
        + arr.astype(dtype).tobytes()
    )
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def sorted_rows(a: np.ndarray) -> np.ndarray:
    flat = a.reshape(len(a), -1)
    return flat[np.lexsort(flat.T[::-1])]


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


# --- digits and splitting --------------------------------------------------------------


def test_digits_conventions(digits: Dataset) -> None:
    assert digits.name == "digits" and digits.task == "classification" and digits.n_outputs == 10
    assert digits.input_shape == (8, 8, 1)
    for x, y in (
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ):
        assert (
            x.dtype == np.float32
            and y.dtype == np.int64
            and x.shape[1:] == (8, 8, 1)
            and y.ndim == 1
        )
        assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) <= set(range(10))
    assert (len(digits.y_train), len(digits.y_val), len(digits.y_test)) == (1149, 288, 360)


def test_digits_splits_partition_the_data(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    original = np.column_stack([raw.images.reshape(N_DIGITS, -1) / 16.0, raw.target]).astype(
        np.float32
    )
    parts = [
        np.column_stack([x.reshape(len(x), -1), y])
        for x, y in (
            (digits.x_train, digits.y_train),
            (digits.x_val, digits.y_val),
            (digits.x_test, digits.y_test),
        )
    ]
    together = np.concatenate(parts).astype(np.float32)
    assert len(together) == N_DIGITS
    np.testing.assert_array_equal(
        sorted_rows(together), sorted_rows(original)
    )  # same multiset: disjoint


def test_stratified_splits(digits: Dataset) -> None:
    for y in (digits.y_val, digits.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.min() > 0 and counts.max() - counts.min() <= 2


def test_seeds_move_validation_not_test(digits: Dataset) -> None:
    same, other = load_dataset("digits"), load_dataset("digits", seed=1)
    np.testing.assert_array_equal(same.x_val, digits.x_val)
    np.testing.assert_array_equal(same.y_train, digits.y_train)
    assert not np.array_equal(other.x_val, digits.x_val)
    np.testing.assert_array_equal(other.x_test, digits.x_test)
    np.testing.assert_array_equal(other.y_test, digits.y_test)


def test_fingerprint_stable_sensitive_and_name_free(digits: Dataset, tmp_path: Path) -> None:
    fp = digits.fingerprint()
    assert len(fp) == 64 and fp == load_dataset("digits").fingerprint()
    assert fp != load_dataset("digits", seed=1).fingerprint()
    assert fp != load_dataset("digits", validation_fraction=0.25).fingerprint()
    x, y = blobs()
    for name in ("a.npz", "b.npz"):
        np.savez(tmp_path / name, x=x, y=y)
    assert (
        load_dataset(f"npz:{tmp_path / 'a.npz'}").fingerprint()
        == load_dataset(f"npz:{tmp_path / 'b.npz'}").fingerprint()
    )


def test_limit(digits: Dataset) -> None:
    small = load_dataset("digits", limit=100)
    assert (len(small.y_train), len(small.y_val)) == (80, 20)
    np.testing.assert_array_equal(small.y_test, digits.y_test)
    assert set(np.unique(small.y_train)) == set(range(10))
    assert load_dataset("digits", limit=10_000).fingerprint() == digits.fingerprint()
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load_dataset("digits", limit=0)


# --- npz, csv, idx ---------------------------------------------------------------------


def test_npz_single_layout(tmp_path: Path) -> None:
    x, y = blobs()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    d = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert (d.task, d.n_outputs, d.input_shape) == ("classification", 3, (4,))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (38, 10, 12)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    again = load_dataset(f"npz:{tmp_path / 'd.npz'}", seed=5)
    np.testing.assert_array_equal(again.x_test, d.x_test)  # fixed test hold-out


def test_npz_split_layout_uint8_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, x_test = (rng.integers(0, 256, size=(n, 5, 6), dtype=np.uint8) for n in (40, 10))
    y_train, y_test = np.arange(40) % 4, np.arange(10) % 4
    np.savez(tmp_path / "s.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    d = load_dataset(f"npz:{tmp_path / 's.npz'}")
    assert d.input_shape == (5, 6, 1) and d.n_outputs == 4
    np.testing.assert_allclose(d.x_test[..., 0], x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, y_test)
    assert (len(d.y_train), len(d.y_val)) == (32, 8)


def test_npz_regression(tmp_path: Path) -> None:
    x, _ = blobs()
    y = np.linspace(0, 1, 60).reshape(30, 2)
    np.savez(tmp_path / "r.npz", x=x[:30], y=y)
    d = load_dataset(f"npz:{tmp_path / 'r.npz'}")
    assert (d.task, d.n_outputs, d.y_train.dtype, d.y_train.shape[1]) == (
        "regression",
        2,
        np.float32,
        2,
    )


def write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    path.write_text(
        ",".join(header) + "\n" + "\n".join(",".join(f"{v:g}" for v in r) for r in rows) + "\n"
    )
    return path


def test_csv_label_column_and_last_column_default(tmp_path: Path) -> None:
    x, y = blobs(f=2)
    named = write_csv(
        tmp_path / "n.csv", ["a", "label", "b"], np.column_stack([x[:, 0], y, x[:, 1]])
    )
    last = write_csv(tmp_path / "l.csv", ["a", "b", "cls"], np.column_stack([x, y.astype(float)]))
    dn, dl = load_dataset(f"csv:{named}"), load_dataset(f"csv:{last}")
    for d in (dn, dl):
        assert (d.task, d.n_outputs, d.input_shape, d.y_test.dtype) == (
            "classification",
            3,
            (2,),
            np.int64,
        )
    np.testing.assert_array_equal(dn.y_test, dl.y_test)
    np.testing.assert_allclose(dn.x_test, dl.x_test, rtol=1e-5)


def test_csv_regression_target(tmp_path: Path) -> None:
    x, _ = blobs(f=2)
    path = write_csv(tmp_path / "r.csv", ["target", "a", "b"], np.column_stack([x[:, 0] * 0.37, x]))
    d = load_dataset(f"csv:{path}")
    assert (d.task, d.n_outputs, d.y_train.dtype, d.input_shape) == (
        "regression",
        1,
        np.float32,
        (2,),
    )


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(1)
    imgs = {
        s: rng.integers(0, 256, size=(n, 3, 4), dtype=np.uint8)
        for s, n in (("train", 20), ("t10k", 6))
    }
    labels = {"train": np.arange(20) % 2, "t10k": np.array([0, 1, 1, 0, 1, 0])}
    ext = ".gz" if gz else ""
    for s in ("train", "t10k"):
        write_idx(tmp_path / f"{s}-images-idx3-ubyte{ext}", imgs[s])
        write_idx(tmp_path / f"{s}-labels-idx1-ubyte{ext}", labels[s])
    d = load_dataset(f"idx:{tmp_path}")
    assert d.input_shape == (3, 4, 1) and (len(d.y_train), len(d.y_val), len(d.y_test)) == (
        16,
        4,
        6,
    )
    np.testing.assert_allclose(d.x_test[..., 0], imgs["t10k"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, labels["t10k"])
    np.testing.assert_array_equal(
        sorted_rows(np.concatenate([d.x_train, d.x_val])),
        sorted_rows(imgs["train"][..., None] / np.float32(255.0)),
    )


def test_idx_big_endian_types(tmp_path: Path) -> None:
    a = np.array([[1.5, -2.25], [3.0, 1e6]])
    write_idx(tmp_path / "f", a, code=0x0D, dtype=">f4")
    out = data_mod._parse_idx("idx:t", tmp_path / "f")
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


@pytest.mark.skipif(
    not Path(DEBIAN_FASHION_MNIST).exists(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_debian_fashion_mnist() -> None:
    d = load_dataset("fashion_mnist")
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (48_000, 12_000, 10_000)
    assert d.input_shape == (28, 28, 1) and d.n_outputs == 10 and d.x_train.dtype == np.float32
    assert 0.0 <= d.x_test.min() and d.x_test.max() == 1.0


# --- errors ----------------------------------------------------------------------------


def save(tmp_path: Path, **arrays: np.ndarray) -> str:
    np.savez(tmp_path / "e.npz", **arrays)
    return f"npz:{tmp_path / 'e.npz'}"


def test_unknown_spec() -> None:
    for spec in ("foo", "npz:", "parquet:x.parquet"):
        with pytest.raises(
            DataError, match=r"digits \| mnist \| fashion_mnist \| cifar10 \| idx:DIR"
        ):
            load_dataset(spec)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validation_fraction": 0.0},
        {"validation_fraction": 1.0},
        {"test_fraction": -0.1},
        {"test_fraction": 1.5},
    ],
)
def test_bad_fractions(kwargs: dict[str, float]) -> None:
    with pytest.raises(DataError, match=r"digits: \w+_fraction must be in \(0, 1\)"):
        load_dataset("digits", **kwargs)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    for kind in ("npz", "csv"):
        with pytest.raises(DataError, match=f"{kind}:.*file not found.*nope"):
            load_dataset(f"{kind}:{tmp_path / 'nope'}")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read .*bad.npz"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="cannot read .*empty.csv"):
        load_dataset(f"csv:{tmp_path / 'empty.csv'}")
    with pytest.raises(DataError, match="needs keys x, y"):
        load_dataset(save(tmp_path, a=np.zeros(3)))
    with pytest.raises(DataError, match="directory not found"):
        load_dataset(f"idx:{tmp_path / 'nodir'}")


def test_idx_missing_file_and_bad_magic(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 2, 2)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(DataError, match="missing IDX file t10k-images-idx3-ubyte"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is not an IDX file"):
        load_dataset(f"idx:{tmp_path}")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 2, 2)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1]))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(f"idx:{tmp_path}")


def test_empty_data(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b,label\n")
    with pytest.raises(DataError, match="h.csv: the training data is empty"):
        load_dataset(f"csv:{tmp_path / 'h.csv'}")
    with pytest.raises(DataError, match="training data is empty"):
        load_dataset(save(tmp_path, x=np.zeros((0, 3)), y=np.zeros(0, int)))


def test_length_mismatch(tmp_path: Path) -> None:
    x, y = blobs()
    with pytest.raises(DataError, match="e.npz: training x has 60 examples but y has 59"):
        load_dataset(save(tmp_path, x=x, y=y[:-1]))


def test_test_shape_mismatch(tmp_path: Path) -> None:
    x, y = blobs()
    with pytest.raises(DataError, match=r"test examples have shape \(5,\), training ones \(4,\)"):
        load_dataset(save(tmp_path, x_train=x, y_train=y, x_test=np.zeros((3, 5)), y_test=y[:3]))


def test_non_finite_values(tmp_path: Path) -> None:
    x, y = blobs()
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="e.npz: NaN or inf in the training features"):
        load_dataset(save(tmp_path, x=x, y=y))
    x, y = blobs()
    yf = y.astype(float)
    yf[0] = np.inf
    with pytest.raises(DataError, match="NaN or inf in the training labels"):
        load_dataset(save(tmp_path, x=x, y=yf))
    (tmp_path / "m.csv").write_text("a,label\n1,0\n,1\n")  # missing value -> NaN
    with pytest.raises(DataError, match="m.csv: NaN or inf"):
        load_dataset(f"csv:{tmp_path / 'm.csv'}")


def test_bad_labels(tmp_path: Path) -> None:
    x, y = blobs()
    with pytest.raises(DataError, match="class labels are negative"):
        load_dataset(save(tmp_path, x=x, y=y - 1))
    with pytest.raises(DataError, match="test class labels are not whole numbers"):
        load_dataset(save(tmp_path, x_train=x, y_train=y, x_test=x[:5], y_test=np.full(5, 1.5)))
    with pytest.raises(DataError, match="at least 2 classes, found only label 0"):
        load_dataset(save(tmp_path, x=x, y=np.zeros(60, int)))
    with pytest.raises(DataError, match="not numeric"):
        load_dataset(save(tmp_path, x=x, y=np.array(["a", "b", "c"] * 20)))
    (tmp_path / "s.csv").write_text("a,label\n1,cat\n2,dog\n")
    with pytest.raises(DataError, match="s.csv: non-numeric value"):
        load_dataset(f"csv:{tmp_path / 's.csv'}")


def test_test_label_outside_training_labels(tmp_path: Path) -> None:
    x, _ = blobs(n=40)
    y_train, y_test = np.arange(40) % 10, np.array([0, 12, 3])
    with pytest.raises(
        DataError, match="label 12 in the test split is outside the training labels 0..9"
    ):
        load_dataset(save(tmp_path, x_train=x, y_train=y_train, x_test=x[:3], y_test=y_test))


def test_split_too_small_to_stratify(tmp_path: Path) -> None:
    x, y = blobs()
    y[0] = 7  # a class with a single example
    with pytest.raises(
        DataError, match="too little data for the test split.*each class needs more"
    ):
        load_dataset(save(tmp_path, x=x, y=y))
    with pytest.raises(DataError, match="too little data for the limited training split"):
        load_dataset("digits", limit=5)


# --- keras.datasets (imports keras, hence TensorFlow: the slow part of this file) -------


@pytest.fixture(scope="module")
def keras():  # noqa: ANN201
    return pytest.importorskip("keras")


def test_keras_failed_download_is_a_data_error(keras, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    def fail() -> None:
        raise Exception(
            "URL fetch failure on https://example/mnist.npz: None -- [Errno -2] Name unknown"
        )

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail)
    with pytest.raises(
        DataError, match=r"mnist: keras.datasets.mnist.load_data\(\) failed .*URL fetch.*idx:DIR"
    ):
        load_dataset("mnist")
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fail)
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST", "/nonexistent/fashion-mnist")
    with pytest.raises(DataError, match="fashion_mnist: .*dataset-fashion-mnist.*idx:DIR"):
        load_dataset("fashion_mnist")


def test_keras_cifar10_labels_flattened(keras, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 4, 4, 3), dtype=np.uint8)
    y = (np.arange(30) % 3).reshape(-1, 1).astype(np.uint8)
    monkeypatch.setattr(
        keras.datasets.cifar10, "load_data", lambda: ((x[:20], y[:20]), (x[20:], y[20:]))
    )
    d = load_dataset("cifar10")
    assert d.input_shape == (4, 4, 3) and d.y_test.shape == (10,) and d.y_test.dtype == np.int64
    assert d.n_outputs == 3 and d.x_train.max() <= 1.0


def test_real_mnist_offline_loads_or_raises(keras) -> None:  # noqa: ANN001
    try:
        d = load_dataset("mnist", limit=100)
    except DataError as e:
        assert "mnist" in str(e) and "idx:DIR" in str(e)
    else:
        assert d.input_shape == (28, 28, 1) and len(d.y_test) == 10_000


def test_class_labels_that_would_build_an_absurd_output_layer(tmp_path: Path) -> None:
    x, y = blobs()  # labels 0, 1, 2
    with pytest.raises(DataError, match=r"class label 1000000000 is too large: .* at most 100,000"):
        load_dataset(save(tmp_path, x=x, y=np.where(y == 2, 10**9, y)))
    with pytest.raises(DataError, match=r"class label 18446744073709551615 is too large"):
        load_dataset(save(tmp_path, x=x, y=np.where(y == 2, 2**64 - 1, y).astype(np.uint64)))
    with pytest.raises(DataError, match=r"largest class label is 50 but there are only 3"):
        load_dataset(save(tmp_path, x=x, y=np.where(y == 2, 50, y)))
    rows = np.column_stack([x[:, 0], np.where(y == 2, 1e20, y)])
    with pytest.raises(DataError, match=r"training class label 1e\+20 is too large"):
        load_dataset(f"csv:{write_csv(tmp_path / 'big.csv', ['a', 'label'], rows)}")


def test_class_labels_with_a_few_unused_numbers_are_kept(tmp_path: Path) -> None:
    x, y = blobs()
    data = load_dataset(save(tmp_path, x=x, y=np.where(y == 2, 15, y)))  # 16 <= 2 * 3 + 10
    assert data.task == "classification" and data.n_outputs == 16
