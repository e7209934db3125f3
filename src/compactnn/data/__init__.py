"""Data loaders: IDX (MNIST / Fashion-MNIST), scikit-learn digits."""

from .datasets import DATASETS, Dataset, find_idx_dir, load_dataset, load_idx_dataset
from .idx import DataError, read_idx, write_idx

__all__ = ["DATASETS", "DataError", "Dataset", "find_idx_dir", "load_dataset",
           "load_idx_dataset", "read_idx", "write_idx"]
