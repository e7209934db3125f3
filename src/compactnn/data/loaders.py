"""DataLoaders over in-memory data sets, batch by batch (no per-example indexing or collation).

Training batches are consecutive slices of one seeded permutation per epoch (what
:class:`EpochBatches` yields), evaluation batches consecutive slices of the data. Streaming data
(an ``IterableDataset``) goes straight into a ``DataLoader`` and needs none of this.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset
from torch.utils.data import Dataset as TorchDataset

from .augment import apply_augmentation, check_augmentation

__all__ = ["AugmentedBatches", "EpochBatches", "SequentialBatches", "augmented_loader",
           "in_memory_loaders", "tensor_loader"]


class EpochBatches(Sampler):
    """Index batches of a fresh random permutation of ``range(n)`` every epoch, drawn from
    ``generator`` (one ``randperm`` per epoch: the same seed gives the same batches).

    Resumable: :meth:`state_dict` holds the generator's state at the start of the epoch in
    progress and now; :meth:`resume` makes the next epoch replay an epoch from its start state
    and skip the batches already trained on — the order an uninterrupted run would see."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self._epoch_start = generator.get_state()
        self._resume: tuple[torch.Tensor, int] | None = None

    def _start_epoch(self) -> int:
        """Go to the epoch's start state (a pending resume point, else where the generator
        is), record it; return the number of batches to skip."""
        skip = 0
        if self._resume is not None:
            start, skip = self._resume
            self.generator.set_state(start)
            self._resume = None
        self._epoch_start = self.generator.get_state()
        return skip

    def __iter__(self) -> Iterator[torch.Tensor]:
        skip = self._start_epoch()
        perm = torch.randperm(self.n, generator=self.generator)
        for i in range(skip * self.batch_size, self.n, self.batch_size):
            yield perm[i:i + self.batch_size]

    def state_dict(self) -> dict:
        return {"epoch_start": self._epoch_start.clone(), "now": self.generator.get_state()}

    def resume(self, state: dict, batches_done: int) -> None:
        """Continue from ``state``: mid-epoch (``batches_done > 0``) replay the epoch that was
        in progress without its first ``batches_done`` batches, else start the next epoch."""
        self._resume = ((state["epoch_start"], batches_done) if batches_done
                        else (state["now"], 0))

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


class AugmentedBatches(EpochBatches):
    """:class:`EpochBatches` that pairs every index batch with an augmentation seed: per epoch
    one permutation, then one seed per batch, both from ``generator`` — so the resume of
    :class:`EpochBatches` replays the augmentation too."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        skip = self._start_epoch()
        perm = torch.randperm(self.n, generator=self.generator)
        seeds = torch.randint(0, 2 ** 62, (len(self),), generator=self.generator).tolist()
        for b in range(skip, len(self)):
            i = b * self.batch_size
            yield perm[i:i + self.batch_size], seeds[b]


class _AugmentedTensors(TorchDataset):
    """``(augment(x[idx], seed), y[idx])`` for a sampler item ``(idx, seed)``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: str,
                 input_shape: tuple[int, ...]) -> None:
        self.x, self.y, self.augment, self.input_shape = x, y, augment, tuple(input_shape)

    def __getitem__(self, item):
        idx, seed = item
        return apply_augmentation(self.augment, self.x[idx], self.input_shape, seed), self.y[idx]

    def __len__(self) -> int:
        return len(self.x)


def augmented_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, *,
                     shuffle_generator: torch.Generator, augment: str,
                     input_shape: tuple[int, ...], pin_memory: bool = False) -> DataLoader:
    """A training DataLoader of shuffled ``(x[idx], y[idx])`` batches with the augmentation
    ``augment`` (:data:`~compactnn.data.augment.AUGMENTATIONS`) applied to every batch of
    images of ``input_shape``, seeded from ``shuffle_generator`` (resumable as
    :class:`EpochBatches`)."""
    check_augmentation(augment, input_shape)
    return DataLoader(_AugmentedTensors(x, y, augment, input_shape), batch_size=None,
                      sampler=AugmentedBatches(len(x), batch_size, shuffle_generator),
                      pin_memory=pin_memory)


class SequentialBatches(Sampler):
    """Slices ``[i, i + batch_size)`` in order (views of the data, no copy)."""

    def __init__(self, n: int, batch_size: int) -> None:
        self.n, self.batch_size = n, batch_size

    def __iter__(self) -> Iterator[slice]:
        for i in range(0, self.n, self.batch_size):
            yield slice(i, i + self.batch_size)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


def tensor_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, *,
                  shuffle_generator: torch.Generator | None = None,
                  pin_memory: bool = False) -> DataLoader:
    """A DataLoader of ``(x[idx], y[idx])`` batches: shuffled every epoch with
    ``shuffle_generator``, else in order."""
    n = len(x)
    sampler = (SequentialBatches(n, batch_size) if shuffle_generator is None
               else EpochBatches(n, batch_size, shuffle_generator))
    return DataLoader(TensorDataset(x, y), batch_size=None, sampler=sampler,
                      pin_memory=pin_memory)


def in_memory_loaders(data, batch_size: int, eval_batch_size: int, seed: int,
                      pin_memory: bool = False) -> dict[str, DataLoader]:
    """``{"train", "val" (when the data set has one), "test"}`` loaders of a
    :class:`~compactnn.data.Dataset`; the training order is seeded by ``seed``, and so is the
    data set's ``augment`` (training batches only), when it names one."""
    gen = torch.Generator().manual_seed(seed)
    augment = getattr(data, "augment", None)
    if augment is not None:
        train = augmented_loader(data.x_train, data.y_train, batch_size, shuffle_generator=gen,
                                 augment=augment, input_shape=data.input_shape,
                                 pin_memory=pin_memory)
    else:
        train = tensor_loader(data.x_train, data.y_train, batch_size, shuffle_generator=gen,
                              pin_memory=pin_memory)
    loaders = {"train": train}
    if data.x_val is not None:
        loaders["val"] = tensor_loader(data.x_val, data.y_val, eval_batch_size,
                                       pin_memory=pin_memory)
    loaders["test"] = tensor_loader(data.x_test, data.y_test, eval_batch_size,
                                    pin_memory=pin_memory)
    return loaders
