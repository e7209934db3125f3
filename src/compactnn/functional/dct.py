"""Orthonormal DCT-II / DCT-III (its inverse) along the last dimension, via one *real* FFT of
length N.

Makhoul's reordering: ``v = [x_0, x_2, …, x_3, x_1]``, ``V = rfft(v)``, ``W_k = e^{-iπk/2N} V_k``
and ``X_k = s_k · Re(W_k)`` for ``k ≤ N/2``, ``X_{N-k} = -s · Im(W_k)`` for ``0 < k < N/2``
(``V_{N-k} = conj(V_k)`` for a real ``v``), with ``s_0 = √(1/N)``, ``s_k = √(2/N)``: the same
numbers as ``scipy.fft.dct(x, type=2, norm="ortho")``. The inverse runs the same steps
backwards through one ``irfft``.

Both transforms are orthogonal, so each one's backward is the other one: a custom
``autograd.Function`` saves nothing for backward (autograd through the FFT and the complex
twiddle would keep complex ``batch × N`` intermediates alive).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .circulant import fft_dtype, irfft, rfft

__all__ = ["dct", "dct_matrix", "idct"]


@functools.lru_cache(maxsize=64)
def _tables(n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Twiddles ``e^{-iπk/2N}`` (``k ≤ N/2``) and the orthonormal scales ``s_k`` (``k < N``)."""
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    tw = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    scale = torch.full((n,), math.sqrt(2.0 / n), dtype=torch.float64)
    scale[0] = math.sqrt(1.0 / n)
    return tw.to(device=device, dtype=dtype.to_complex()), scale.to(device=device, dtype=dtype)


def _dct2(x: Tensor) -> Tensor:
    n = x.shape[-1]
    tw, scale = _tables(n, x.dtype, x.device)
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    w = rfft(v).mul_(tw)
    tail = w.imag[..., 1:(n + 1) // 2].flip(-1).neg_()
    return torch.cat([w.real, tail], dim=-1).mul_(scale)


def _dct3(y: Tensor) -> Tensor:
    n = y.shape[-1]
    tw, scale = _tables(n, y.dtype, y.device)
    h = n // 2
    ys = y / scale
    im = ys.new_zeros(*ys.shape[:-1], h + 1)
    im[..., 1:(n + 1) // 2] = ys[..., h + 1:].flip(-1).neg_()
    if n % 2 == 0 and n > 0:
        im[..., h] = -ys[..., h]  # W_{N/2} = e^{-iπ/4} V_{N/2} with V_{N/2} real
    v = irfft(torch.complex(ys[..., :h + 1], im).mul_(tw.conj()), n=n)
    half = (n + 1) // 2
    out = torch.empty_like(v)
    out[..., ::2] = v[..., :half]
    out[..., 1::2] = v[..., half:].flip(-1)
    return out


class _OrthoDCT(torch.autograd.Function):
    """DCT-II (``inverse=False``) or DCT-III; the backward of one is the other."""

    @staticmethod
    def forward(ctx, x, inverse):
        ctx.inverse = inverse
        return _dct3(x) if inverse else _dct2(x)

    @staticmethod
    def backward(ctx, g):
        return _OrthoDCT.apply(g, not ctx.inverse), None


def _apply(x: Tensor, inverse: bool) -> Tensor:
    if not torch.is_floating_point(x) or x.dim() == 0:
        raise ValueError(f"the DCT needs a floating-point tensor with a last dimension, got "
                         f"dtype {x.dtype} and shape {tuple(x.shape)}")
    ft = fft_dtype(x.dtype)
    if ft != x.dtype:  # half precision: computed in float32, returned in the input's dtype
        return _apply(x.to(ft), inverse).to(x.dtype)
    if torch.is_grad_enabled() and x.requires_grad:
        return _OrthoDCT.apply(x, inverse)
    return _dct3(x) if inverse else _dct2(x)


def dct(x: Tensor) -> Tensor:
    """Orthonormal DCT-II of ``x`` along its last dimension."""
    return _apply(x, False)


def idct(y: Tensor) -> Tensor:
    """Orthonormal DCT-III (the inverse of :func:`dct`) along the last dimension."""
    return _apply(y, True)


def dct_matrix(n: int, dtype=torch.float64, device=None) -> Tensor:
    """The ``n × n`` orthonormal DCT-II matrix (reference builder)."""
    k = torch.arange(n, dtype=dtype, device=device)[:, None]
    i = torch.arange(n, dtype=dtype, device=device)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m
