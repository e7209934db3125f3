"""Data sets, registered (``kind="dataset"``), each declaring its task, classes and input shape.

IDX (Fashion-MNIST, MNIST) and CIFAR-10 python batches are read from disk; scikit-learn's
digits are embedded (they read no files, so a ``data_dir`` for them is an error); ``auto``
resolves to Fashion-MNIST when installed, else digits (and says so) — with an explicit
``data_dir``, to Fashion-MNIST in ``data_dir/fashion-mnist`` or an error (IDX files directly in
``data_dir`` could be MNIST: same file names). :func:`load_dataset` returns in-memory
tensors; :mod:`compactnn.data.loaders` batches them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._optional import require
from ..registry import get, registry
from .augment import check_augmentation
from .cifar import find_cifar10_dir, load_cifar10_arrays
from .idx import DataError, read_idx

__all__ = ["Dataset", "DatasetSpec", "check_arrays", "find_idx_dir", "load_dataset",
           "load_idx_dataset", "register_dataset", "resolve_dataset"]

#: where Debian's packages install the data sets (``apt install dataset-fashion-mnist``)
SYSTEM_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist",
               "mnist": "/usr/share/datasets/mnist"}
_IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
@dataclass
class Dataset:
    """Tensors ready for training: features ``float32 (N, in_features)``; targets as the task
    wants them (classification: ``int64 (N,)``)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    source: str
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)
    task: str = "classification"
    #: an augmentation of :data:`~compactnn.data.augment.AUGMENTATIONS` that
    #: :func:`~compactnn.data.in_memory_loaders` applies to every training batch (``None``: none)
    augment: str | None = None

    @property
    def in_features(self) -> int:
        return int(np.prod(self.input_shape))

    def summary(self) -> str:
        val = 0 if self.x_val is None else len(self.x_val)
        return (f"{self.name}: {len(self.x_train)} train / {val} val / {len(self.x_test)} test, "
                f"{self.in_features} features, {self.num_classes} classes (from {self.source})")


def _find_file(directory: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for suffix in (".gz", ""):
            p = directory / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def find_idx_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """First directory holding the four IDX files of ``name``.

    An explicit ``data_dir`` is authoritative: only ``data_dir`` and ``data_dir/name`` are
    searched. Otherwise ``$COMPACTNN_DATA/name`` and the Debian install location are.
    """
    if data_dir is not None:
        candidates = [Path(data_dir), Path(data_dir) / name]
    else:
        candidates = []
        if os.environ.get("COMPACTNN_DATA"):
            candidates.append(Path(os.environ["COMPACTNN_DATA"]) / name)
        if name in SYSTEM_DIRS:
            candidates.append(Path(SYSTEM_DIRS[name]))
    for d in candidates:
        if d.is_dir() and all(_find_file(d, s) for s in _IDX_FILES.values()):
            return d
    return None


def load_idx_dataset(directory: str | os.PathLike, *, name: str = "idx",
                     num_classes: int = 10) -> tuple[np.ndarray, ...]:
    """Read and cross-check the four IDX files in ``directory``.

    Returns ``(x_train, y_train, x_test, y_test)`` as uint8 images ``(N, H, W)`` and int64 labels.
    """
    directory = Path(directory)
    paths = {}
    for key, stems in _IDX_FILES.items():
        p = _find_file(directory, stems)
        if p is None:
            raise DataError(f"{name}: no {stems[0]}[.gz] in {directory}")
        paths[key] = p
    arrays = {}
    for key, p in paths.items():
        arrays[key] = read_idx(p, expect_ndim=3 if key.endswith("images") else 1)
    for split in ("train", "test"):
        xi, yl = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(xi) != len(yl):
            raise DataError(f"{name}: {split} has {len(xi)} images but {len(yl)} labels "
                            f"({paths[f'{split}_images']}, {paths[f'{split}_labels']})")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"{name}: train and test images differ in shape")
    out = (arrays["train_images"], arrays["train_labels"].astype(np.int64),
           arrays["test_images"], arrays["test_labels"].astype(np.int64))
    check_arrays(name, str(directory), *out, num_classes)
    return out


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: what it is (task, classes, input shape) and how to read it.

    ``load(name, data_dir)`` returns ``(x_train, y_train, x_test, y_test, scale, source)``
    with raw inputs (divided by ``scale`` to reach [0, 1]); ``resolve(data_dir)`` (aliases such
    as ``auto``) returns ``(concrete name, notes)`` instead."""

    name: str
    task: str
    num_classes: int
    input_shape: tuple[int, ...]
    description: str
    load: Callable[[str, str | os.PathLike | None], tuple] | None = None
    resolve: Callable[[str | os.PathLike | None], tuple[str, list[str]]] | None = None
    #: a data set too large for memory: ``stream(name, data_dir)`` returns a
    #: :class:`~compactnn.data.youtube8m.StreamingData` (files, sizes, ``loaders()``)
    stream: Callable[[str, str | os.PathLike | None], object] | None = None

    @property
    def in_features(self) -> int:
        return int(np.prod(self.input_shape))


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    return registry("dataset").register(spec.name, spec)


def resolve_dataset(name: str, data_dir: str | os.PathLike | None = None
                    ) -> tuple[DatasetSpec, list[str]]:
    """The registered spec of ``name`` with aliases (``auto``) resolved, and notes saying so."""
    spec = get("dataset", name)
    notes: list[str] = []
    while spec.resolve is not None:
        concrete, more = spec.resolve(data_dir)
        spec, notes = get("dataset", concrete), notes + more
    return spec, notes


def _load_idx(name, data_dir):
    d = find_idx_dir(name, data_dir)
    if d is None:
        if data_dir is not None:
            where = [str(data_dir), str(Path(data_dir) / name)]
        else:
            where = [f"$COMPACTNN_DATA/{name}"] + ([SYSTEM_DIRS[name]]
                                                   if name in SYSTEM_DIRS else [])
        hint = " (apt install dataset-fashion-mnist)" if name == "fashion-mnist" else ""
        raise DataError(f"{name}: IDX files not found in any of {', '.join(where)}{hint}")
    return (*load_idx_dataset(d, name=name), 255.0, str(d))


def _load_cifar10(name, data_dir):
    d = find_cifar10_dir(data_dir)
    if d is None:
        where = (f"{data_dir} (or its cifar-10-batches-py/)" if data_dir is not None
                 else "$COMPACTNN_DATA/cifar10")
        raise DataError(f"{name}: CIFAR-10 python batches (data_batch_1..5, test_batch) "
                        f"not found in {where}")
    x_tr, y_tr, x_te, y_te = load_cifar10_arrays(d)
    if name == "cifar10-gray":  # luminance, as in the LDR paper's grayscale CIFAR-10
        w = np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]
        x_tr, x_te = (x_tr * w).sum(1), (x_te * w).sum(1)
    return x_tr, y_tr, x_te, y_te, 255.0, str(d)


def _load_digits(name=None, data_dir=None):
    if data_dir is not None:  # --data-dir is authoritative: never silently ignored
        raise DataError(f"digits is embedded in scikit-learn and reads no files, so data_dir "
                        f"{str(data_dir)!r} would be ignored: drop data_dir, or name the data "
                        "set that lives there")
    load_digits = require("sklearn.datasets", what="the digits data set").load_digits
    train_test_split = require("sklearn.model_selection",
                               what="the digits data set").train_test_split
    d = load_digits()
    x, y = d.images.astype(np.float32), d.target.astype(np.int64)
    # digits has no official split: a fixed stratified 75/25 split
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_tr, y_tr, x_te, y_te, 16.0, "scikit-learn digits"


def _resolve_auto(data_dir):
    if data_dir is not None:  # an explicit directory is authoritative: no fallback, no guess
        d = Path(data_dir)
        if find_idx_dir("fashion-mnist", d / "fashion-mnist") is not None:
            return "fashion-mnist", []
        if find_idx_dir("fashion-mnist", d) is not None:
            raise DataError(f"auto: {d} holds IDX files, but Fashion-MNIST and MNIST use the same "
                            "file names, so auto cannot tell which they are: name the data set "
                            "(fashion-mnist or mnist)")
        raise DataError(f"auto: Fashion-MNIST IDX files not found in {d / 'fashion-mnist'}, and "
                        "data_dir is authoritative (no fallback to digits): fix data_dir, or "
                        "name the data set")
    if find_idx_dir("fashion-mnist") is not None:
        return "fashion-mnist", []
    return "digits", ["Fashion-MNIST not found (install Debian's dataset-fashion-mnist or "
                      "pass --data-dir); fell back to scikit-learn digits"]


def _youtube8m(name, data_dir, level):
    from .youtube8m import youtube8m_data

    return youtube8m_data(name, data_dir, level)


def check_arrays(name: str, source: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray,
                 y_te: np.ndarray, num_classes: int | None) -> None:
    """Refuse data no model can learn from, naming where it came from: an empty split, labels
    that are not integers in ``[0, num_classes)`` (classification), non-finite inputs, or a
    training set whose inputs are all the same (std 0: nothing to learn, nothing to
    standardize by)."""
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if len(x) == 0:
            raise DataError(f"{name}: the {split} split of {source} has no examples")
        if len(x) != len(y):
            raise DataError(f"{name}: the {split} split of {source} has {len(x)} inputs but "
                            f"{len(y)} targets")
        if num_classes is not None:
            if not np.issubdtype(y.dtype, np.integer):
                raise DataError(f"{name}: {split} labels in {source} are {y.dtype}, not integers")
            if y.min() < 0 or y.max() >= num_classes:
                raise DataError(f"{name}: {split} labels in {source} are outside "
                                f"[0, {num_classes - 1}] (min {y.min()}, max {y.max()})")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(f"{name}: the {split} inputs in {source} contain NaN or infinity")
    if np.ptp(x_tr.reshape(len(x_tr), -1)) == 0:
        raise DataError(f"{name}: every training input in {source} is the same constant "
                        f"({x_tr.flat[0]}): std 0, nothing to learn or standardize by")


for _spec in (
    DatasetSpec("fashion-mnist", "classification", 10, (28, 28),
                "Zalando's 28×28 grayscale clothing images (IDX; Debian dataset-fashion-mnist)",
                load=_load_idx),
    DatasetSpec("mnist", "classification", 10, (28, 28), "28×28 handwritten digits (IDX)",
                load=_load_idx),
    DatasetSpec("cifar10", "classification", 10, (3, 32, 32),
                "32×32 colour images (the official python batches)", load=_load_cifar10),
    DatasetSpec("cifar10-gray", "classification", 10, (32, 32),
                "CIFAR-10 as luminance, the LDR paper's grayscale variant", load=_load_cifar10),
    DatasetSpec("digits", "classification", 10, (8, 8),
                "scikit-learn's 8×8 digits (embedded; fixed stratified 75/25 split)",
                load=_load_digits),
    DatasetSpec("youtube8m-video", "multilabel", 3862, (1152,),
                "YouTube-8M 2018 video level: mean rgb + audio, 3,862 labels (TFRecords in "
                "data_dir, streamed)", stream=lambda n, d: _youtube8m(n, d, "video")),
    DatasetSpec("youtube8m-frame", "multilabel", 3862, (300, 1153),
                "YouTube-8M 2018 frame level: 300 frames of rgb + audio + mask, 3,862 labels "
                "(TFRecords in data_dir, streamed)", stream=lambda n, d: _youtube8m(n, d, "frame")),
    DatasetSpec("auto", "classification", 10, (28, 28),
                "Fashion-MNIST when installed, else digits (with --data-dir: Fashion-MNIST "
                "there, or an error)", resolve=_resolve_auto),
):
    register_dataset(_spec)


def load_dataset(
    name: str = "auto",
    *,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.0,
    standardize: str | None = "global",
    seed: int = 0,
    limit_train: int | None = None,
    augment: str | None = None,
) -> Dataset:
    """Load a registered data set (``compactnn list``) as flat float32 tensors.

    ``auto`` is Fashion-MNIST when installed, otherwise digits (recorded in
    ``Dataset.notes``). An explicit ``data_dir`` is authoritative: ``auto`` then means
    Fashion-MNIST in ``data_dir/fashion-mnist`` and is a :class:`DataError` otherwise (IDX
    files directly in ``data_dir`` may be MNIST, which uses the same file names); ``digits``,
    which reads no files, refuses a ``data_dir``. Data no model can learn from (empty splits,
    labels out of range, non-finite or constant inputs) is a :class:`DataError`.
    ``standardize``: ``"global"`` (one mean/std from the training set), ``"feature"``
    (per-feature, constant features left centred) or ``None``/``"none"`` (pixels scaled to
    [0, 1]). ``val_fraction`` holds out a seeded random part of the training set as validation.
    ``limit_train`` keeps a seeded random subset of the training set (quick runs).
    ``augment`` (e.g. ``"crop-flip"``, :mod:`compactnn.data.augment`) is recorded on the data
    set; :func:`~compactnn.data.in_memory_loaders` applies it to every training batch.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    standardize = None if standardize == "none" else standardize
    if standardize not in ("global", "feature", None):
        raise ValueError(f"standardize must be 'global', 'feature' or None, got {standardize!r}")
    spec, notes = resolve_dataset(name, data_dir)
    if spec.stream is not None:
        raise DataError(f"{spec.name} is streamed from its files, not loaded into memory: "
                        "train on it with compactnn train/reproduce (compactnn.runs.run)")
    check_augmentation(augment, spec.input_shape)
    x_tr, y_tr, x_te, y_te, scale, source = spec.load(spec.name, data_dir)
    check_arrays(spec.name, source, x_tr, y_tr, x_te, y_te,
                 spec.num_classes if spec.task == "classification" else None)

    input_shape = tuple(x_tr.shape[1:])
    x_tr = x_tr.reshape(len(x_tr), -1).astype(np.float32) / scale
    x_te = x_te.reshape(len(x_te), -1).astype(np.float32) / scale
    rng = np.random.default_rng(seed)
    if limit_train is not None and limit_train < len(x_tr):
        keep = rng.permutation(len(x_tr))[:limit_train]
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    x_val = y_val = None
    if val_fraction > 0:
        perm = rng.permutation(len(x_tr))
        n_val = max(1, int(round(val_fraction * len(x_tr))))
        x_val, y_val = x_tr[perm[:n_val]], y_tr[perm[:n_val]]
        x_tr, y_tr = x_tr[perm[n_val:]], y_tr[perm[n_val:]]
        if len(x_tr) == 0:
            raise DataError(f"{spec.name}: val_fraction {val_fraction} leaves no training "
                            "examples")
    if standardize == "global":
        mean, std = x_tr.mean(), x_tr.std()
    elif standardize == "feature":
        mean, std = x_tr.mean(0), x_tr.std(0)
        std = np.where(std > 1e-8, std, 1.0)
    if standardize is not None:
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
        if x_val is not None:
            x_val = (x_val - mean) / std

    def t(a, dtype):
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    return Dataset(x_train=t(x_tr, torch.float32), y_train=t(y_tr, torch.int64),
                   x_test=t(x_te, torch.float32), y_test=t(y_te, torch.int64),
                   x_val=t(x_val, torch.float32), y_val=t(y_val, torch.int64),
                   num_classes=spec.num_classes, input_shape=input_shape, source=source,
                   notes=notes, name=spec.name, task=spec.task, augment=augment)
