r"""Residual blocks of the low-cost CNNs (Treister, Ruthotto, Sharoni, Zafrani, Haber,
*Low-cost parameterizations of deep convolutional neural networks*, 2018; Ruthotto & Haber,
*Deep neural networks motivated by partial differential equations*, JMIV 2020, arXiv 2018;
Ephrath, Eliasof, Ruthotto, Haber, Treister, *LeanConvNets*, IEEE JSTSP 2020): time steps of
size ``h`` of PDEs on feature maps ``Y`` ``(N, C, H, W)``, ``C`` channels in and out, the
spatial size kept. ``K`` is any registered conv operator (:func:`~compactnn.conv.make_conv`,
``k × k``, ``k`` odd, padding ``k // 2``), ``N`` a normalization (``BatchNorm2d`` or none),
``σ`` an activation and ``b`` a per-channel bias (``N``'s shift with batch norm, else ``K``'s
bias).

* ``explicit`` (:class:`ExplicitRDBlock`): a reaction-diffusion step, both parts forward Euler:
  ``Y ← Y + h·σ(N(K Y) + b)``, then ``Y ← Y − h·LᵀL Y`` with ``L`` a trainable depthwise
  ``k_L × k_L`` convolution (zero padding; ``Lᵀ`` its adjoint, ``conv_transpose2d``).
* ``imex`` (:class:`IMEXRDBlock`): the same reaction step, then the diffusion step implicit,
  ``(I + h·LᵀL) Y_new = Y``, solved per channel by a 2-D FFT with **periodic** boundary
  conditions (there ``LᵀL`` is diagonal in Fourier space: ``Ŷ_new = Ŷ / (1 + h·|L̂|²)``);
  unconditionally stable, unlike the explicit diffusion step (stable for ``h·‖LᵀL‖ ≤ 2``).
* ``symmetric`` (:class:`SymmetricBlock`): the parabolic (symmetric) ResNet step of Ruthotto &
  Haber, ``Y ← Y − h·Kᵀ σ(N(K Y) + b)``, ``Kᵀ`` the adjoint convolution
  (:func:`adjoint_conv`); stable for monotone ``σ`` (its Jacobian is negative semi-definite
  up to ``N``).
* ``residual`` (:class:`ResidualBlock`): the plain residual step ``Y ← Y + h·K₂ σ(N(K₁ Y))``
  (``h = 1``: He et al.'s unit without its second normalization and final activation).

Costs are multiply-adds per image (:meth:`flop_parts`): the operators' own ``flops`` (FFTs
counted at ``1.25·L·log2 L``, :func:`~compactnn.functional.conv_circulant.rfft_macs`), the
diffusion's depthwise convolutions, the IMEX solve's 2-D FFTs (one of length ``H·W`` per
channel and direction) and, for batch norm, one multiply-add per element (inference form);
activations, residual additions and biases are not counted.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import check_kwargs
from ..functional import conv_circulant as CF
from ..functional.circulant import diag_circulant_diag
from ..registry import accepted_kwargs, get
from .operators import CirculantConv2d, DCConv2d, FullConv2d, LeanConv2d, SeparableConv2d
from .registry import get_conv_class, make_conv

__all__ = ["BLOCKS", "NORMS", "ExplicitRDBlock", "IMEXRDBlock", "ResidualBlock",
           "SymmetricBlock", "adjoint_conv", "adjoint_flops", "diffusion_symbol",
           "implicit_diffusion", "make_block"]

NORMS = ("batch", "none")
#: arguments the block fixes for its operators (``conv_kwargs`` may not set them)
_OP_FIXED = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "bias", "device",
             "dtype")


# ------------------------------------------------------------------ adjoint of an operator

def _check_same_square(op: nn.Module) -> None:
    k = op.kernel_size
    if op.in_channels != op.out_channels or op.stride != 1 or k % 2 == 0 or \
            op.padding != k // 2:
        raise ValueError(f"adjoint_conv needs a C → C operator with stride 1, an odd kernel and "
                         f"padding k // 2, got {op.in_channels} → {op.out_channels}, stride "
                         f"{op.stride}, kernel {k}, padding {op.padding}")


def adjoint_conv(op: nn.Module, z: Tensor) -> Tensor:
    """``Kᵀ z`` for the linear part of ``op`` (its bias left out): the adjoint in the ``L²``
    inner product, ``⟨K x, z⟩ = ⟨x, Kᵀ z⟩``, of a ``C → C`` operator with stride 1, odd ``k``
    and padding ``k // 2`` (zero padding). No autograd call: an explicit formula per operator,
    differentiable in ``z`` and in the operator's parameters.

    Per output pixel: ``full`` — ``conv_transpose2d`` with its kernel, ``C²k²``; ``lean`` — the
    transposed 1×1 part plus the flipped stencil, ``C² + k²C`` (``Kᵀ`` is again lean);
    ``separable`` — transposed 1×1, then the flipped depthwise stencil, ``C² + k²C``; ``dc`` —
    ``Kᵀ = Sᵀ circ(c)ᵀ D``: the diagonal, the transposed circulant (again a circulant) by FFT,
    the flipped depthwise stencil, as the forward; ``circulant`` — ``Kᵀ`` is a circulant
    coupling of full extent with reindexed, flipped stencils, run on the FFT path (its cost,
    independent of the band). Any other operator: ``conv_transpose2d`` with ``op.to_dense()``
    (``C²k²``: the dense cost). :func:`adjoint_flops` counts them."""
    _check_same_square(op)
    k, p = op.kernel_size, op.padding
    if isinstance(op, LeanConv2d):
        return CF.lean_conv2d(z, op.spatial_kernel().flip(-1, -2), op.pointwise.t(),
                              padding=p)
    if isinstance(op, SeparableConv2d):
        u = F.conv2d(z, op.pointwise.t()[:, :, None, None])
        return F.conv2d(u, op.spatial.flip(-1, -2).unsqueeze(1), padding=p, groups=u.shape[1])
    if isinstance(op, DCConv2d):
        n = op.n
        c_t = op.c[(-torch.arange(n, device=op.c.device)) % n]  # circ(c)ᵀ = circ(c_t)
        u = diag_circulant_diag(z.permute(0, 2, 3, 1), c_t, d_in=op.d).permute(0, 3, 1, 2)
        return F.conv2d(u, op.spatial.flip(-1, -2).unsqueeze(1), padding=p, groups=u.shape[1])
    if isinstance(op, CirculantConv2d):
        n, m = op.n, op.channel_extent
        full = op.weight.new_zeros(n, k, k)
        full = torch.cat([op.weight, full[m:]]) if m < n else op.weight
        j = torch.arange(n, device=full.device)
        w_t = full[((m - 1) // 2 + (n - 1) // 2 - j) % n].flip(-1, -2)
        return CF.circulant_conv2d(z, w_t, out_channels=n, padding=p, impl="fft")
    if isinstance(op, FullConv2d):
        return F.conv_transpose2d(z, op.weight, padding=p)
    return F.conv_transpose2d(z, op.to_dense(), padding=p)


def adjoint_flops(op: nn.Module, height: int, width: int, batch: int = 1) -> int:
    """Multiply-adds of :func:`adjoint_conv` on ``batch`` ``height × width`` maps."""
    _check_same_square(op)
    c, k, hw = op.in_channels, op.kernel_size, height * width
    if isinstance(op, (LeanConv2d, SeparableConv2d, DCConv2d)):
        return op.flops(height, width, batch)  # the same terms as the forward
    if isinstance(op, CirculantConv2d):
        return CF.circulant_conv_flops(c, c, c, k, height, width, height, width, "fft", batch)
    return batch * hw * c * c * k * k


# ------------------------------------------------------------------ diffusion

def _depthwise_weight(kernel: Tensor) -> Tensor:
    return kernel.unsqueeze(1)  # (C, k, k) → (C, 1, k, k)


def diffusion(y: Tensor, kernel: Tensor) -> Tensor:
    """``LᵀL y`` with ``L`` the depthwise convolution by ``kernel`` ``(C, k, k)`` (``k`` odd,
    zero padding ``k // 2``, cross-correlation as ``F.conv2d``) and ``Lᵀ`` its adjoint.
    ``2k²`` multiply-adds per element of ``y``."""
    w, p, c = _depthwise_weight(kernel), kernel.shape[-1] // 2, kernel.shape[0]
    return F.conv_transpose2d(F.conv2d(y, w, padding=p, groups=c), w, padding=p, groups=c)


def diffusion_symbol(kernel: Tensor, height: int, width: int) -> Tensor:
    """``|L̂(ω)|²`` ``(C, H, W//2 + 1)``: the eigenvalues of ``LᵀL`` for the **periodic**
    depthwise convolution ``(L y)[x] = Σ_t kernel[t] · y[(x + t − k//2) mod (H, W)]`` on
    ``H × W`` maps, at the real-FFT frequencies (taps that wrap onto the same pixel add up)."""
    c, k = kernel.shape[0], kernel.shape[-1]
    t = torch.arange(k, device=kernel.device) - k // 2
    rows = (t % height)[:, None].expand(k, k)
    cols = (t % width)[None, :].expand(k, k)
    g = kernel.new_zeros(c, height, width)
    ch = torch.arange(c, device=kernel.device)[:, None, None].expand(c, k, k)
    g = g.index_put((ch, rows.expand(c, k, k), cols.expand(c, k, k)), kernel, accumulate=True)
    spec = torch.fft.rfft2(g)
    return spec.real ** 2 + spec.imag ** 2


def implicit_diffusion(y: Tensor, kernel: Tensor, h: float) -> Tensor:
    """The solution ``Y`` of ``(I + h·LᵀL) Y = y`` per channel, ``L`` the **periodic**
    depthwise convolution of :func:`diffusion_symbol`: ``Y = F⁻¹[F(y) / (1 + h·|L̂|²)]``
    (``h ≥ 0``: the system is symmetric positive definite). Per call: one real 2-D FFT of the
    kernel per channel; per image two of ``y`` per channel (forward and inverse). Computed in
    float32 for half-precision inputs."""
    height, width = y.shape[-2:]
    work = torch.promote_types(y.dtype, torch.float32)
    sym = diffusion_symbol(kernel.to(work), height, width)
    spec = torch.fft.rfft2(y.to(work))
    return torch.fft.irfft2(spec / (1 + h * sym), s=(height, width)).to(y.dtype)


# ------------------------------------------------------------------ blocks

def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


class _Block(nn.Module, metaclass=ABCMeta):
    """Common arguments: ``channels`` ``C`` (in and out), ``conv`` (a registered operator) and
    ``conv_kwargs`` (its structure kwargs), ``kernel_size`` (odd; padding ``k // 2``), step
    ``h > 0``, ``norm`` (``"batch"``: ``BatchNorm2d`` with affine scale and shift — the shift is
    ``b`` — after ``K``, whose own bias is then off; ``"none"``: ``K`` keeps its bias as ``b``),
    ``activation`` (a registered activation)."""

    name = ""

    def __init__(self, channels: int, *, conv: str = "full", conv_kwargs: dict | None = None,
                 kernel_size: int = 3, h: float = 1.0, norm: str = "batch",
                 activation: str = "relu") -> None:
        super().__init__()
        self.channels = _positive_int("channels", channels)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (the blocks keep the spatial size), "
                             f"got {kernel_size}")
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not (
                math.isfinite(h) and h > 0):
            raise ValueError(f"h must be a positive finite number, got {h!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {norm!r}")
        cls = get_conv_class(conv)
        kw = dict(conv_kwargs or {})
        fixed = sorted(set(kw) & set(_OP_FIXED))
        if fixed:
            raise ValueError(f"conv_kwargs may not set {', '.join(fixed)} (the block sets them)")
        self.conv_name, self.conv_kwargs = conv, check_kwargs(
            f"conv {conv!r}", cls, kw, section="conv_kwargs", given=_OP_FIXED)
        self.h, self.norm_name, self.activation_name = float(h), norm, activation
        self.act = get("activation", activation)(0.5, False)

    def _op(self) -> nn.Module:
        return make_conv(self.conv_name, self.channels, self.channels, self.kernel_size,
                         padding=self.kernel_size // 2, bias=self.norm_name == "none",
                         **self.conv_kwargs)

    def _norm(self) -> nn.Module:
        return nn.BatchNorm2d(self.channels) if self.norm_name == "batch" else nn.Identity()

    def _reaction(self, op: nn.Module, norm: nn.Module, y: Tensor) -> Tensor:
        """``σ(N(K y) + b)``."""
        return self.act(norm(op(y)))

    def _norm_flops(self, height: int, width: int, batch: int) -> int:
        return batch * self.channels * height * width if self.norm_name == "batch" else 0

    @abstractmethod
    def flop_parts(self, height: int, width: int, batch: int = 1) -> dict[str, int]:
        """Multiply-adds of one forward on ``batch`` ``height × width`` maps by kind: ``conv``
        (operators, adjoints, depthwise diffusion), ``fft`` (the IMEX solve), ``norm``."""

    def flops(self, height: int, width: int, batch: int = 1) -> int:
        return sum(self.flop_parts(height, width, batch).values())

    def extra_repr(self) -> str:
        kw = "".join(f", {k}={v!r}" for k, v in self.conv_kwargs.items())
        return (f"channels={self.channels}, conv={self.conv_name!r}{kw}, "
                f"kernel_size={self.kernel_size}, h={self.h:g}, norm={self.norm_name!r}")


class ExplicitRDBlock(_Block):
    r"""Reaction-diffusion step, forward Euler in both parts (Treister et al. 2018; Ruthotto &
    Haber 2018): ``Y ← Y + h·σ(N(K Y) + b)``, then ``Y ← Y − h·LᵀL Y``.

    ``L``: a trainable depthwise ``diffusion_kernel × diffusion_kernel`` convolution (odd size,
    zero padding), ``(C, k_L, k_L)`` weights drawn ``N(0, 1/k_L⁴)`` (``E Σ|w| ≈ 0.8`` and
    ``‖LᵀL‖ ≤ (Σ|w|)²``, so typically ``‖LᵀL‖ < 1``: the explicit diffusion step is stable at
    ``h ≤ 2`` at initialization; training may leave that range — :class:`IMEXRDBlock` cannot).
    Parameters: ``K``'s, ``N``'s ``2C`` (batch norm) and ``C·k_L²``. Cost per pixel: ``K``'s,
    ``2·k_L²·C`` for ``LᵀL``, ``C`` for batch norm.
    """

    name = "explicit"

    def __init__(self, channels: int, *, diffusion_kernel: int = 3, **kw) -> None:
        super().__init__(channels, **kw)
        _positive_int("diffusion_kernel", diffusion_kernel)
        if diffusion_kernel % 2 == 0:
            raise ValueError(f"diffusion_kernel must be odd, got {diffusion_kernel}")
        self.diffusion_kernel = diffusion_kernel
        self.op, self.norm = self._op(), self._norm()
        self.diffusion_weight = nn.Parameter(torch.empty(channels, diffusion_kernel,
                                                         diffusion_kernel))
        self.reset_diffusion()

    def reset_diffusion(self) -> None:
        with torch.no_grad():
            self.diffusion_weight.normal_(0.0, 1.0 / self.diffusion_kernel ** 2)

    def forward(self, y: Tensor) -> Tensor:
        y = y + self.h * self._reaction(self.op, self.norm, y)
        return y - self.h * diffusion(y, self.diffusion_weight)

    def flop_parts(self, height, width, batch=1):
        hw, c, kl = height * width, self.channels, self.diffusion_kernel
        return {"conv": self.op.flops(height, width, batch) + batch * 2 * kl * kl * c * hw,
                "norm": self._norm_flops(height, width, batch)}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", diffusion_kernel={self.diffusion_kernel}"


class IMEXRDBlock(ExplicitRDBlock):
    r"""Reaction-diffusion step, implicit-explicit (Treister et al. 2018; Ruthotto & Haber
    2018): the reaction ``Y ← Y + h·σ(N(K Y) + b)`` forward, the diffusion backward,
    ``(I + h·LᵀL) Y_new = Y``.

    The solve (:func:`implicit_diffusion`) treats ``L`` as a **periodic** depthwise convolution
    (the feature maps are taken as a torus), where ``LᵀL`` is diagonalized by the 2-D FFT:
    ``Ŷ_new = Ŷ / (1 + h·|L̂|²)`` — exact, stable for every ``h > 0`` (a contraction), and the
    gradient flows through the FFTs. Note the explicit block's ``L`` has zero padding instead:
    the two diffusion operators differ at the border. Parameters as :class:`ExplicitRDBlock`.
    Cost per image: ``K``'s, ``2C`` real 2-D FFTs of ``H × W`` (``1.25·HW·log2(HW)``
    multiply-adds each, counted as ``fft``), ``C`` more per call for the kernel's spectrum
    (counted per call, as the operators count their stencil spectra), the batch norm.
    """

    name = "imex"

    def forward(self, y: Tensor) -> Tensor:
        y = y + self.h * self._reaction(self.op, self.norm, y)
        return implicit_diffusion(y, self.diffusion_weight, self.h)

    def flop_parts(self, height, width, batch=1):
        fft = CF.rfft_macs(height * width) * self.channels
        return {"conv": self.op.flops(height, width, batch), "fft": fft * (2 * batch + 1),
                "norm": self._norm_flops(height, width, batch)}


class SymmetricBlock(_Block):
    r"""Parabolic (symmetric) residual step (Ruthotto & Haber 2018, their eq. for the
    "parabolic CNN"): ``Y ← Y − h·Kᵀ σ(N(K Y) + b)`` with ``Kᵀ`` the adjoint of ``K``'s linear
    part (:func:`adjoint_conv`: an explicit formula per operator, no autograd call; ``K``'s
    bias, when ``norm="none"``, is ``b``).

    One operator's parameters (plus ``2C`` for batch norm). Cost per pixel: ``K``'s plus
    ``Kᵀ``'s (:func:`adjoint_flops`: as cheap as ``K`` for ``lean``, ``separable``, ``dc``;
    the FFT path's cost for ``circulant``; ``C²k²`` for ``full`` and for operators without an
    explicit adjoint, which go through ``to_dense()``), plus ``C`` for batch norm.
    """

    name = "symmetric"

    def __init__(self, channels: int, **kw) -> None:
        super().__init__(channels, **kw)
        self.op, self.norm = self._op(), self._norm()

    def forward(self, y: Tensor) -> Tensor:
        return y - self.h * adjoint_conv(self.op, self._reaction(self.op, self.norm, y))

    def flop_parts(self, height, width, batch=1):
        return {"conv": self.op.flops(height, width, batch)
                + adjoint_flops(self.op, height, width, batch),
                "norm": self._norm_flops(height, width, batch)}


class ResidualBlock(_Block):
    r"""Plain residual step ``Y ← Y + h·K₂ σ(N(K₁ Y))`` (He et al., *Deep residual learning*,
    CVPR 2016, as the forward-Euler step of Ruthotto & Haber 2018; ``h = 1`` is the usual
    unit without its second normalization and final activation). Parameters: two operators'
    plus ``2C`` for batch norm; with ``norm="none"`` both operators carry a bias, with
    ``"batch"`` neither does (the norm's shift is the bias). Cost per pixel: ``K₁``'s + ``K₂``'s
    + ``C`` for batch norm.
    """

    name = "residual"

    def __init__(self, channels: int, **kw) -> None:
        super().__init__(channels, **kw)
        self.op1, self.norm, self.op2 = self._op(), self._norm(), self._op()

    def forward(self, y: Tensor) -> Tensor:
        return y + self.h * self.op2(self._reaction(self.op1, self.norm, y))

    def flop_parts(self, height, width, batch=1):
        return {"conv": self.op1.flops(height, width, batch) + self.op2.flops(height, width,
                                                                               batch),
                "norm": self._norm_flops(height, width, batch)}


#: block name → class
BLOCKS: dict[str, type[_Block]] = {cls.name: cls for cls in (
    ExplicitRDBlock, IMEXRDBlock, SymmetricBlock, ResidualBlock)}


def make_block(name: str, channels: int, **kwargs) -> nn.Module:
    """``make_block("imex", 64, conv="circulant", h=0.5)``: a block of :data:`BLOCKS`."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; available: {', '.join(BLOCKS)}")
    cls = BLOCKS[name]
    ok = accepted_kwargs(cls) - {"channels"}
    bad = sorted(set(kwargs) - ok)
    if bad:
        raise ValueError(f"block {name!r} does not take {', '.join(map(repr, bad))} (it takes: "
                         f"{', '.join(sorted(ok))})")
    return cls(channels, **kwargs)
