"""CIFAR-10 from its official "python version" (``cifar-10-batches-py/``: ``data_batch_1`` …
``data_batch_5``, ``test_batch``; each a pickled dict with ``data`` (10000×3072 uint8, the
1024 red, then green, then blue values of each 32×32 image, row-major) and ``labels``).

The pickles are read with a restricted unpickler that only reconstructs plain containers and
numpy arrays, so a malicious file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from .idx import DataError

__all__ = ["find_cifar10_dir", "load_cifar10_arrays", "write_cifar10_batch"]

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"CIFAR-10 batch not found: {path}")
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can fail in many ways: name the file
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})"
                        ) from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{path}: missing 'data' or 'labels'")
    try:
        data, labels = np.asarray(data), np.asarray(labels)
    except (ValueError, TypeError) as e:  # ragged or odd containers
        raise DataError(f"{path}: 'data' or 'labels' is not an array ({e})") from None
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise DataError(f"{path}: labels must be a flat list of integers, got {labels.dtype} "
                        f"of shape {labels.shape}")
    labels = labels.astype(np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: data must be uint8 of shape (N, 3072), got {data.dtype} "
                        f"{data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels outside [0, 9]")
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar10_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """``data_dir`` (or ``data_dir/cifar-10-batches-py``), else ``$COMPACTNN_DATA/cifar10``."""
    if data_dir is not None:
        cands = [Path(data_dir), Path(data_dir) / "cifar-10-batches-py"]
    else:
        root = os.environ.get("COMPACTNN_DATA")
        cands = [] if not root else [Path(root) / "cifar10",
                                     Path(root) / "cifar10" / "cifar-10-batches-py"]
    for d in cands:
        if (d / TEST_BATCH).is_file() and all((d / b).is_file() for b in TRAIN_BATCHES):
            return d
    return None


def load_cifar10_arrays(directory: str | os.PathLike) -> tuple[np.ndarray, ...]:
    """``(x_train (50000,3,32,32) uint8, y_train, x_test (10000,3,32,32), y_test)``."""
    directory = Path(directory)
    parts = [_read_batch(directory / b) for b in TRAIN_BATCHES]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(directory / TEST_BATCH)
    return x_tr, y_tr, x_te, y_te


def write_cifar10_batch(path: str | os.PathLike, images: np.ndarray, labels) -> None:
    """Write a batch in the official format (used by the tests to make small files)."""
    images = np.asarray(images, dtype=np.uint8).reshape(len(images), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"compactnn", b"data": images,
                     b"labels": [int(v) for v in labels]}, f)
