import gzip

import numpy as np
import pytest
import torch

from compactnn.data import DataError, find_idx_dir, load_dataset, read_idx, write_idx
from compactnn.data import datasets as ds


def _write_fake_mnist(d, n_train=50, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    d.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(d / f"{split}-images-idx3-ubyte{ext}",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte{ext}",
                  rng.integers(0, 10, n, dtype=np.uint8))
    return d


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(60).reshape(3, 4, 5) - 20).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(p, arr)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz
    out = read_idx(p)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == arr.dtype


def test_idx_header_layout_matches_the_mnist_spec(tmp_path):
    p = tmp_path / "labels"
    write_idx(p, np.array([1, 2, 3], dtype=np.uint8))
    assert p.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])


def test_idx_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(short)
    trunc = tmp_path / "trunc"
    write_idx(trunc, np.zeros((10, 4, 4), dtype=np.uint8))
    trunc.write_bytes(trunc.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(trunc)
    gz = tmp_path / "x.gz"
    write_idx(gz, np.zeros((10, 4, 4), dtype=np.uint8))
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(DataError, match="gzip"):
        read_idx(gz)
    with pytest.raises(DataError, match="expected 3 dimensions"):
        labels = tmp_path / "labels"
        write_idx(labels, np.zeros(5, dtype=np.uint8))
        read_idx(labels, expect_ndim=3)


def test_load_dataset_from_generated_files(tmp_path):
    d = _write_fake_mnist(tmp_path / "fashion-mnist")
    assert find_idx_dir("fashion-mnist", tmp_path) == d
    data = load_dataset("fashion-mnist", data_dir=tmp_path, val_fraction=0.2)
    assert data.x_train.shape == (40, 784) and data.x_val.shape == (10, 784)
    assert data.x_test.shape == (20, 784) and data.in_features == 784
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert abs(data.x_train.mean().item()) < 1e-5 and abs(data.x_train.std().item() - 1) < 1e-2
    raw = load_dataset("mnist", data_dir=d, standardize=None)  # raw .idx files also accepted
    assert 0.0 <= raw.x_train.min() and raw.x_train.max() <= 1.0
    _write_fake_mnist(tmp_path / "raw", gz=False)
    assert load_dataset("mnist", data_dir=tmp_path / "raw").x_train.shape == (50, 784)


def test_load_dataset_detects_inconsistent_files(tmp_path):
    d = _write_fake_mnist(tmp_path / "m")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(49, dtype=np.uint8))
    with pytest.raises(DataError, match="50 images but 49 labels"):
        load_dataset("mnist", data_dir=d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.full(50, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="labels in .* are outside"):
        load_dataset("mnist", data_dir=d)
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03garbage"))
    with pytest.raises(DataError):
        load_dataset("mnist", data_dir=d)


def test_missing_data_gives_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="IDX files not found"):
        load_dataset("mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


def test_auto_falls_back_to_digits_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashion-mnist": str(tmp_path / "none")})
    monkeypatch.delenv("COMPACTNN_DATA", raising=False)
    data = load_dataset("auto")
    assert data.name == "digits" and data.notes and "fell back" in data.notes[0]
    assert data.x_train.shape[1] == 64 and len(data.x_train) + len(data.x_test) == 1797


def test_an_explicit_data_dir_is_authoritative_for_auto_and_digits(monkeypatch, tmp_path):
    """``auto`` with a ``data_dir`` is Fashion-MNIST found there, never a silent fall-back to
    digits (even when Fashion-MNIST is installed elsewhere); digits refuses a ``data_dir``."""
    elsewhere = _write_fake_mnist(tmp_path / "installed")
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashion-mnist": str(elsewhere)})
    monkeypatch.delenv("COMPACTNN_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=f"auto: Fashion-MNIST IDX files not found in {empty}"):
        load_dataset("auto", data_dir=empty)
    with pytest.raises(DataError, match="no fallback to digits"):
        ds.resolve_dataset("auto", empty)
    _write_fake_mnist(tmp_path / "mine" / "fashion-mnist", n_train=30)
    data = load_dataset("auto", data_dir=tmp_path / "mine")
    assert data.name == "fashion-mnist" and len(data.x_train) == 30 and not data.notes
    assert load_dataset("auto").source == str(elsewhere)  # no data_dir: the installed copy
    with pytest.raises(DataError, match="digits is embedded .* reads no files"):
        load_dataset("digits", data_dir=tmp_path / "mine")


def test_environment_variable_location(monkeypatch, tmp_path):
    _write_fake_mnist(tmp_path / "mnist")
    monkeypatch.setenv("COMPACTNN_DATA", str(tmp_path))
    assert load_dataset("mnist").source == str(tmp_path / "mnist")


def test_feature_standardization_and_limit(tmp_path):
    _write_fake_mnist(tmp_path / "mnist", n_train=100)
    data = load_dataset("mnist", data_dir=tmp_path, standardize="feature", limit_train=30)
    assert len(data.x_train) == 30
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(784), atol=1e-5, rtol=0)


def _write_fake_cifar(d, n=20, seed=0):
    from compactnn.data import write_cifar10_batch

    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar10_batch(d / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                            rng.integers(0, 10, n))
    return d


def test_cifar10_loader_on_generated_batches(tmp_path):
    d = _write_fake_cifar(tmp_path / "cifar-10-batches-py")
    data = load_dataset("cifar10", data_dir=tmp_path, standardize=None)
    assert data.x_train.shape == (100, 3072) and data.x_test.shape == (20, 3072)
    assert data.input_shape == (3, 32, 32)
    from compactnn.data import load_cifar10_arrays

    x_tr, y_tr, _, _ = load_cifar10_arrays(d)
    # channel-major layout of the official format: first 1024 values are the red plane
    np.testing.assert_allclose(data.x_train[0, :1024].numpy(), x_tr[0, 0].reshape(-1) / 255.0,
                               rtol=1e-6)
    gray = load_dataset("cifar10-gray", data_dir=d)
    assert gray.x_train.shape == (100, 1024)


def test_cifar10_errors(tmp_path):
    import pickle

    with pytest.raises(DataError, match="not found"):
        load_dataset("cifar10", data_dir=tmp_path)
    d = _write_fake_cifar(tmp_path / "c")
    (d / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", data_dir=d)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="refusing"):
        load_dataset("cifar10", data_dir=d)
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((5, 3072), np.uint8), b"labels": [11] * 5}, f)
    with pytest.raises(DataError, match="labels outside"):
        load_dataset("cifar10", data_dir=d)


def test_scattering_features_shape_and_cache(tmp_path):
    from compactnn.data.features import apply_features

    _write_fake_mnist(tmp_path / "mnist", n_train=12, n_test=5)
    data = load_dataset("mnist", data_dir=tmp_path, val_fraction=0.25)
    feats = apply_features(data, "scattering-j2", cache_dir=tmp_path / "cache", progress=False)
    assert feats.x_train.shape == (9, 81 * 7 * 7) and feats.x_val.shape == (3, 3969)
    assert feats.x_test.shape == (5, 3969) and feats.in_features == 3969
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    again = apply_features(data, "scattering-j2", cache_dir=tmp_path / "cache", progress=False)
    torch.testing.assert_close(again.x_test, feats.x_test)
    with pytest.raises(ValueError, match="unknown features"):
        apply_features(data, "sift")


def test_auto_refuses_to_guess_what_idx_files_directly_in_data_dir_are(tmp_path):
    """MNIST and Fashion-MNIST share file names: ``auto`` with MNIST files in ``data_dir``
    used to train on them and record 'fashion-mnist' (issue 10, defect 5)."""
    d = _write_fake_mnist(tmp_path / "mnist-here")
    with pytest.raises(DataError, match="cannot tell which they are: name the data set"):
        load_dataset("auto", data_dir=d)
    assert load_dataset("mnist", data_dir=d).name == "mnist"  # named: read as asked


def _idx_split(d, split, images, labels):
    write_idx(d / f"{split}-images-idx3-ubyte.gz", images)
    write_idx(d / f"{split}-labels-idx1-ubyte.gz", labels)


def test_data_no_model_can_learn_from_is_a_clear_error_naming_the_source(tmp_path):
    d = _write_fake_mnist(tmp_path / "m")
    _idx_split(d, "train", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=f"the train split of {d} has no examples"):
        load_dataset("mnist", data_dir=d)
    _idx_split(d, "train", np.full((10, 28, 28), 7, np.uint8), np.arange(10, dtype=np.uint8))
    for standardize in ("global", "feature", None):  # std 0 used to give NaN inputs
        with pytest.raises(DataError, match=f"every training input in {d} is the same "
                                            r"constant \(7\): std 0"):
            load_dataset("mnist", data_dir=d, standardize=standardize)
    _idx_split(d, "t10k", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    _write_fake_mnist(d, n_train=10)
    _idx_split(d, "t10k", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(DataError, match="the test split .* has no examples"):
        load_dataset("mnist", data_dir=d)
    _write_fake_mnist(d, n_train=3)
    with pytest.raises(DataError, match="val_fraction 0.9 leaves no training examples"):
        load_dataset("mnist", data_dir=d, val_fraction=0.9)


@pytest.mark.parametrize("labels,match", [
    ("abcde", "flat list of integers"),
    ([0.5, 1.5, 2.0, 3.0, 4.0], "flat list of integers"),  # used to be truncated silently
    ([[0], [1, 2], [3], [4], [5]], "not an array|flat list of integers"),
    ({"a": 1}, "flat list of integers"),
    ([0, 1, 2], "5 images but 3 labels"),
])
def test_corrupt_cifar_label_containers_name_the_file(tmp_path, labels, match):
    import pickle

    d = _write_fake_cifar(tmp_path / "c")
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((5, 3072), np.uint8), b"labels": labels}, f)
    with pytest.raises(DataError, match=f"data_batch_2: .*({match})"):
        load_dataset("cifar10", data_dir=d)
