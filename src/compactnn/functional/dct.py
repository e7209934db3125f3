"""Orthonormal DCT-II / DCT-III (its inverse) along the last dimension, via one FFT of length N.

Makhoul's reordering: ``v = [x_0, x_2, …, x_3, x_1]``, ``V = FFT(v)``,
``X_k = s_k · Re(e^{-iπk/2N} V_k)`` with ``s_0 = √(1/N)``, ``s_k = √(2/N)``: the same numbers
as ``scipy.fft.dct(x, type=2, norm="ortho")``. Differentiable through ``torch.fft``; the inverse
is the transpose since the transform is orthogonal.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["dct", "dct_matrix", "idct"]


def _twiddle(n: int, x: Tensor) -> Tensor:
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    w = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    scale = torch.full_like(k, math.sqrt(2.0 / n))
    scale[0] = math.sqrt(1.0 / n)
    return w * scale


def dct(x: Tensor) -> Tensor:
    """Orthonormal DCT-II of ``x`` along its last dimension."""
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    return (torch.fft.fft(v) * _twiddle(n, x)).real


def idct(y: Tensor) -> Tensor:
    """Orthonormal DCT-III (the inverse of :func:`dct`) along the last dimension."""
    n = y.shape[-1]
    # V_k = (Y_k - i Y_{N-k}) e^{iπk/2N} / s_k, with Y_N = 0; then v = Re(IFFT(V)).
    y_rev = torch.cat([y.new_zeros(*y.shape[:-1], 1), y[..., 1:].flip(-1)], dim=-1)
    tw = _twiddle(n, y)
    spec = torch.complex(y, -y_rev) * tw.conj() / tw.abs().square()
    v = torch.fft.ifft(spec).real
    half = (n + 1) // 2
    out = torch.empty_like(v)
    out[..., ::2] = v[..., :half]
    out[..., 1::2] = v[..., half:].flip(-1)
    return out


def dct_matrix(n: int, dtype=torch.float64, device=None) -> Tensor:
    """The ``n × n`` orthonormal DCT-II matrix (reference builder)."""
    k = torch.arange(n, dtype=dtype, device=device)[:, None]
    i = torch.arange(n, dtype=dtype, device=device)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m
