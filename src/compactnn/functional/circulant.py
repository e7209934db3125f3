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

``c`` may also be a batch of ``B`` independent circulant vectors, shape ``(B, n)`` ("blocks", as
channel-coupled convolutions need): ``x`` is then ``(..., B, in)``, each of ``d_in``, ``d_out``,
``bias`` is shared ``(in,)``/``(out,)`` or per block ``(B, in)``/``(B, out)``, and the output is
``(..., B, out)``; gradients keep the block dimension.

Spectra and dtypes are decided here, so that layers do not restate them:
:func:`circulant_spectrum` is the ``rfft`` of ``c`` at the op's FFT length
(:func:`circulant_fft_size`), which a caller holding fixed weights may compute once and pass
back as ``c_spectrum`` (the layers do not: they compute it per forward); half and
bfloat16 tensors are computed in float32 (:func:`fft_dtype`) and their spectra are complex64.

Speed: FFTs of length ``n`` when that is fast (``n`` 7-smooth, or even and 13-smooth, see
:func:`circulant_fft_size`); otherwise (a prime ``n``, say) the circular convolution is computed
as a *linear* convolution at the next 7-smooth length ``L ≥ n + max(in, out) - 1`` and folded
back (``y_k = z_k + z_{k+n}``) — about 2× the work of a power of two instead of the ~15× of a
Bluestein FFT of prime length.
Per call: 2 batch FFTs forward, ≤ 3 backward; the batch reduction for ``∂c`` is done on a
real view (complex reductions over the batch axis are ~10× slower on CPU).
Memory: backward keeps ``x`` (the caller's tensor), the parameters, the circulant's spectrum
(parameter-sized) and, only when ``d_out`` is trained, the pre-diagonal activation ``u``
(``out`` reals per sample). The spectrum of the input is kept too only while it is small
(:data:`KEEP_SPECTRUM_MAX_FLOATS`, 1 MiB), where one FFT fewer matters more than the bytes;
larger batches recompute it in backward.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

__all__ = [
    "KEEP_SPECTRUM_MAX_FLOATS",
    "circulant_dense",
    "circulant_fft_size",
    "circulant_matmul",
    "circulant_spectrum",
    "diag_circulant_diag",
    "diag_circulant_diag_dense",
    "fast_fft_size",
    "fft_dtype",
    "project_circulant",
    "weighted_diagonal_means",
]


# Backward needs the spectrum of ``d_in ⊙ x`` for ``∂c``. Up to this many floats (1 MiB in
# float32: batch ≤ 32 at n = 4096) forward keeps it, saving one batch FFT as plain autograd
# does; above, backward recomputes it so that no batch-sized complex tensor stays alive.
# Read at call time: set it on this module (``compactnn.functional.circulant``) to change it.
KEEP_SPECTRUM_MAX_FLOATS = 2**18

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def fft_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype in which FFTs of ``dtype`` tensors are computed: float32 for float16 and
    bfloat16 (CPU FFTs have no half precision; cuFFT's only for power-of-two lengths), else
    ``dtype`` itself."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def fast_fft_size(n: int, primes: tuple[int, ...] = (2, 3, 5)) -> int:
    """Smallest integer ``≥ n`` whose prime factors are all in ``primes``."""
    if n < 1:
        raise ValueError(f"size must be positive, got {n}")
    m = n
    while True:
        k = m
        for p in primes:
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


@functools.lru_cache(maxsize=256)
def circulant_fft_size(n: int, in_features: int, out_features: int) -> int:
    """FFT length used for an ``n``-circulant acting on ``in`` inputs, keeping ``out`` rows.

    ``n`` itself when its real FFT is fast: ``n`` 7-smooth, or even and 13-smooth. Otherwise
    (primes, odd sizes with a factor 11 or 13, any larger prime factor) the 7-smooth
    ``L ≥ n + max(in, out) - 1``: a linear convolution, folded. The rule follows measurements
    of MKL's batch real FFTs on CPU (``benchmarks/bench_layers.py``): a prime length is ~15×
    slower than a folded length, an odd 13-smooth length up to 1.5× slower, while an even
    length with factors 11 or 13 is up to 3× faster than folding it."""
    if fast_fft_size(n, (2, 3, 5, 7)) == n or (
            n % 2 == 0 and fast_fft_size(n, (2, 3, 5, 7, 11, 13)) == n):
        return n
    return fast_fft_size(n + max(in_features, out_features) - 1, (2, 3, 5, 7))


def _check_c(c: Tensor, who: str) -> None:
    if c.dim() not in (1, 2) or c.shape[-1] < 1:
        raise ValueError(f"{who}: the circulant vector must have shape (n,) or (blocks, n), "
                         f"got {tuple(c.shape)}")


def circulant_spectrum(c: Tensor, in_features: int, out_features: int, *,
                       rfft_n: Tensor | None = None) -> Tensor:
    """``rfft(c, n=circulant_fft_size(n, in, out))``: the spectrum :func:`diag_circulant_diag`
    uses for ``c`` (shape ``(n,)`` or ``(blocks, n)``) acting on ``in`` inputs with ``out`` rows;
    pass it back as ``c_spectrum`` to skip that FFT (valid only while ``c`` is unchanged).

    Half and bfloat16 ``c`` are transformed in float32 (a complex64 result), as the op computes.
    ``rfft_n``: ``rfft(c)`` at length ``n`` when the caller has it (AFDF's parameters are that
    spectrum); returned as is when the op's FFT length is ``n``. Shape ``(..., size // 2 + 1)``;
    cost O(n log n), one parameter-sized FFT.
    """
    _check_c(c, "circulant_spectrum")
    n = c.shape[-1]
    if not (1 <= in_features <= n and 1 <= out_features <= n):
        raise ValueError(f"circulant_spectrum: in_features={in_features} and out_features="
                         f"{out_features} must be in [1, n={n}]")
    size = circulant_fft_size(n, in_features, out_features)
    if rfft_n is not None and size == n:
        return rfft_n
    return torch.fft.rfft(c.to(fft_dtype(c.dtype)), n=size)


def circulant_dense(c: Tensor) -> Tensor:
    """The ``n × n`` circulant matrix with first column ``c``: ``C[i, j] = c[(i - j) mod n]``;
    for ``c`` of shape ``(B, n)`` the ``(B, n, n)`` stack of the blocks' matrices."""
    if c.dim() not in (1, 2):
        raise ValueError(f"circulant_dense expects a vector (n,) or a batch (blocks, n), got "
                         f"shape {tuple(c.shape)}")
    n = c.shape[-1]
    idx = torch.arange(n, device=c.device)
    return c[..., (idx[:, None] - idx[None, :]) % n]


def rfft(t: Tensor, n: int | None = None) -> Tensor:
    """``torch.fft.rfft(t, n)`` along the last dimension, also for an empty batch (MKL and
    cuFFT reject a zero-size transform; the spectrum of no rows is no rows)."""
    if t.numel() == 0:
        n = t.shape[-1] if n is None else n
        return t.new_zeros(*t.shape[:-1], n // 2 + 1, dtype=t.dtype.to_complex())
    return torch.fft.rfft(t, n=n)


def irfft(t: Tensor, n: int) -> Tensor:
    """``torch.fft.irfft(t, n)`` along the last dimension, also for an empty batch."""
    if t.numel() == 0:
        return t.new_zeros(*t.shape[:-1], n, dtype=t.dtype.to_real())
    return torch.fft.irfft(t, n=n)


def _flat(t: Tensor, keep: int) -> Tensor:
    """``t`` with its leading dimensions (all but the last ``keep``) merged into one; unlike
    ``reshape(-1, ...)`` also when a dimension is 0."""
    lead = t.shape[:t.dim() - keep]
    return t.reshape(math.prod(lead), *t.shape[t.dim() - keep:])


def _sum_to(t: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``t`` (shape ``(..., *shape)``) over its leading dimensions (zeros for no rows)."""
    return _flat(t, len(shape)).sum(0)


def _reversed_spectrum(c: Tensor, size: int) -> Tensor:
    """Spectrum (length ``size``) of ``c' = [c_0, c_{n-1}, …, c_1]``: ``circ(c)^T = circ(c')``."""
    return rfft(torch.roll(c.flip(-1), 1, dims=-1), n=size)


def _circ_from_spectrum(vf: Tensor, spectrum: Tensor, n: int, size: int, rows: int,
                        v_len: int, consume: bool = True) -> Tensor:
    """``(circ(c) · pad_n(v))[..., :rows]`` from ``vf = rfft(v, size)`` and
    ``spectrum = rfft(c, size)``; with ``consume``, ``vf`` is multiplied in place when no graph
    is built.

    ``size == n``: one circular convolution. ``size > n``: a linear convolution
    ``z = c * v`` (length ``n + v_len - 1 ≤ size``) folded modulo ``n``.
    (No ``out=`` tensors for the FFTs: torch's CPU FFTs compute into a temporary and copy.)
    """
    vf = vf.mul_(spectrum) if consume and not torch.is_grad_enabled() else vf * spectrum
    z = irfft(vf, n=size)
    del vf
    if size == n:
        return z[..., :rows] if rows < n else z
    if size >= n + rows:  # z_{k+n} for k < rows exists (zero beyond the convolution's length)
        return z[..., :rows] + z[..., n:n + rows]
    wrap = min(rows, v_len - 1)  # z_{k+n} is nonzero only for k ≤ v_len - 2
    u = z[..., :rows].clone()
    if wrap > 0:
        u[..., :wrap] += z[..., n:n + wrap]
    return u


def _batch_cross_correlation(xf: Tensor, gf: Tensor, blocks: torch.Size,
                             consume: bool = True) -> Tensor:
    """``Σ_b conj(xf_b) · gf_b`` over the leading dims before ``blocks`` (``()`` or ``(B,)``,
    kept); with ``consume``, ``xf`` is conjugated and multiplied in place when no graph is
    built. The sum runs on a real view: a reduction of a complex tensor over its batch axis is
    ~10× slower on CPU."""
    if torch.is_grad_enabled() or not consume:
        prod = xf.conj() * gf
    else:
        prod = xf.conj_physical_().mul_(gf)
    flat = _flat(prod, len(blocks) + 1)
    return torch.view_as_complex(torch.view_as_real(flat).sum(0))


def _forward_math(x, c, d_in, d_out, bias, out_features, size, c_spectrum, keep_xf=False):
    """Forward of :class:`_DiagCirculantDiag`; returns ``(y, u, spectrum of c, xf)`` with
    ``xf`` the spectrum of ``d_in ⊙ x`` when ``keep_xf``, else ``None``."""
    cf = rfft(c, n=size) if c_spectrum is None else c_spectrum
    xf = rfft(x if d_in is None else x * d_in, n=size)
    if not keep_xf:  # hand the only reference over, so that it is freed before y exists
        xf, u = None, _circ_from_spectrum(xf, cf, c.shape[-1], size, out_features, x.shape[-1])
    else:
        u = _circ_from_spectrum(xf, cf, c.shape[-1], size, out_features, x.shape[-1],
                                consume=False)
    if d_out is not None and bias is not None:
        y = torch.addcmul(bias, u, d_out)
    elif d_out is not None:
        y = u * d_out
    elif bias is not None:
        y = u + bias
    else:
        y = u.contiguous()
    return y, u, cf, xf


class _DiagCirculantDiag(torch.autograd.Function):
    """Fused ``d_out ⊙ (circ(c) · pad(d_in ⊙ x))[:out] + bias`` (see the module docstring);
    ``c`` is ``(n,)`` or ``(B, n)``, every gradient is reduced to its argument's shape."""

    @staticmethod
    def forward(ctx, x, c, d_in, d_out, bias, out_features, size, c_spectrum, recompute):
        spectrum_floats = x.numel() // max(x.shape[-1], 1) * (size // 2 + 1) * 2
        keep_xf = (ctx.needs_input_grad[1] and not recompute
                   and spectrum_floats <= KEEP_SPECTRUM_MAX_FLOATS)
        y, u, cf, xf = _forward_math(x, c, d_in, d_out, bias, out_features, size, c_spectrum,
                                     keep_xf)
        save_u = d_out is not None and ctx.needs_input_grad[3] and not recompute
        ctx.out_features, ctx.in_features, ctx.size = out_features, x.shape[-1], size
        ctx.bias_shape = None if bias is None else bias.shape
        ctx.save_for_backward(x, c, cf, d_in, d_out, u.contiguous() if save_u else None, xf)
        return y

    @staticmethod
    def backward(ctx, g):
        x, c, cf, d_in, d_out, u, xf = ctx.saved_tensors
        n, n_in, out, size = c.shape[-1], ctx.in_features, ctx.out_features, ctx.size
        need_x, need_c, need_din, need_dout, need_b = ctx.needs_input_grad[:5]
        grad_x = grad_c = grad_din = grad_dout = grad_b = None
        if torch.is_grad_enabled():
            # double backward (create_graph=True): rebuild what forward computed without a
            # graph (cf here, u below), so that second derivatives see its dependence on c, x.
            cf, u = rfft(c, n=size), None

        if need_b:
            grad_b = _sum_to(g, ctx.bias_shape)
        fresh_xf = None  # the input's spectrum computed here (with a graph under create_graph)
        if need_dout and u is None:  # recompute=True or create_graph: rebuild u
            fresh_xf = rfft(x if d_in is None else x * d_in, n=size)
            u = _circ_from_spectrum(fresh_xf, cf, n, size, out, n_in, consume=not need_c)
            if not need_c:
                fresh_xf = None
        # Without a graph, one scratch tensor carries g ⊙ u, then g ⊙ d_out: at most two
        # batch-sized temporaries are alive at any time (peak memory).
        scratch = None
        if need_dout:
            scratch = g * u
            del u
            grad_dout = _sum_to(scratch, d_out.shape)
        if not (need_x or need_c or need_din):
            return grad_x, grad_c, grad_din, grad_dout, grad_b, None, None, None, None
        if d_out is None:
            gu = g
        elif scratch is not None and not torch.is_grad_enabled():
            gu = torch.mul(g, d_out, out=scratch)
        else:
            gu = g * d_out
        gf = rfft(gu, n=size)  # zero-pads the truncated rows
        del gu, scratch
        if need_c:
            # dL/dc_k = Σ_b Σ_i gu_i xs_{(i-k) mod n}: a cross-correlation, reduced over the
            # batch in the frequency domain, then folded to the n circular lags.
            kept = xf is not None and not torch.is_grad_enabled()
            if not kept:  # recompute the input's spectrum (or rebuild it with a graph)
                xf = fresh_xf if fresh_xf is not None else rfft(
                    x if d_in is None else x * d_in, n=size)
            blocks = c.shape[:-1]
            r = irfft(_batch_cross_correlation(xf, gf, blocks, consume=not kept),
                                n=size)
            del xf
            if size == n:
                grad_c = r
            else:  # lags 0..out-1 sit at r[:out], lags -(in-1)..-1 at the end of r
                grad_c = r.new_zeros(*blocks, n)
                grad_c[..., :out] += r[..., :out]
                if n_in > 1:
                    grad_c[..., n - n_in + 1:] += r[..., size - n_in + 1:]
        if need_x or need_din:
            ct = cf.conj() if size == n else _reversed_spectrum(c, size)
            gxs = _circ_from_spectrum(gf, ct, n, size, n_in, out)  # circ(c)^T g
            del gf
            if need_din:
                grad_din = _sum_to(gxs * x, d_in.shape)
            if need_x:
                if d_in is None:
                    grad_x = gxs
                else:
                    grad_x = gxs * d_in if torch.is_grad_enabled() else gxs.mul_(d_in)
        return grad_x, grad_c, grad_din, grad_dout, grad_b, None, None, None, None


def _check_op_args(x: Tensor, c: Tensor, out_features: int, d_in, d_out, bias) -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"expected a floating-point input, got dtype {x.dtype}")
    _check_c(c, "diag_circulant_diag")
    n = c.shape[-1]
    if x.dim() == 0 or not 1 <= x.shape[-1] <= n:
        raise ValueError(
            f"input of shape {tuple(x.shape)} does not fit a circulant of size {n} "
            "(the last dimension must be at least 1 and at most n)"
        )
    blocks = c.shape[0] if c.dim() == 2 else None
    if blocks is not None and (x.dim() < 2 or x.shape[-2] != blocks):
        raise ValueError(f"with {blocks} circulant blocks the input must have shape "
                         f"(..., {blocks}, in), got {tuple(x.shape)}")
    if not 1 <= out_features <= n:
        raise ValueError(f"out_features must be in [1, {n}], got {out_features}")
    for name, t, size in (("d_in", d_in, x.shape[-1]), ("d_out", d_out, out_features),
                          ("bias", bias, out_features)):
        if t is not None and tuple(t.shape) != (size,) and (
                blocks is None or tuple(t.shape) != (blocks, size)):
            also = "" if blocks is None else f" or ({blocks}, {size})"
            raise ValueError(f"{name} must have shape ({size},){also}, got {tuple(t.shape)}")


def diag_circulant_diag(
    x: Tensor,
    c: Tensor,
    *,
    d_in: Tensor | None = None,
    d_out: Tensor | None = None,
    bias: Tensor | None = None,
    out_features: int | None = None,
    c_spectrum: Tensor | None = None,
    recompute: bool = False,
) -> Tensor:
    """``d_out ⊙ (circ(c) · pad_n(d_in ⊙ x))[:out_features] + bias``, ``x`` of shape ``(..., in)``.

    ``n = c.shape[-1]`` must be at least ``in`` and ``out_features`` (default ``n``). Any of
    ``d_in`` (shape ``(in,)``), ``d_out`` (``(out,)``) and ``bias`` (``(out,)``) may be ``None``.
    Blocks: ``c`` of shape ``(B, n)`` is ``B`` independent circulants; ``x`` is then
    ``(..., B, in)``, ``d_in``/``d_out``/``bias`` are shared or per block (``(B, in)``,
    ``(B, out)``) and the output is ``(..., B, out)``.
    Differentiable in every tensor argument through an FFT-based backward (gradients summed
    over the leading batch dims; ``∂c`` keeps the block dim).
    ``c_spectrum`` (optional) is :func:`circulant_spectrum` ``(c, in, out)`` computed by the
    caller, to skip ``c``'s FFT; the caller answers for it matching ``c`` (the layers pass none).
    Half/bfloat16 arguments are computed in float32 (the spectrum then complex64) and the
    result cast back to ``x``'s dtype (float32 under autocast).
    ``recompute=True`` keeps no activation for backward (only ``x``, which the caller holds
    anyway): backward rebuilds ``u = circ(c)·pad(d_in ⊙ x)`` with one more FFT — half the saved
    activations of a deep DCNN for 10–15 % more time (measured at n = 4,096).
    Cost per call: O(rows · L log L) with ``L = circulant_fft_size(n, in, out)``.
    """
    n = c.shape[-1] if c.dim() else 0
    out_features = n if out_features is None else int(out_features)
    _check_op_args(x, c, out_features, d_in, d_out, bias)
    size = circulant_fft_size(n, x.shape[-1], out_features)
    if c_spectrum is not None and c_spectrum.shape != (*c.shape[:-1], size // 2 + 1):
        raise ValueError(f"c_spectrum must have shape {(*c.shape[:-1], size // 2 + 1)} (rfft "
                         f"of length {size}), got {tuple(c_spectrum.shape)}")
    if any(t is not None and t.dtype in _LOW_PRECISION for t in (x, c, d_in, d_out, bias)):
        # FFTs need float32 (fft_dtype): compute in float32, return float32 under autocast
        # (its rule for fp32-only ops), else the input's dtype.
        out_dtype = torch.float32 if torch.is_autocast_enabled(x.device.type) else x.dtype
        up = [None if t is None else t.float() for t in (x, c, d_in, d_out, bias)]
        if c_spectrum is not None:
            c_spectrum = c_spectrum.to(torch.complex64)
        with torch.autocast(x.device.type, enabled=False):
            y = diag_circulant_diag(up[0], up[1], d_in=up[2], d_out=up[3], bias=up[4],
                                    out_features=out_features, c_spectrum=c_spectrum,
                                    recompute=recompute)
        return y.to(out_dtype)
    args = (x, c, d_in, d_out, bias, out_features, size, c_spectrum)
    if torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, c, d_in, d_out, bias)):
        return _DiagCirculantDiag.apply(*args, bool(recompute))
    return _forward_math(*args)[0]  # inference: skip the autograd.Function machinery


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
    """Dense reference ``(out, in)`` matrix of :func:`diag_circulant_diag` (without bias);
    ``(B, out, in)`` for ``c`` of shape ``(B, n)`` (``d_in``/``d_out`` shared or per block)."""
    w = circulant_dense(c)[..., :out_features, :in_features]
    if d_in is not None:
        w = w * d_in[..., None, :]
    if d_out is not None:
        w = d_out[..., :, None] * w
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
