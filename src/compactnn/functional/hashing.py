"""Deterministic hashing of matrix positions (HashNet, Chen et al. ICML 2015).

``V[i, j] = ξ(i, j) · w[h(i, j)]`` with a bucket hash ``h`` into ``K`` buckets and a sign hash
``ξ ∈ {±1}``. Both are the 32-bit MurmurHash3 finaliser (``fmix32``) of the flat position
``i·in + j`` mixed with a per-layer seed, computed in int64 tensor arithmetic — the same
numbers on every platform and device, reproducible from ``(seed, shape)`` alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fmix32", "hash_indices", "hashed_dense"]

_MASK = 0xFFFFFFFF


def fmix32(h: Tensor) -> Tensor:
    """MurmurHash3's 32-bit finaliser on an int64 tensor holding values in ``[0, 2^32)``."""
    h = h & _MASK
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _MASK
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def hash_indices(out_features: int, in_features: int, buckets: int, seed: int,
                 device=None) -> tuple[Tensor, Tensor]:
    """``(bucket index, sign)`` tensors of shape ``(out, in)`` for a hashed layer."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    pos = torch.arange(out_features * in_features, dtype=torch.int64, device=device)
    s = int(seed) & _MASK
    idx = fmix32(pos ^ fmix32(torch.tensor(s, dtype=torch.int64))) % buckets
    sign = 1 - 2 * (fmix32(pos ^ fmix32(torch.tensor(s ^ 0x9E3779B9, dtype=torch.int64))) & 1)
    return idx.view(out_features, in_features), sign.view(out_features, in_features)


def hashed_dense(w: Tensor, idx: Tensor, sign: Tensor) -> Tensor:
    """The virtual ``(out, in)`` matrix ``sign ⊙ w[idx]``."""
    return w[idx] * sign.to(w.dtype)
