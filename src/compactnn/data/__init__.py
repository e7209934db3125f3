"""Data sets (registered, each with its task and classes) and loaders."""

from .augment import AUGMENTATIONS, random_crop_flip
from .cifar import find_cifar10_dir, load_cifar10_arrays, write_cifar10_batch
from .datasets import (
    Dataset,
    DatasetSpec,
    find_idx_dir,
    load_dataset,
    load_idx_dataset,
    register_dataset,
    resolve_dataset,
)
from .idx import DataError, read_idx, write_idx
from .loaders import (
    AugmentedBatches,
    EpochBatches,
    SequentialBatches,
    augmented_loader,
    in_memory_loaders,
    tensor_loader,
)

__all__ = ["AUGMENTATIONS", "AugmentedBatches", "DataError", "Dataset", "DatasetSpec",
           "EpochBatches", "SequentialBatches", "augmented_loader", "find_cifar10_dir",
           "find_idx_dir", "in_memory_loaders", "load_cifar10_arrays", "load_dataset",
           "load_idx_dataset", "random_crop_flip", "read_idx", "register_dataset",
           "resolve_dataset", "tensor_loader", "write_cifar10_batch", "write_idx"]
