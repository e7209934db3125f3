"""The convolution operators: full (baseline), circulant channel coupling, diagonal-circulant
channel mixing, LeanConvNets' lean operator and depthwise-separable convolution.

Every operator is a drop-in for ``nn.Conv2d(in_channels, out_channels, kernel_size,
stride=1, padding=0, bias=True)`` (square kernels; structure kwargs keyword-only) and satisfies
``op(x) == F.conv2d(x, op.to_dense(), op.dense_bias(), op.stride, op.padding)``. Costs are
per output pixel (``H_o·W_o`` of them per image); ``k`` is the kernel size and
``n = max(C_in, C_out)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..functional import conv_circulant as CF
from ..init import init_diagonal_
from .base import StructuredConv2d, conv_weight_and_bias
from .registry import register_conv

__all__ = ["CirculantConv2d", "DCConv2d", "FullConv2d", "LeanConv2d", "SeparableConv2d"]


def _copy_bias_(op: StructuredConv2d, b: Tensor | None) -> None:
    if op.bias is not None:
        with torch.no_grad():
            op.bias.copy_(b if b is not None else torch.zeros_like(op.bias))


def _from_dense_args(w, stride, padding, bias):
    """``(K, b, stride, padding, has_bias)`` for a ``from_dense`` call: stride and padding from
    the ``nn.Conv2d`` unless given, else 1 and 0."""
    kern, b, s, p = conv_weight_and_bias(w)
    stride = stride if stride is not None else (s if s is not None else 1)
    padding = padding if padding is not None else (p if p is not None else 0)
    return kern, b, stride, padding, (b is not None) if bias is None else bias


@register_conv("full")
class FullConv2d(StructuredConv2d):
    r"""Unstructured convolution, ``nn.Conv2d``'s semantics: the baseline.

    ``Z[o] = Σ_i K[o, i] ⋆ X[i] + b_o``. Parameters: ``C_out·C_in·k² (+C_out)``.
    Cost: ``C_out·C_in·k²`` multiply-adds per output pixel. ``init="uniform"`` (default) is
    ``nn.Conv2d``'s initialization, ``"paper"`` He-normal ``N(0, 2/(C_in·k²))``.
    """

    param_formula = "C_out·C_in·k² + C_out"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, bias=True,
                 init="uniform", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init)
        factory = {"device": device, "dtype": dtype}
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, k, k,
                                               **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size ** 2
        self._fill_(self.weight, fan_in, 2)
        self._reset_bias(fan_in)

    def _conv(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def to_dense(self) -> Tensor:
        return self.weight

    @staticmethod
    def num_params(in_channels, out_channels, kernel_size, *, bias=True, **_) -> int:
        return out_channels * in_channels * kernel_size ** 2 + (out_channels if bias else 0)

    def flops(self, height, width, batch=1) -> int:
        ho, wo = self.output_size(height, width)
        return batch * ho * wo * self.out_channels * self.in_channels * self.kernel_size ** 2

    @classmethod
    def from_dense(cls, w, *, stride=None, padding=None, bias=None):
        """The kernel itself (exact)."""
        kern, b, stride, padding, has_bias = _from_dense_args(w, stride, padding, bias)
        op = cls(kern.shape[1], kern.shape[0], kern.shape[-1], stride, padding, bias=has_bias,
                 device=kern.device, dtype=kern.dtype)
        with torch.no_grad():
            op.weight.copy_(kern)
        _copy_bias_(op, b)
        return op


@register_conv("circulant")
class CirculantConv2d(StructuredConv2d):
    r"""Circulant channel coupling (Treister, Ruthotto, Sharoni, Zafrani, Haber, *Low-cost
    parameterizations of deep convolutional neural networks*, 2018): a 3-D convolution that is
    periodic in the channel index.

    With ``n = max(C_in, C_out)``, channel extent ``m = channel_extent`` (default ``n``: full
    coupling), ``h = (m - 1)//2`` and the input zero-padded from ``C_in`` to ``n`` channels::

        Z[c] = Σ_{j<m} w[j] ⋆ X[(c + j - h) mod n] + b_c          c < C_out

    i.e. ``K[c, d] = w[(d - c + h) mod n]`` (zero when that index is ``≥ m``): a (banded, for
    ``m < n``) circulant in the channels whose entries are ``k × k`` stencils. ``C_in ≠ C_out``
    works at ``n = max(C_in, C_out)`` as the rectangular DC layer does: zero-pad the input
    channels, keep the first ``C_out`` outputs. Parameters: ``w ∈ R^{m×k×k}`` and bias:
    ``m·k² (+C_out)`` — ``k²n`` for full coupling against the full convolution's ``k²·C_in·C_out``.

    ``impl``: ``"conv3d"`` (circular channel padding + one single-channel ``conv3d``,
    ``C_out·m·k²`` multiply-adds per output pixel), ``"fft"`` (real FFT over channels, one
    grouped complex-as-real ``conv2d`` over the ``n//2+1`` channel frequencies, inverse FFT:
    ``4k²(n//2+1)`` multiply-adds plus two length-``n`` channel FFTs, independent of ``m``), or
    ``"auto"`` (:func:`~compactnn.functional.conv_circulant.circulant_conv_impl`, decided once at
    construction: the FFT path, faster at every size measured, see
    ``results/benchmarks/conv.md``; :mod:`compactnn.functional.conv_circulant` derives both
    formulations).
    Init ``"paper"``: ``w ~ N(0, 2/(k²·m·C_in/n))`` (He over the kernel's mean fan-in).
    ``from_dense`` is the exact Frobenius projection: each ``w[j]`` is the mean of the stencils
    on its channel-diagonal ``{(c, d): (d - c + h) mod n = j}``.
    """

    param_formula = "m·k² + C_out  (m = channel_extent ≤ max(C_in, C_out), default max)"
    budget_kwargs = {"channel_extent": 3}

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, bias=True,
                 channel_extent=None, impl="auto", init="paper", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init)
        self.n = max(self.in_channels, self.out_channels)
        self.channel_extent = self._check_extent(channel_extent, self.n)
        if impl not in CF.CIRCULANT_IMPLS:
            raise ValueError(f"impl must be one of {', '.join(map(repr, CF.CIRCULANT_IMPLS))}, "
                             f"got {impl!r}")
        self.impl = impl
        self.resolved_impl = impl if impl != "auto" else CF.circulant_conv_impl(
            self.in_channels, self.out_channels, self.channel_extent, self.kernel_size)
        factory = {"device": device, "dtype": dtype}
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(self.channel_extent, k, k, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    @staticmethod
    def _check_extent(m, n: int) -> int:
        if m is None:
            return n
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= n:
            raise ValueError(f"channel_extent must be an int in [1, {n}] (max(in_channels, "
                             f"out_channels)), got {m!r}")
        return m

    def _fan_in(self) -> float:
        return self.kernel_size ** 2 * self.channel_extent * self.in_channels / self.n

    def reset_parameters(self) -> None:
        self._fill_(self.weight, self._fan_in(), 2)
        self._reset_bias(self._fan_in())

    def _conv(self, x: Tensor) -> Tensor:
        return CF.circulant_conv2d(x, self.weight, self.bias, out_channels=self.out_channels,
                                   stride=self.stride, padding=self.padding,
                                   impl=self.resolved_impl)

    def to_dense(self) -> Tensor:
        return CF.circulant_conv2d_dense(self.weight, self.in_channels, self.out_channels)

    @staticmethod
    def num_params(in_channels, out_channels, kernel_size, *, bias=True, channel_extent=None,
                   **_) -> int:
        m = max(in_channels, out_channels) if channel_extent is None else channel_extent
        return m * kernel_size ** 2 + (out_channels if bias else 0)

    def flops(self, height, width, batch=1) -> int:
        ho, wo = self.output_size(height, width)
        return CF.circulant_conv_flops(self.in_channels, self.out_channels, self.channel_extent,
                                       self.kernel_size, ho, wo, height, width,
                                       self.resolved_impl, batch)

    def structure_repr(self) -> str:
        impl = self.impl if self.impl != "auto" else f"auto ({self.resolved_impl})"
        return f"n={self.n}, channel_extent={self.channel_extent}, impl={impl!r}"

    @classmethod
    def from_dense(cls, w, *, channel_extent=None, impl="auto", stride=None, padding=None,
                   bias=None):
        """Nearest operator in Frobenius norm: mean stencil of each channel-diagonal (exact)."""
        kern, b, stride, padding, has_bias = _from_dense_args(w, stride, padding, bias)
        c_out, c_in, k = kern.shape[0], kern.shape[1], kern.shape[-1]
        op = cls(c_in, c_out, k, stride, padding, bias=has_bias, channel_extent=channel_extent,
                 impl=impl, device=kern.device, dtype=kern.dtype)
        n, m = op.n, op.channel_extent
        c = torch.arange(c_out, device=kern.device)[:, None]
        d = torch.arange(c_in, device=kern.device)[None, :]
        key = ((d - c + (m - 1) // 2) % n).reshape(-1)
        num = kern.new_zeros(n, k * k).index_add_(0, key, kern.reshape(c_out * c_in, k * k))
        count = kern.new_zeros(n).index_add_(0, key, kern.new_ones(c_out * c_in))
        # every diagonal j < m meets the c_out × c_in block: c = 0 (c_in = n) or d = 0 (c_out = n)
        with torch.no_grad():
            op.weight.copy_((num[:m] / count[:m, None]).reshape(m, k, k))
        _copy_bias_(op, b)
        return op


@register_conv("dc")
class DCConv2d(StructuredConv2d):
    r"""Diagonal-circulant channel mixing after a depthwise stencil: our extension of the DC
    layer (Araujo et al., *Understanding and Training Deep Diagonal Circulant Neural
    Networks*, ECAI 2020) to convolutions, the "future work" of that paper.

    ``Z[o] = d_o · Σ_i circ(c)[o, i] · (S_i ⋆ X_i) + b_o`` with ``circ(c)`` of size
    ``n = max(C_in, C_out)`` (first column ``c``), input channels zero-padded to ``n`` and the
    first ``C_out`` rows kept, as the rectangular DC layer: ``K[o, i] = d_o·c_{(o-i) mod n}·S_i``.
    Parameters: ``S ∈ R^{C_in×k×k}``, ``c ∈ R^n``, ``d ∈ R^{C_out}``, bias:
    ``k²·C_in + n + C_out (+C_out)``. Cost per output pixel: ``k²·C_in`` multiply-adds for the
    stencil and two channel FFTs of length ``circulant_fft_size(n, C_in, C_out)``
    (``O(n log n)`` instead of ``C_in·C_out``). Init ``"paper"``: ``S ~ N(0, 1/k²)``,
    ``c ~ N(0, 2/C_in)`` (the DC paper's ``2/n`` for square layers), ``d ~ U{±1}``, bias 0.
    No ``from_dense``: the structure is a trilinear product with no projection.
    """

    param_formula = "k²·C_in + max(C_in,C_out) + 2·C_out"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, bias=True,
                 init="paper", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init)
        self.n = max(self.in_channels, self.out_channels)
        factory = {"device": device, "dtype": dtype}
        k = self.kernel_size
        self.spatial = nn.Parameter(torch.empty(self.in_channels, k, k, **factory))
        self.c = nn.Parameter(torch.empty(self.n, **factory))
        self.d = nn.Parameter(torch.empty(self.out_channels, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k2 = self.kernel_size ** 2
        self._fill_(self.spatial, k2, 1)
        self._fill_(self.c, self.in_channels, 2)
        init_diagonal_(self.d, self.init)  # ones (uniform) or random signs (paper)
        self._reset_bias(self.in_channels * k2)

    def _conv(self, x: Tensor) -> Tensor:
        return CF.dc_conv2d(x, self.spatial, self.c, self.d, self.bias,
                            out_channels=self.out_channels, stride=self.stride,
                            padding=self.padding)

    def to_dense(self) -> Tensor:
        return CF.dc_conv2d_dense(self.spatial, self.c, self.d, self.out_channels)

    @staticmethod
    def num_params(in_channels, out_channels, kernel_size, *, bias=True, **_) -> int:
        return (kernel_size ** 2 * in_channels + max(in_channels, out_channels)
                + out_channels * (2 if bias else 1))

    def flops(self, height, width, batch=1) -> int:
        ho, wo = self.output_size(height, width)
        return CF.dc_conv_flops(self.in_channels, self.out_channels, self.kernel_size, ho, wo,
                                batch)

    def structure_repr(self) -> str:
        return f"n={self.n}"


_STENCILS = ("cross", "square")


@register_conv("lean")
class LeanConv2d(StructuredConv2d):
    r"""LeanConvNets' operator (Ephrath, Eliasof, Ruthotto, Haber, Treister, *LeanConvNets:
    Low-cost yet effective convolutional neural networks*, IEEE JSTSP 2020): a depthwise sparse
    stencil plus a full 1×1 convolution, **summed**.

    ``Z[o] = Σ_i P[o, i]·X_i + [o = i < r]·(S_i ⋆ X_i) + b_o`` with ``r = min(C_in, C_out)``,
    the 1×1 part ``P`` acting at the stencil's centre tap: ``K[o, i] = P[o, i]·δ_centre +
    [o = i < r]·S_i``. ``stencil="cross"`` (default) keeps the centre row and column, ``2k - 1``
    taps: the paper's 5-point stencil at ``k = 3``; ``"square"`` is a full ``k × k`` depthwise
    stencil. With ``C_in ≠ C_out`` the stencil acts on the first ``r`` channels, i.e. it is the
    rectangular identity's pattern: extra inputs reach the output only through ``P``, extra
    outputs only come from it. Odd ``k`` only.
    Parameters: ``C_out·C_in + r·taps (+C_out)`` — ``C² + 5C`` for a square 3×3 layer against
    ``9C²``. Cost per output pixel: ``C_out·C_in + k²·r`` multiply-adds (the cross stencil runs as
    a ``k × k`` depthwise convolution with zeros off the cross).
    Init ``"paper"``: ``S ~ N(0, 1/taps)``, ``P ~ N(0, 1/C_in)`` on rows with a stencil and
    ``N(0, 2/C_in)`` on the others (He: both parts give half of the variance), bias 0.
    ``from_dense`` is the exact Frobenius projection: ``P`` from the centre taps, ``S`` from the
    diagonal's stencil taps, the diagonal's centre tap split evenly between the two (the
    minimum-norm choice; only their sum is determined).
    """

    param_formula = "C_out·C_in + min(C_in,C_out)·taps + C_out  (taps 2k-1 cross, k² square)"
    even_kernel = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, bias=True,
                 stencil="cross", init="paper", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init)
        if stencil not in _STENCILS:
            raise ValueError(f"stencil must be one of {', '.join(map(repr, _STENCILS))}, "
                             f"got {stencil!r}")
        self.stencil = stencil
        self.r = min(self.in_channels, self.out_channels)
        factory = {"device": device, "dtype": dtype}
        k = self.kernel_size
        shape = (self.r, 2 * k - 1) if stencil == "cross" else (self.r, k, k)
        self.spatial = nn.Parameter(torch.empty(*shape, **factory))
        self.pointwise = nn.Parameter(torch.empty(self.out_channels, self.in_channels, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    @staticmethod
    def _taps(kernel_size: int, stencil: str) -> int:
        return 2 * kernel_size - 1 if stencil == "cross" else kernel_size ** 2

    def reset_parameters(self) -> None:
        self._fill_(self.spatial, self._taps(self.kernel_size, self.stencil), 1)
        self._fill_(self.pointwise, self.in_channels, 2)
        if self.init != "uniform":
            with torch.no_grad():
                self.pointwise[:self.r].mul_(0.5 ** 0.5)
        self._reset_bias(self.in_channels)

    def spatial_kernel(self) -> Tensor:
        """The depthwise stencil as ``(r, k, k)`` kernels."""
        if self.stencil == "cross":
            return CF.cross_stencil_kernel(self.spatial, self.kernel_size)
        return self.spatial

    def _conv(self, x: Tensor) -> Tensor:
        return CF.lean_conv2d(x, self.spatial_kernel(), self.pointwise, self.bias,
                              stride=self.stride, padding=self.padding)

    def to_dense(self) -> Tensor:
        return CF.lean_conv2d_dense(self.spatial_kernel(), self.pointwise)

    @staticmethod
    def num_params(in_channels, out_channels, kernel_size, *, bias=True, stencil="cross",
                   **_) -> int:
        r = min(in_channels, out_channels)
        return (out_channels * in_channels + r * LeanConv2d._taps(kernel_size, stencil)
                + (out_channels if bias else 0))

    def flops(self, height, width, batch=1) -> int:
        ho, wo = self.output_size(height, width)
        return batch * ho * wo * (self.out_channels * self.in_channels
                                  + self.r * self.kernel_size ** 2)

    def structure_repr(self) -> str:
        return f"stencil={self.stencil!r}"

    @classmethod
    def from_dense(cls, w, *, stencil="cross", stride=None, padding=None, bias=None):
        """Exact Frobenius projection (see the class docstring)."""
        kern, b, stride, padding, has_bias = _from_dense_args(w, stride, padding, bias)
        c_out, c_in, k = kern.shape[0], kern.shape[1], kern.shape[-1]
        op = cls(c_in, c_out, k, stride, padding, bias=has_bias, stencil=stencil,
                 device=kern.device, dtype=kern.dtype)
        r, mid = op.r, k // 2
        i = torch.arange(r, device=kern.device)
        pointwise = kern[:, :, mid, mid].clone()
        diag = kern[i, i].clone()  # (r, k, k)
        half = 0.5 * pointwise[i, i]
        pointwise[i, i] = half
        diag[:, mid, mid] = half
        with torch.no_grad():
            op.pointwise.copy_(pointwise)
            if stencil == "cross":
                mask = CF.cross_stencil_mask(k, device=kern.device).reshape(-1)
                op.spatial.copy_(diag.reshape(r, k * k)[:, mask])
            else:
                op.spatial.copy_(diag)
        _copy_bias_(op, b)
        return op


@register_conv("separable")
class SeparableConv2d(StructuredConv2d):
    r"""Depthwise-separable convolution (Sifre 2014; Chollet, *Xception*, CVPR 2017; Howard
    et al., *MobileNets*, 2017): a depthwise ``k × k`` stencil per input channel, then a 1×1
    convolution, no bias between them.

    ``Z[o] = Σ_i P[o, i]·(S_i ⋆ X_i) + b_o``: ``K[o, i] = P[o, i]·S_i``. Parameters:
    ``k²·C_in + C_in·C_out (+C_out)``. Cost per output pixel: ``k²·C_in + C_in·C_out``
    multiply-adds. Init ``"paper"``: ``S ~ N(0, 1/k²)``, ``P ~ N(0, 2/C_in)``, bias 0.
    ``from_dense`` is the exact Frobenius projection: for each input channel ``i`` the best
    rank-one approximation ``P[:, i] ⊗ S_i`` of the ``C_out × k²`` block ``K[:, i]`` (SVD),
    the singular value split evenly between the factors.
    """

    param_formula = "k²·C_in + C_in·C_out + C_out"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, bias=True,
                 init="paper", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init)
        factory = {"device": device, "dtype": dtype}
        k = self.kernel_size
        self.spatial = nn.Parameter(torch.empty(self.in_channels, k, k, **factory))
        self.pointwise = nn.Parameter(torch.empty(self.out_channels, self.in_channels, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._fill_(self.spatial, self.kernel_size ** 2, 1)
        self._fill_(self.pointwise, self.in_channels, 2)
        self._reset_bias(self.in_channels)

    def _conv(self, x: Tensor) -> Tensor:
        return CF.separable_conv2d(x, self.spatial, self.pointwise, self.bias,
                                   stride=self.stride, padding=self.padding)

    def to_dense(self) -> Tensor:
        return CF.separable_conv2d_dense(self.spatial, self.pointwise)

    @staticmethod
    def num_params(in_channels, out_channels, kernel_size, *, bias=True, **_) -> int:
        return (kernel_size ** 2 * in_channels + in_channels * out_channels
                + (out_channels if bias else 0))

    def flops(self, height, width, batch=1) -> int:
        ho, wo = self.output_size(height, width)
        return batch * ho * wo * self.in_channels * (self.kernel_size ** 2 + self.out_channels)

    @classmethod
    def from_dense(cls, w, *, stride=None, padding=None, bias=None):
        """Exact Frobenius projection: a rank-one SVD per input channel."""
        kern, b, stride, padding, has_bias = _from_dense_args(w, stride, padding, bias)
        c_out, c_in, k = kern.shape[0], kern.shape[1], kern.shape[-1]
        op = cls(c_in, c_out, k, stride, padding, bias=has_bias, device=kern.device,
                 dtype=kern.dtype)
        blocks = kern.permute(1, 0, 2, 3).reshape(c_in, c_out, k * k)
        half = kern.dtype in (torch.float16, torch.bfloat16)  # no half-precision SVD kernels
        u, s, vh = (t.to(kern.dtype) for t in torch.linalg.svd(
            blocks.float() if half else blocks, full_matrices=False))
        root = s[:, :1].sqrt()  # (C_in, 1)
        with torch.no_grad():
            op.pointwise.copy_((u[:, :, 0] * root).T)
            op.spatial.copy_((vh[:, 0, :] * root).reshape(c_in, k, k))
        _copy_bias_(op, b)
        return op
