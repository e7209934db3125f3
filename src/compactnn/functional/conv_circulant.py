"""Convolutions with structured channel coupling, each with a ``*_dense`` reference kernel.

Every op maps ``x`` of shape ``(N, C_in, H, W)`` to ``(N, C_out, H_o, W_o)`` with
``H_o = (H + 2·padding - k) // stride + 1`` (as :func:`torch.nn.functional.conv2d`), and its
``*_dense`` function returns the ``(C_out, C_in, k, k)`` kernel ``K`` with
``op(x) == F.conv2d(x, K, bias, stride, padding)``. Spatial taps follow ``F.conv2d``
(cross-correlation).

Circulant channel coupling (Treister, Ruthotto, Sharoni, Zafrani, Haber, *Low-cost
parameterizations of deep convolutional neural networks*, 2018; the group's Meganet.jl
``convCircKernel``): a 3-D convolution that is periodic in the channel index. With
``n = max(C_in, C_out)``, a stencil ``w`` of shape ``(m, k, k)`` (channel extent ``m ≤ n``) and
``h = (m - 1) // 2``::

    Z[c] = Σ_{j<m} w[j] ⋆ Y[(c + j - h) mod n]          c = 0 … C_out - 1

where ``Y`` is the input zero-padded from ``C_in`` to ``n`` channels and ``⋆`` the 2-D
cross-correlation of ``F.conv2d``. So ``K[c, d] = w[(d - c + h) mod n]`` when that index is
``< m``, else 0: ``m = n`` is the full circulant coupling (``k²n`` weights; the notation
``Z[c] = Σ_d K̃[(c - d) mod n] ⊛ Y[d]`` of the paper is the same operator with
``K̃[s] = w[(h - s) mod n]``), ``m < n`` a banded circulant centred on the diagonal (``k²m``
weights). ``C_in ≠ C_out`` is handled as the rectangular DC layer does
(:mod:`compactnn.functional.circulant`): work at ``n = max(C_in, C_out)``, zero-pad the input
channels to ``n``, keep the first ``C_out`` output channels.

Two implementations, equal up to rounding:

* ``conv3d``: circular channel padding (an ``index_select`` of the ``C_out + m - 1`` channels
  the outputs read, wrapping modulo ``n``) and one ``conv3d`` with a single input and output
  channel and kernel ``(m, k, k)``: ``C_out·m·k²`` multiply-adds per output pixel.
* ``fft``: a real FFT over the channel axis diagonalizes the circular coupling. With
  ``G[r] = w[(r + h) mod n]`` (zero for indices ``≥ m``) the coupling is the circular
  cross-correlation ``Z[c] = Σ_r G[r] ⋆ Y[(c + r) mod n]``, so per channel frequency ``ω``
  ``Ẑ[ω] = conj(Ĝ[ω]) ⋆ Ŷ[ω]``: ``n//2 + 1`` independent complex ``k × k`` convolutions, run as
  one real grouped ``conv2d`` (groups = frequencies; per group 2 channels in, the real and
  imaginary parts, 2 out, kernel ``[[a, -b], [b, a]]`` for ``a + ib = conj(Ĝ[ω])``), then an
  inverse real FFT over channels and truncation to ``C_out``. ``4·k²·(n//2 + 1)`` multiply-adds
  per output pixel plus one channel FFT per input pixel and one per output pixel: independent
  of ``m``. Half precision runs in float32 (:func:`~compactnn.functional.circulant.fft_dtype`).

``impl="auto"`` chooses by :func:`circulant_conv_impl`, read off the measurements of
``benchmarks/bench_conv.py`` ("conv3d vs fft" in ``results/benchmarks/conv.md``): the FFT
path, which was faster at every size measured; conv3d is the direct reference.

The module also holds the companion operators the circulant coupling is compared with:
``dc_conv2d`` (depthwise stencil, then a diagonal-circulant channel mixing), ``separable_conv2d``
(depthwise, then 1×1) and ``lean_conv2d`` (LeanConvNets: depthwise stencil + 1×1, summed).

FLOP counts (:func:`rfft_macs` and the operators' ``flops``) count multiply-adds of the
convolutions and matrix products and, for FFTs, the conventional ``2.5·L·log2 L`` flops of a
real transform of length ``L`` (FFTW's benchFFT convention), i.e. ``1.25·L·log2 L``
multiply-adds; elementwise products, additions and bias are not counted (as
``torch.utils.flop_counter.FlopCounterMode`` does not).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from .circulant import circulant_fft_size, diag_circulant_diag, diag_circulant_diag_dense, fft_dtype

__all__ = [
    "CIRCULANT_IMPLS",
    "circulant_conv2d",
    "circulant_conv2d_conv3d",
    "circulant_conv2d_dense",
    "circulant_conv2d_fft",
    "circulant_conv_flops",
    "circulant_conv_impl",
    "conv_output_size",
    "cross_stencil_kernel",
    "cross_stencil_mask",
    "dc_conv2d",
    "dc_conv2d_dense",
    "dc_conv_flops",
    "lean_conv2d",
    "lean_conv2d_dense",
    "rfft_macs",
    "separable_conv2d",
    "separable_conv2d_dense",
]

CIRCULANT_IMPLS = ("auto", "conv3d", "fft")


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one spatial axis (``F.conv2d``'s formula)."""
    return (size + 2 * padding - kernel_size) // stride + 1


def rfft_macs(length: int) -> int:
    """Multiply-adds counted for one real FFT (or inverse) of ``length``: ``1.25·L·log2 L``
    rounded (FFTW's ``2.5·L·log2 L`` flops convention, halved); 0 for ``L = 1``."""
    return round(1.25 * length * math.log2(length)) if length > 1 else 0


# ---------------------------------------------------------------- circulant channel coupling

def _check_circulant_args(x: Tensor, weight: Tensor, out_channels: int, who: str) -> int:
    if x.dim() != 4:
        raise ValueError(f"{who}: expected an input of shape (N, C, H, W), got {tuple(x.shape)}")
    if weight.dim() != 3 or weight.shape[1] != weight.shape[2]:
        raise ValueError(f"{who}: the stencil must have shape (m, k, k), got "
                         f"{tuple(weight.shape)}")
    n = max(x.shape[1], out_channels)
    if not 1 <= weight.shape[0] <= n:
        raise ValueError(f"{who}: channel extent m={weight.shape[0]} must be in [1, n={n}] "
                         f"(n = max(in, out channels))")
    return n


def circulant_conv2d_dense(weight: Tensor, in_channels: int, out_channels: int) -> Tensor:
    """``(C_out, C_in, k, k)`` kernel of the circulant coupling with stencil ``weight``
    ``(m, k, k)``: ``K[c, d] = w[(d - c + h) mod n]`` where that index is ``< m``, else 0."""
    m, k = weight.shape[0], weight.shape[-1]
    n = max(in_channels, out_channels)
    if not 1 <= m <= n:
        raise ValueError(f"channel extent m={m} must be in [1, n={n}]")
    c = torch.arange(out_channels, device=weight.device)[:, None]
    d = torch.arange(in_channels, device=weight.device)[None, :]
    j = (d - c + (m - 1) // 2) % n
    inside = j < m
    kern = weight[j.clamp(max=m - 1)] * inside[..., None, None].to(weight.dtype)
    return kern.reshape(out_channels, in_channels, k, k)


def circulant_conv2d_conv3d(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                            out_channels: int, stride: int = 1, padding: int = 0) -> Tensor:
    """Circulant coupling by circular channel padding and one single-channel ``conv3d``."""
    n = _check_circulant_args(x, weight, out_channels, "circulant_conv2d")
    m, k = weight.shape[0], weight.shape[-1]
    c_in = x.shape[1]
    if c_in < n:  # zero input channels up to n (rectangular: C_out > C_in)
        x = F.pad(x, (0, 0, 0, 0, 0, n - c_in))
    # output c reads channels c - h … c - h + m - 1 (mod n): the C_out + m - 1 of them in order
    idx = (torch.arange(out_channels + m - 1, device=x.device) - (m - 1) // 2) % n
    xp = x.index_select(1, idx).unsqueeze(1)
    z = F.conv3d(xp, weight.reshape(1, 1, m, k, k), stride=(1, stride, stride),
                 padding=(0, padding, padding)).squeeze(1)
    if bias is not None:
        z = z + bias[:, None, None]
    return z


def _conj_spectrum_kernel(weight: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """Grouped real ``conv2d`` kernel ``(2F, 2, k, k)`` of ``conj(Ĝ[ω])``, ``F = n//2 + 1``."""
    m, k = weight.shape[0], weight.shape[-1]
    g = F.pad(weight.to(dtype), (0, 0, 0, 0, 0, n - m)).roll(-((m - 1) // 2), dims=0)
    gf = torch.fft.rfft(g, dim=0)  # (F, k, k)
    a, b = gf.real, -gf.imag  # conj(Ĝ) = a + ib
    # per group: out re = a⋆p - b⋆q, out im = b⋆p + a⋆q for an input p + iq
    kern = torch.stack([torch.stack([a, -b], 1), torch.stack([b, a], 1)], 1)  # (F, 2, 2, k, k)
    return kern.reshape(-1, 2, k, k)


def _scale_bins(g: Tensor, n: int, inverse: bool) -> Tensor:
    """``g · c`` (or ``g / c``) over the last axis of a length-``n`` real FFT's spectrum, where
    ``c_ω`` is how often bin ``ω`` counts in the full spectrum: 1 for the DC bin and, ``n``
    even, the Nyquist bin; 2 for the others. Computed on the real view (complex elementwise
    products are several times slower on CPU)."""
    c = torch.full((n // 2 + 1, 1), 0.5 if inverse else 2.0, dtype=g.real.dtype,
                   device=g.device)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return torch.view_as_complex(torch.view_as_real(g) * c)


class _RfftLast(torch.autograd.Function):
    """``rfft(x, n)`` over the last axis, whose backward is one inverse real FFT (autograd's
    runs a full complex FFT on a zero-padded copy): ``∂x = n·irfft(g / c)[:len]``, ``c`` as in
    :func:`_scale_bins`."""

    @staticmethod
    def forward(ctx, x: Tensor, n: int) -> Tensor:
        ctx.n, ctx.length = n, x.shape[-1]
        return torch.fft.rfft(x, n=n)

    @staticmethod
    def backward(ctx, g: Tensor):
        h = _scale_bins(g, ctx.n, inverse=True)
        return torch.fft.irfft(h, n=ctx.n, norm="forward")[..., :ctx.length], None


class _IrfftLast(torch.autograd.Function):
    """``irfft(X, n)`` over the last axis; backward ``∂X = rfft(g)·c/n`` (one real FFT)."""

    @staticmethod
    def forward(ctx, xf: Tensor, n: int) -> Tensor:
        ctx.n = n
        return torch.fft.irfft(xf, n=n)

    @staticmethod
    def backward(ctx, g: Tensor):
        return _scale_bins(torch.fft.rfft(g, norm="forward"), ctx.n, inverse=False), None


#: matrices from this many elements on are transposed one by one (see _transpose_copy)
_BLOCKED_TRANSPOSE_MIN = 2**19


def _transpose_copy(t: Tensor) -> Tensor:
    """``(N, A, B) → (N, B, A)``, contiguous. Large matrices go one at a time through
    PyTorch's cache-blocked 2-D transpose, which its batched strided copy does not use (and
    which at ``C·H·W ≥ 2^19`` outweighs a loop over the batch); smaller ones in one copy."""
    n, a, b = t.shape
    if a * b < _BLOCKED_TRANSPOSE_MIN or n == 0:
        return t.transpose(1, 2).contiguous()
    t = t.contiguous()
    out = t.new_empty(n, b, a)
    for i in range(n):
        out[i].copy_(t[i].t())
    return out


class _Transpose(torch.autograd.Function):
    """:func:`_transpose_copy` with itself as backward."""

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:
        return _transpose_copy(t)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:
        return _transpose_copy(g)


def _to_channels_last(x: Tensor) -> Tensor:
    """``(N, C, H, W) → (N, H, W, C)`` contiguous (a view when ``x`` is channels-last)."""
    nhwc = x.permute(0, 2, 3, 1)
    if nhwc.is_contiguous():
        return nhwc
    n, c, h, w = x.shape
    return _Transpose.apply(x.reshape(n, c, h * w)).view(n, h, w, c)


def _from_channels_last(z: Tensor, channels: int, layout: torch.memory_format) -> Tensor:
    """``(N, H, W, C') → (N, channels, H, W)`` in ``layout``, keeping the first ``channels``."""
    if layout == torch.channels_last:
        return z[..., :channels].permute(0, 3, 1, 2).contiguous(memory_format=layout)
    n, h, w, c = z.shape
    out = _Transpose.apply(z.reshape(n, h * w, c)).view(n, c, h, w)
    return out[:, :channels].contiguous()


def circulant_conv2d_fft(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                         out_channels: int, stride: int = 1, padding: int = 0) -> Tensor:
    """Circulant coupling through a real FFT over the channel axis and one grouped ``conv2d``
    over the ``n//2 + 1`` channel frequencies (see the module docstring).

    Works channels-last, where every step is a view: the channel FFTs run along the last axis
    of ``(N, H, W, C)``, and the real and imaginary parts of frequency ``ω``, adjacent in
    memory, are channels ``2ω`` and ``2ω + 1`` of a channels-last ``(N, 2F, H, W)`` tensor,
    the grouped convolution's groups as they are. The output has the input's memory format
    (as ``conv2d``): no copy for a channels-last input, one output-sized copy otherwise.
    """
    n = _check_circulant_args(x, weight, out_channels, "circulant_conv2d")
    if x.shape[0] == 0:  # FFT libraries reject zero-size transforms
        return circulant_conv2d_conv3d(x, weight, bias, out_channels=out_channels,
                                       stride=stride, padding=padding)
    out_dtype, layout = x.dtype, _memory_format(x)
    work = fft_dtype(torch.promote_types(x.dtype, weight.dtype))
    freqs = n // 2 + 1
    # an explicit transpose: FFTs along a strided axis run far slower once C is large
    xf = _RfftLast.apply(_to_channels_last(x.to(work)), n)  # (N, H, W, F)
    xr = torch.view_as_real(xf).reshape(*xf.shape[:3], 2 * freqs).permute(0, 3, 1, 2)
    zr = F.conv2d(xr, _conj_spectrum_kernel(weight, n, work), stride=stride, padding=padding,
                  groups=freqs).permute(0, 2, 3, 1)  # (N, H_o, W_o, 2F)
    zf = torch.view_as_complex(zr.contiguous().reshape(*zr.shape[:3], freqs, 2))
    z = _from_channels_last(_IrfftLast.apply(zf, n), out_channels, layout)
    if bias is not None:
        z = z + bias.to(work)[:, None, None]
    return z.to(out_dtype)


def circulant_conv_impl(in_channels: int, out_channels: int, channel_extent: int,
                        kernel_size: int) -> str:
    """The implementation ``impl="auto"`` runs: ``"fft"`` at every size.

    By multiply-adds the conv3d path (``C_out·m·k²`` per pixel) would win for narrow bands
    (``m`` below about ``2n / C_out``), but measured side by side
    (``benchmarks/bench_conv.py``, "conv3d vs fft" in ``results/benchmarks/conv.md``: C = 4 …
    1,024, m = 1 … C, 32×32 maps, CPU) the FFT path was faster at every size, from ``m = 1``
    on: a convolution with a single input and output channel cannot use the channel-vectorised
    kernels that the FFT path's grouped ``conv2d`` runs on. The arguments are kept so that a
    device whose conv3d is fast (not measured: no GPU was available) can get a size rule.
    """
    return "fft"


def circulant_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                     out_channels: int, stride: int = 1, padding: int = 0,
                     impl: str = "auto") -> Tensor:
    """Circulant channel coupling (module docstring): ``x`` ``(N, C_in, H, W)``, stencil
    ``weight`` ``(m, k, k)``, optional ``bias`` ``(C_out,)`` → ``(N, C_out, H_o, W_o)``.

    ``impl``: ``"conv3d"``, ``"fft"`` or ``"auto"`` (:func:`circulant_conv_impl`).
    Cost per output pixel: ``C_out·m·k²`` (conv3d) or ``4·k²·(n//2+1)`` multiply-adds plus two
    length-``n`` channel FFTs (fft); memory: the padded input (conv3d) or its spectrum (fft).
    """
    if impl == "auto":
        _check_circulant_args(x, weight, out_channels, "circulant_conv2d")
        impl = circulant_conv_impl(x.shape[1], out_channels, weight.shape[0], weight.shape[-1])
    if impl == "conv3d":
        return circulant_conv2d_conv3d(x, weight, bias, out_channels=out_channels,
                                       stride=stride, padding=padding)
    if impl == "fft":
        return circulant_conv2d_fft(x, weight, bias, out_channels=out_channels, stride=stride,
                                    padding=padding)
    raise ValueError(f"impl must be one of {', '.join(CIRCULANT_IMPLS)}, got {impl!r}")


def circulant_conv_flops(in_channels: int, out_channels: int, channel_extent: int,
                         kernel_size: int, out_h: int, out_w: int, in_h: int, in_w: int,
                         impl: str, batch: int = 1) -> int:
    """Multiply-adds of :func:`circulant_conv2d` with ``impl`` ``"conv3d"`` or ``"fft"`` on
    ``batch`` images (``in_h × in_w`` in, ``out_h × out_w`` out), counted as the module
    docstring says."""
    n, k, m = max(in_channels, out_channels), kernel_size, channel_extent
    if impl == "conv3d":
        return batch * out_channels * m * k * k * out_h * out_w
    freqs = n // 2 + 1
    return (k * k * rfft_macs(n)  # the stencil's spectrum, once per call
            + batch * (in_h * in_w * rfft_macs(n)  # input channel FFTs
                       + 4 * k * k * freqs * out_h * out_w  # grouped complex conv
                       + out_h * out_w * rfft_macs(n)))  # inverse channel FFTs


# ---------------------------------------------------------------- companions

def _memory_format(x: Tensor) -> torch.memory_format:
    """The layout ``conv2d`` gives its output for input ``x``."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _depthwise(x: Tensor, spatial: Tensor, stride: int, padding: int) -> Tensor:
    """Depthwise ``k × k`` convolution of ``x`` with ``spatial`` ``(C, k, k)``."""
    return F.conv2d(x, spatial.unsqueeze(1), stride=stride, padding=padding, groups=x.shape[1])


def _center_tap_input(x: Tensor, kernel_size: int, stride: int, padding: int) -> Tensor:
    """The pixels a ``k × k`` convolution's centre tap reads: ``x`` zero-padded (or cropped) by
    ``padding - (k-1)/2`` and subsampled by ``stride``, so that a 1×1 product on it lines up with
    the ``k × k`` convolution's output grid (``k`` odd)."""
    r = (kernel_size - 1) // 2
    e = padding - r
    if e > 0:
        x = F.pad(x, (e, e, e, e))
    elif e < 0:
        x = x[:, :, -e:x.shape[2] + e, -e:x.shape[3] + e]
    h, w = x.shape[2], x.shape[3]
    return x[:, :, :h:stride, :w:stride] if stride > 1 else x


def dc_conv2d(x: Tensor, spatial: Tensor, c: Tensor, d: Tensor, bias: Tensor | None = None, *,
              out_channels: int, stride: int = 1, padding: int = 0) -> Tensor:
    """Depthwise stencil, then a diagonal-circulant channel mixing at every pixel:
    ``Z[:, o] = d_o · Σ_i circ(c)[o, i] · (S_i ⋆ X_i) + b_o`` with ``circ(c)`` of size
    ``n = max(C_in, C_out)`` (input channels zero-padded to ``n``, the first ``C_out`` rows kept,
    as :func:`~compactnn.functional.circulant.diag_circulant_diag`).

    Shapes: ``spatial`` ``(C_in, k, k)``, ``c`` ``(n,)``, ``d`` and ``bias`` ``(C_out,)``.
    Cost per output pixel: ``k²·C_in`` multiply-adds and two channel FFTs of length
    ``L = circulant_fft_size(n, C_in, C_out)`` (``O(n log n)`` instead of ``C_in·C_out``).
    """
    y = _to_channels_last(_depthwise(x, spatial, stride, padding))
    z = diag_circulant_diag(y, c, d_out=d, bias=bias, out_features=out_channels)
    # the channel FFTs run channels-last: the result stays so for a channels-last input (as
    # conv2d does), else it is transposed back
    return _from_channels_last(z, out_channels, _memory_format(x))


def dc_conv2d_dense(spatial: Tensor, c: Tensor, d: Tensor, out_channels: int) -> Tensor:
    """Kernel of :func:`dc_conv2d`: ``K[o, i] = d_o · circ(c)[o, i] · S_i``."""
    mix = diag_circulant_diag_dense(c, spatial.shape[0], out_channels, d_out=d)
    return mix[:, :, None, None] * spatial[None]


def dc_conv_flops(in_channels: int, out_channels: int, kernel_size: int, out_h: int,
                  out_w: int, batch: int = 1) -> int:
    n = max(in_channels, out_channels)
    size = circulant_fft_size(n, in_channels, out_channels)
    return (rfft_macs(size)  # spectrum of c, once per call
            + batch * out_h * out_w * (kernel_size ** 2 * in_channels + 2 * rfft_macs(size)))


def separable_conv2d(x: Tensor, spatial: Tensor, pointwise: Tensor, bias: Tensor | None = None,
                     *, stride: int = 1, padding: int = 0) -> Tensor:
    """Depthwise ``k × k`` (``spatial`` ``(C_in, k, k)``) then 1×1 (``pointwise``
    ``(C_out, C_in)``): ``K[o, i] = P[o, i] · S_i``. Cost per output pixel:
    ``k²·C_in + C_in·C_out`` multiply-adds."""
    y = _depthwise(x, spatial, stride, padding)
    return F.conv2d(y, pointwise[:, :, None, None], bias)


def separable_conv2d_dense(spatial: Tensor, pointwise: Tensor) -> Tensor:
    return pointwise[:, :, None, None] * spatial[None]


def cross_stencil_mask(kernel_size: int, *, device=None) -> Tensor:
    """Boolean ``k × k`` mask of the centre row and column (``2k - 1`` taps; the 5-point
    stencil for ``k = 3``); ``k`` odd."""
    r = kernel_size // 2
    i = torch.arange(kernel_size, device=device)
    return (i[:, None] == r) | (i[None, :] == r)


def cross_stencil_kernel(values: Tensor, kernel_size: int) -> Tensor:
    """``(C, k, k)`` kernel with ``values`` ``(C, 2k - 1)`` on the cross stencil (row-major
    order of :func:`cross_stencil_mask`) and zeros elsewhere."""
    mask = cross_stencil_mask(kernel_size, device=values.device)
    kern = values.new_zeros(values.shape[0], kernel_size * kernel_size)
    kern = kern.index_copy(1, mask.reshape(-1).nonzero().squeeze(1), values)
    return kern.reshape(-1, kernel_size, kernel_size)


def lean_conv2d(x: Tensor, spatial: Tensor, pointwise: Tensor, bias: Tensor | None = None, *,
                stride: int = 1, padding: int = 0) -> Tensor:
    """LeanConvNets' operator (Ephrath et al. 2020): a depthwise stencil plus a full 1×1
    convolution, summed. ``spatial`` ``(r, k, k)`` acts on channel ``i < r = min(C_in, C_out)``
    and adds to output channel ``i`` (the rectangular identity: extra input channels reach the
    output only through the 1×1 part, extra output channels only from it); ``pointwise``
    ``(C_out, C_in)`` acts at the stencil's centre tap. ``K[o, i] = P[o, i]·δ_centre +
    [o = i < r]·S_i``; ``k`` odd. Cost per output pixel: ``k²·r + C_in·C_out`` multiply-adds
    (``2k - 1`` nonzero taps of a cross stencil, though the depthwise convolution runs all
    ``k²``)."""
    k, r = spatial.shape[-1], spatial.shape[0]
    z = F.conv2d(_center_tap_input(x, k, stride, padding), pointwise[:, :, None, None], bias)
    y = _depthwise(x[:, :r], spatial, stride, padding)
    if r == z.shape[1]:
        return z + y
    return torch.cat([z[:, :r] + y, z[:, r:]], 1)


def lean_conv2d_dense(spatial: Tensor, pointwise: Tensor) -> Tensor:
    k, r = spatial.shape[-1], spatial.shape[0]
    kern = pointwise.new_zeros(*pointwise.shape, k, k)
    kern[:, :, k // 2, k // 2] = pointwise
    i = torch.arange(r, device=spatial.device)
    kern[i, i] = kern[i, i] + spatial
    return kern
