"""Training-set augmentation applied per batch, seeded (a batch's draws come from one integer
seed, so a resumed epoch replays them exactly).

``crop-flip``: the usual CIFAR-10 recipe (He et al. 2016; the low-cost CNN group's Meganet
template): every image is zero-padded by 4 pixels on each side (zero is the training mean after
global standardization), a random ``H × W`` window of the padded image is kept (offsets uniform
in ``[0, 8]`` per axis) and, with probability 1/2, flipped left-right.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["AUGMENTATIONS", "apply_augmentation", "check_augmentation", "random_crop_flip"]

#: augmentation name → (padding,) of :func:`random_crop_flip`
AUGMENTATIONS = {"crop-flip": 4}


def check_augmentation(name: str | None, input_shape: tuple[int, ...]) -> None:
    """A one-line ``ValueError`` unless ``name`` is ``None`` or an augmentation of
    :data:`AUGMENTATIONS` that fits inputs of ``input_shape`` (images ``(H, W)`` or
    ``(C, H, W)``)."""
    if name is None:
        return
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; available: {', '.join(AUGMENTATIONS)}")
    if len(input_shape) not in (2, 3) or min(input_shape[-2:]) < 2:
        raise ValueError(f"augmentation {name!r} needs image inputs (H, W) or (C, H, W), got "
                         f"input shape {tuple(input_shape)}")


def random_crop_flip(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """``x`` ``(N, C, H, W)`` → the same shape: each image zero-padded by ``padding``, a random
    ``H × W`` crop (offsets uniform in ``[0, 2·padding]``), flipped left-right with
    probability 1/2; the draws come from ``generator`` (CPU). One gather, no loop over images."""
    if x.dim() != 4:
        raise ValueError(f"random_crop_flip expects (N, C, H, W) images, got {tuple(x.shape)}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator)
    flip = torch.rand(n, 1, generator=generator) < 0.5
    cols = torch.arange(w)
    rows = dy + torch.arange(h)  # (N, H) rows of the padded image
    cols = dx + torch.where(flip, cols.flip(0), cols)  # (N, W)
    xp = torch.nn.functional.pad(x, (padding,) * 4)
    dev = x.device
    out = xp[torch.arange(n, device=dev)[:, None, None], :, rows.to(dev)[:, :, None],
             cols.to(dev)[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def apply_augmentation(name: str, x: Tensor, input_shape: tuple[int, ...], seed: int) -> Tensor:
    """Augment a batch ``x`` (flat ``(N, prod(input_shape))`` or images) with the draws of
    ``seed``; the result has ``x``'s shape."""
    check_augmentation(name, input_shape)
    shape = tuple(input_shape) if len(input_shape) == 3 else (1, *input_shape)
    gen = torch.Generator().manual_seed(seed)
    out = random_crop_flip(x.reshape(len(x), *shape), gen, AUGMENTATIONS[name])
    return out.reshape(x.shape)
