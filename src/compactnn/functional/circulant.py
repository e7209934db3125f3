"""Circulant products through real FFTs, with FFT-based custom backward passes.

Conventions
-----------
``circ(c)`` has ``c`` as its **first column**: ``circ(c)[i, j] = c[(i - j) mod n]``, so
``circ(c) @ x`` is the circular convolution ``c ⊛ x = irfft(rfft(c) · rfft(x))``. This is the
matrix ``scipy.linalg.circulant(c)`` builds, which the tests use as an independent oracle.

The workhorse is :func:`diag_circulant_diag`, which computes, for inputs of shape
``(..., in_features)``, ::

    y = d_out ⊙ ( circ(c) · pad_n(d_in ⊙ x) )[:out_features] + bias        n = len(c)

Every circulant-based layer of the library is a special case:

* diagonal-circulant (Araujo et al. 2020):    ``d_in = None``, ``d_out = d`` (trained)
* circulant projection (Cheng et al. 2015):   ``d_in = ±1`` (fixed buffer), ``d_out = None``
* plain circulant:                            ``d_in = d_out = None``

Cost: two real FFTs of length ``n`` per sample forward, four backward (the circulant's own
spectrum is shared by the whole batch). Memory: the autograd node keeps only ``x`` (which the
caller usually keeps alive anyway) and the parameters — no complex spectrum and no
intermediate activation; backward recomputes what it needs.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "circulant_dense",
    "circulant_matmul",
    "diag_circulant_diag",
    "diag_circulant_diag_dense",
    "project_circulant",
    "weighted_diagonal_means",
]


def circulant_dense(c: Tensor) -> Tensor:
    """The ``n × n`` circulant matrix with first column ``c``: ``C[i, j] = c[(i - j) mod n]``."""
    if c.dim() != 1:
        raise ValueError(f"circulant_dense expects a 1-D vector, got shape {tuple(c.shape)}")
    n = c.shape[0]
    idx = torch.arange(n, device=c.device)
    return c[(idx[:, None] - idx[None, :]) % n]


def _flat_batch(t: Tensor) -> Tensor:
    return t.reshape(-1, t.shape[-1])


class _DiagCirculantDiag(torch.autograd.Function):
    """Fused ``d_out ⊙ (circ(c) · pad(d_in ⊙ x))[:out] + bias``.

    Saved for backward: ``x`` (the caller's tensor, normally alive anyway), the parameters, the
    circulant's spectrum (parameter-sized) and — only when ``d_out`` is trained — the
    pre-diagonal activation ``u`` (``out`` reals per sample). No batch-sized complex spectrum
    is kept: backward recomputes ``rfft(x)`` when ``c`` needs a gradient.
    FFTs per call: 2 forward, ≤ 3 backward.
    """

    @staticmethod
    def forward(ctx, x, c, d_in, d_out, bias, out_features, c_spectrum):
        n = c.shape[-1]
        xs = x if d_in is None else x * d_in
        cf = torch.fft.rfft(c) if c_spectrum is None else c_spectrum
        xf = torch.fft.rfft(xs, n=n)
        xf.mul_(cf)
        u = torch.fft.irfft(xf, n=n)
        del xf
        if out_features < n:
            u = u[..., :out_features]
        if d_out is not None and bias is not None:
            y = torch.addcmul(bias, u, d_out)
        elif d_out is not None:
            y = u * d_out
        elif bias is not None:
            y = u + bias
        else:
            y = u.contiguous()
        save_u = d_out is not None and ctx.needs_input_grad[3]
        ctx.out_features, ctx.in_features = out_features, x.shape[-1]
        ctx.save_for_backward(x, c, cf, d_in, d_out, u.contiguous() if save_u else None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, c, cf, d_in, d_out, u = ctx.saved_tensors
        n, n_in = c.shape[-1], ctx.in_features
        need_x, need_c, need_din, need_dout, need_b = ctx.needs_input_grad[:5]
        grad_x = grad_c = grad_din = grad_dout = grad_b = None
        if torch.is_grad_enabled():
            # double backward (create_graph=True): rebuild what forward computed without a
            # graph, so that second derivatives see its dependence on c and x.
            cf = torch.fft.rfft(c)
            if u is not None:
                xs = x if d_in is None else x * d_in
                u = torch.fft.irfft(torch.fft.rfft(xs, n=n) * cf, n=n)[..., : ctx.out_features]

        if need_b:
            grad_b = _flat_batch(g).sum(0)
        if need_dout:
            grad_dout = torch.linalg.vecdot(_flat_batch(g), _flat_batch(u), dim=0)
        if need_x or need_c or need_din:
            gu = g if d_out is None else g * d_out
            gf = torch.fft.rfft(gu, n=n)  # zero-pads the truncated rows
            del gu
            if need_c:
                # dL/dc_k = Σ_b Σ_i g_i xs_{i-k}: circular cross-correlations summed over the
                # batch, reduced in the frequency domain without a batch-sized product.
                xs = x if d_in is None else x * d_in
                xf = torch.fft.rfft(xs, n=n)
                del xs
                grad_c = torch.fft.irfft(
                    torch.linalg.vecdot(_flat_batch(xf), _flat_batch(gf), dim=0), n=n)
                del xf
            if need_x or need_din:
                # in place unless a double-backward graph still needs gf
                gf = gf * cf.conj() if torch.is_grad_enabled() else gf.mul_(cf.conj())
                gxs = torch.fft.irfft(gf, n=n)  # circ(c)^T g
                if n_in < n:
                    gxs = gxs[..., :n_in]
                if need_din:
                    grad_din = torch.linalg.vecdot(_flat_batch(gxs), _flat_batch(x), dim=0)
                if need_x:
                    grad_x = gxs if d_in is None else gxs * d_in
        return grad_x, grad_c, grad_din, grad_dout, grad_b, None, None


def _check_op_args(x: Tensor, c: Tensor, out_features: int, d_in, d_out, bias) -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"expected a floating-point input, got dtype {x.dtype}")
    if c.dim() != 1:
        raise ValueError(f"the circulant vector must be 1-D, got shape {tuple(c.shape)}")
    n = c.shape[0]
    if x.dim() == 0 or x.shape[-1] > n:
        raise ValueError(
            f"input of shape {tuple(x.shape)} does not fit a circulant of size {n} "
            "(the last dimension must be at most n)"
        )
    if not 1 <= out_features <= n:
        raise ValueError(f"out_features must be in [1, {n}], got {out_features}")
    for name, t, size in (("d_in", d_in, x.shape[-1]), ("d_out", d_out, out_features),
                          ("bias", bias, out_features)):
        if t is not None and tuple(t.shape) != (size,):
            raise ValueError(f"{name} must have shape ({size},), got {tuple(t.shape)}")


def diag_circulant_diag(
    x: Tensor,
    c: Tensor,
    *,
    d_in: Tensor | None = None,
    d_out: Tensor | None = None,
    bias: Tensor | None = None,
    out_features: int | None = None,
    c_spectrum: Tensor | None = None,
) -> Tensor:
    """``d_out ⊙ (circ(c) · pad_n(d_in ⊙ x))[:out_features] + bias``, ``x`` of shape ``(..., in)``.

    ``n = len(c)`` must be at least ``in`` and ``out_features`` (default ``n``). Any of
    ``d_in`` (shape ``(in,)``), ``d_out`` (``(out,)``) and ``bias`` (``(out,)``) may be ``None``.
    Differentiable in every tensor argument through an FFT-based backward.
    ``c_spectrum`` (optional) is ``torch.fft.rfft(c)`` computed by the caller — layers pass a
    cached one at inference so that ``c``'s FFT is not redone per call.
    """
    n = c.shape[-1] if c.dim() else 0
    out_features = n if out_features is None else int(out_features)
    _check_op_args(x, c, out_features, d_in, d_out, bias)
    if c_spectrum is not None and c_spectrum.shape != (n // 2 + 1,):
        raise ValueError(f"c_spectrum must have shape ({n // 2 + 1},), got "
                         f"{tuple(c_spectrum.shape)}")
    return _DiagCirculantDiag.apply(x, c, d_in, d_out, bias, out_features, c_spectrum)


def circulant_matmul(c: Tensor, x: Tensor) -> Tensor:
    """``circ(c) @ x`` over the last dimension of ``x`` (shape ``(..., n)``), via real FFTs."""
    if x.dim() == 0 or c.dim() != 1 or x.shape[-1] != c.shape[0]:
        raise ValueError(
            f"circulant_matmul: x of shape {tuple(x.shape)} does not match c of shape "
            f"{tuple(c.shape)}"
        )
    return diag_circulant_diag(x, c)


def diag_circulant_diag_dense(
    c: Tensor,
    in_features: int,
    out_features: int,
    *,
    d_in: Tensor | None = None,
    d_out: Tensor | None = None,
) -> Tensor:
    """Dense reference ``(out, in)`` matrix of :func:`diag_circulant_diag` (without bias)."""
    w = circulant_dense(c)[:out_features, :in_features]
    if d_in is not None:
        w = w * d_in[None, :]
    if d_out is not None:
        w = d_out[:, None] * w
    return w


def project_circulant(
    w: Tensor, n: int, *, row_scale: Tensor | None = None, col_scale: Tensor | None = None
) -> Tensor:
    """Least-squares fit of ``c`` in ``W ≈ diag(row_scale) · circ(c)[:out, :in] · diag(col_scale)``.

    With no scales this is the nearest circulant in Frobenius norm: each ``c_k`` is the mean of
    the (wrapped) diagonal ``{(i, j): i - j ≡ k mod n}``. With scales it is the weighted mean
    ``Σ s_ij W_ij / Σ s_ij²`` with ``s_ij = row_i · col_j``, the exact minimiser for fixed scales.
    """
    out_f, in_f = w.shape
    if n < max(out_f, in_f):
        raise ValueError(f"circulant size {n} is smaller than the matrix shape {tuple(w.shape)}")
    i = torch.arange(out_f, device=w.device)[:, None]
    j = torch.arange(in_f, device=w.device)[None, :]
    return weighted_diagonal_means(w, (i - j) % n, n, row_scale=row_scale, col_scale=col_scale)


def weighted_diagonal_means(w: Tensor, key: Tensor, size: int, *, row_scale: Tensor | None = None,
                            col_scale: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """``v[k] = Σ_{key_ij = k} s_ij W_ij / Σ_{key_ij = k} s_ij²`` with
    ``s_ij = row_i · col_j · scale_ij``: the least-squares ``v`` in ``W ≈ s ⊙ v[key]``
    (0 where a key has no entries)."""
    s = torch.ones_like(w) if scale is None else scale.to(w.dtype).expand_as(w)
    if row_scale is not None:
        s = s * row_scale[:, None]
    if col_scale is not None:
        s = s * col_scale[None, :]
    k = key.expand_as(w).reshape(-1)
    num = torch.zeros(size, dtype=w.dtype, device=w.device).index_add_(0, k, (s * w).reshape(-1))
    den = torch.zeros(size, dtype=w.dtype, device=w.device).index_add_(0, k, (s * s).reshape(-1))
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(w.dtype).tiny), 0.0)
