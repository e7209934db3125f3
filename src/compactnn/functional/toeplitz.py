"""Toeplitz products through a circulant embedding and real FFTs.

A Toeplitz ``(out, in)`` matrix has ``in + out - 1`` free entries: ``T[i, j] = t[i - j + in - 1]``
(``t[0]`` is the top-right corner, ``t[in - 1]`` the main diagonal, ``t[-1]`` the bottom-left
corner), i.e. ``scipy.linalg.toeplitz(c=t[in-1:], r=t[in-1::-1])``. It is the top-left block of
a circulant of any size ``L ≥ in + out - 1``, so ``T x`` is one circulant product (two real
FFTs of length ``L``, custom FFT backward from :mod:`.circulant`); ``L``
(:func:`toeplitz_fft_size`) is rounded up to a size with only the prime factors 2, 3, 5 for
speed, and :func:`toeplitz_spectrum` is the embedding's spectrum (``c_spectrum=``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .circulant import diag_circulant_diag, fast_fft_size, fft_dtype, weighted_diagonal_means

__all__ = ["project_toeplitz", "toeplitz_dense", "toeplitz_embedding", "toeplitz_fft_size",
           "toeplitz_matmul", "toeplitz_spectrum"]


def toeplitz_fft_size(in_features: int, out_features: int) -> int:
    """Length ``L`` of the circulant embedding of an ``(out, in)`` Toeplitz matrix: the smallest
    5-smooth ``L ≥ in + out - 1`` (an FFT length :func:`.circulant_fft_size` keeps as is)."""
    return fast_fft_size(in_features + out_features - 1)


def _check_t(t: Tensor, in_features: int, out_features: int) -> None:
    if t.dim() != 1 or t.shape[0] != in_features + out_features - 1:
        raise ValueError(f"a {out_features}x{in_features} Toeplitz matrix needs a vector of "
                         f"{in_features + out_features - 1} entries, got shape {tuple(t.shape)}")


def toeplitz_dense(t: Tensor, in_features: int, out_features: int) -> Tensor:
    """The ``(out, in)`` Toeplitz matrix ``T[i, j] = t[i - j + in - 1]``."""
    _check_t(t, in_features, out_features)
    i = torch.arange(out_features, device=t.device)[:, None]
    j = torch.arange(in_features, device=t.device)[None, :]
    return t[i - j + in_features - 1]


def toeplitz_embedding(t: Tensor, in_features: int, out_features: int,
                       size: int | None = None) -> Tensor:
    """First column ``c`` (length ``size``) of a circulant whose top-left block is the Toeplitz
    matrix: ``c[k] = T[k, 0]`` for ``k < out`` and ``c[size - m] = T[0, m]`` for ``0 < m < in``."""
    _check_t(t, in_features, out_features)
    need = in_features + out_features - 1
    size = toeplitz_fft_size(in_features, out_features) if size is None else size
    if size < need:
        raise ValueError(f"embedding size {size} < in + out - 1 = {need}")
    zeros = t.new_zeros(size - need)
    return torch.cat([t[in_features - 1:], zeros, t[:in_features - 1]])


def toeplitz_spectrum(t: Tensor, in_features: int, out_features: int) -> Tensor:
    """``rfft`` of :func:`toeplitz_embedding` at length :func:`toeplitz_fft_size`: the
    ``c_spectrum`` :func:`toeplitz_matmul` accepts (shape ``(L // 2 + 1,)``). Half and bfloat16
    ``t`` are transformed in float32 (a complex64 result), as the op computes."""
    size = toeplitz_fft_size(in_features, out_features)
    c = toeplitz_embedding(t.to(fft_dtype(t.dtype)), in_features, out_features, size)
    return torch.fft.rfft(c, n=size)


def toeplitz_matmul(x: Tensor, t: Tensor, out_features: int, *, d_out: Tensor | None = None,
                    bias: Tensor | None = None, c_spectrum: Tensor | None = None) -> Tensor:
    """``d_out ⊙ (T x) + bias`` for ``x`` of shape ``(..., in)`` and ``T`` built from ``t``.
    ``c_spectrum``: optional precomputed :func:`toeplitz_spectrum` ``(t, in, out)`` (float32
    for half/bfloat16 ``t``). Cost: two batch FFTs of length :func:`toeplitz_fft_size`."""
    if x.dim() == 0:
        raise ValueError("toeplitz_matmul needs an input with a feature dimension")
    c = toeplitz_embedding(t, x.shape[-1], out_features)
    return diag_circulant_diag(x, c, d_out=d_out, bias=bias, out_features=out_features,
                               c_spectrum=c_spectrum)


def project_toeplitz(w: Tensor, *, row_scale: Tensor | None = None) -> Tensor:
    """Least-squares ``t`` in ``W ≈ diag(row_scale) · T(t)`` (diagonal means without scale)."""
    out_f, in_f = w.shape
    i = torch.arange(out_f, device=w.device)[:, None]
    j = torch.arange(in_f, device=w.device)[None, :]
    return weighted_diagonal_means(w, i - j + in_f - 1, in_f + out_f - 1, row_scale=row_scale)
