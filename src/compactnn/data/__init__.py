"""Data sets (registered, each with its task and classes) and loaders."""

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
from .loaders import EpochBatches, SequentialBatches, in_memory_loaders, tensor_loader

__all__ = ["DataError", "Dataset", "DatasetSpec", "EpochBatches", "SequentialBatches",
           "find_cifar10_dir", "find_idx_dir", "in_memory_loaders", "load_cifar10_arrays",
           "load_dataset", "load_idx_dataset", "read_idx", "register_dataset",
           "resolve_dataset", "tensor_loader", "write_cifar10_batch", "write_idx"]
