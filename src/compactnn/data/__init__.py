"""Data loaders: IDX (MNIST / Fashion-MNIST), scikit-learn digits."""

from .cifar import find_cifar10_dir, load_cifar10_arrays, write_cifar10_batch
from .datasets import DATASETS, Dataset, find_idx_dir, load_dataset, load_idx_dataset
from .idx import DataError, read_idx, write_idx

__all__ = ["DATASETS", "DataError", "Dataset", "find_cifar10_dir", "find_idx_dir",
           "load_cifar10_arrays", "load_dataset", "load_idx_dataset", "read_idx",
           "write_cifar10_batch", "write_idx"]
