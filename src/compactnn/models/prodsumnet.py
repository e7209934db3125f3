r"""ProdSumNet (Wu 2018, arXiv 1809.02209): networks whose linear maps are products of sums of
Kronecker products, ``W = Π_i Σ_j T_ij ⊗ P_ij`` with small trainable ``T`` and fixed ``P``.

Two models, both registered:

* :class:`ProdSumNet` (``"prodsumnet"``), in the image domain: block ``l`` maps the flattened
  ``(C_l, H_l, W_l)`` map (row-major, NCHW) by one product of sums (applied with
  :func:`~compactnn.functional.kron_matmul`, identity factors as batch dimensions;
  :meth:`ProdSumBlock.factors` lists it for :func:`~compactnn.functional.prodsum_matmul`),

      ``W_l = (I ⊗ P_h ⊗ P_w) · Σ_{p,q} T_pq ⊗ S_p ⊗ S_q``

  — ``S_p`` the zero-padded (dilated) shifts of a ``k × k`` 'same' convolution, ``P`` average
  pooling, ``T_pq ∈ R^{C_{l+1}×C_l}`` the trainable taps — then a per-channel bias and the
  activation. That is a CNN (convolution, average pooling) written as a product of sums; the
  ``separable`` variant replaces the convolution by the product of a vertical and a horizontal
  sum, ``(Σ_q T'_q ⊗ I ⊗ S_q)(Σ_p T_p ⊗ S_p ⊗ I)`` (``k·C_{l+1}·(C_l + C_{l+1})`` weights
  instead of ``k²·C_l·C_{l+1}``), which no CNN layer is.
* :class:`TransformNet` (``"transform-net"``), the transform-domain network: the image is moved
  once into a fixed transform domain and every layer is an element-wise multiplier plus a small
  channel mixing, with no convolution at all.

The transform-domain maths
--------------------------
Transforms (per channel, ``x`` of shape ``(H, W)``):

* ``dct``: ``Z = C_H x C_Wᵀ`` with ``C_n`` the orthonormal DCT-II matrix (real, orthogonal:
  ``x = C_Hᵀ Z C_W``). Layout ``(N, 1, C, F_h, F_w)``.
* ``dft``: ``Z = rfft2(x, norm="ortho")``, the half spectrum ``(H, W//2 + 1)`` of the unitary
  2-D DFT (``x = irfft2(Z, s=(H, W), norm="ortho")``); kept as two real parts, layout
  ``(N, 2, C, F_h, F_w)`` with ``[:, 0]`` the real and ``[:, 1]`` the imaginary part, so the
  classifier reads ``2·C·F_h·F_w`` real features ordered ``[Re X_0 … Re X_{C−1}, Im X_0 …
  Im X_{C−1}]`` (channel-major within each part; :meth:`SpectralTransform.as_channels`).

Truncation (``keep = k``) keeps the low-frequency block: DCT indices ``[0, k)`` along each
side (``k × k``); DFT the frequencies ``|f_h| ≤ ⌊k/2⌋`` (rows ``0 … ⌊k/2⌋`` and
``H−⌊k/2⌋ … H−1``, all ``H`` when that covers them) and ``0 ≤ f_w ≤ ⌊k/2⌋`` — a
conjugate-symmetric set, the half spectrum of the centred ``k × k`` block for odd ``k`` (of the
``(k+1) × (k+1)`` one for even ``k``), so that zero-filling and transforming back loses nothing
more. It is a fixed selection ``E`` applied once after the transform, i.e. the fixed "pooling"
factor ``I_C ⊗ E_h C_H ⊗ E_w C_W`` in ProdSum terms; the inverse zero-fills the dropped
frequencies (a low-pass).

A layer (``C_in → C_out``, ``m`` the multiplier, ``A`` the channel mixing)

    ``Z'_o = m_o ⊙ Σ_i A_oi Z_i  (+ b_o at frequency (0, 0))``

is a product of two sums in ProdSum terms, ``(Σ_o e_o e_oᵀ ⊗ diag(m_o)) · (A ⊗ I_F)``. In the DFT
domain the product ``m_o ⊙ Z`` is complex; a periodic (circular) convolution is diagonal there:
``DFT(k ⊛ x) = DFT(k) · DFT(x)`` for the unnormalised DFT, so with ``m_o = rfft2(k_o)`` (the
plain, unnormalised transform of a real ``H × W`` kernel) the layer is exactly the circular,
full-size depthwise convolution ``x'_o = k_o ⊛ Σ_i A_oi x_i`` — a 1×1 convolution followed by a
periodic ``H × W`` depthwise one (tested). A multiplier that is not the transform of a real
kernel (the imaginary parts of the self-conjugate frequencies, e.g. ``(0, 0)``) has no such
reading but stays a valid layer of the transform-domain network. In the DCT domain an
element-wise multiplier is a filter in the DCT basis, not a circular convolution (only certain
symmetric convolutions are diagonal there).

The bias ``b_o`` at frequency ``(0, 0)`` is a spatial per-channel constant ``b_o/√(H W)``.
Non-linearity (``nonlinearity``): ``"transform"`` applies the activation to the coefficients
(DFT: to the real and imaginary parts separately); ``"spatial"`` transforms back, applies it and
transforms forward again (2 transforms per layer: the network is then a CNN whose convolutions
are periodic, full-size and depthwise); ``"none"``: the network is linear.

Costs per sample: a layer ``F·C_in·C_out`` (dense mixing) + ``F·C_out`` (multiplier)
multiply-adds, ``F = P·F_h·F_w`` (``P`` = 1 for DCT, 2 for DFT); a transform ``C·H·W·(F_h +
F_w)`` (DCT, as two matrix products) or an FFT; against ``k²·C_in·C_out·H·W`` for a convolution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..functional.dct import dct_matrix
from ..functional.prodsum import conv2d_as_prodsum, kron_matmul, pooling_matrix
from ..layers.registry import get_layer_class
from ..registry import register
from .activations import make_activation
from .cnn import infer_image_shape

__all__ = ["PRESETS", "ProdSumNet", "SpectralLayer", "SpectralTransform", "TransformNet",
           "prodsumnet_presets"]

TRANSFORMS = ("dct", "dft")
NONLINEARITIES = ("transform", "spatial", "none")
MULTIPLIERS = ("full", "shared", "lowrank")
_MULT_NOISE = 0.1  # std of the multiplier's perturbation of the identity at initialization


def _positive_int(name: str, v, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return v


def _channels(channels, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or not isinstance(channels, (list, tuple)):
        raise ValueError(f"channels must be a list of positive ints, got {channels!r}")
    out = tuple(channels)
    if not out and not allow_empty:
        raise ValueError("channels must hold at least one positive int")
    for c in out:
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"channels must be positive ints, got {channels!r}")
    return out


def image_shape(in_features: int, input_shape=None) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``input_shape`` (``(C, H, W)`` or ``(H, W)``) or, when ``None``, a
    square image with 1 or 3 channels holding ``in_features`` values."""
    _positive_int("in_features", in_features)
    if input_shape is None:
        return infer_image_shape(in_features)
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                              for s in shape) or math.prod(shape) != in_features:
        raise ValueError(f"input_shape {tuple(input_shape)} does not hold {in_features} features "
                         "as (C, H, W) or (H, W)")
    return shape


def _check_family(name: str, what: str) -> type[nn.Module]:
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a registered linear family name, got {name!r}")
    return get_layer_class(name)


def _as_image(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    c, h, w = shape
    if x.dim() == 2 and x.shape[1] == c * h * w:
        return x.view(x.shape[0], c, h, w)
    if x.dim() == 4 and tuple(x.shape[1:]) == shape:
        return x
    if x.dim() == 3 and c == 1 and tuple(x.shape[1:]) == (h, w):
        return x.unsqueeze(1)
    raise ValueError(f"expected inputs of shape (N, {c * h * w}) or (N, {c}, {h}, {w}), got "
                     f"{tuple(x.shape)}")


# --- the transform-domain network -------------------------------------------------------------
class SpectralTransform(nn.Module):
    """The fixed 2-D transform of a ``(C, H, W)`` image with optional low-frequency truncation
    (module docstring: layouts, kept frequencies). ``forward``: ``(N, C, H, W)`` →
    ``(N, P, C, F_h, F_w)``; :meth:`inverse` maps back (zero-filling dropped frequencies).
    No trainable parameters; the DCT matrices and the DFT row indices are buffers."""

    def __init__(self, height: int, width: int, *, transform: str = "dct",
                 keep: int | None = None, dtype=None, device=None) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be 'dct' or 'dft', got {transform!r}")
        self.height, self.width = _positive_int("height", height), _positive_int("width", width)
        if keep is not None:
            if isinstance(keep, bool) or not isinstance(keep, int) or \
                    not 1 <= keep <= min(height, width):
                raise ValueError(f"keep must be None or an int in [1, {min(height, width)}] (the "
                                 f"low keep×keep frequencies of a {height}x{width} image), got "
                                 f"{keep!r}")
        self.transform, self.keep = transform, keep
        self.parts = 1 if transform == "dct" else 2
        if transform == "dct":
            k_h, k_w = self.freq_shape = self.frequency_shape(height, width, transform, keep)
            dt = dtype or torch.get_default_dtype()
            self.register_buffer("c_h", dct_matrix(height, device=device)[:k_h].to(dt),
                                 persistent=False)
            self.register_buffer("c_w", dct_matrix(width, device=device)[:k_w].to(dt),
                                 persistent=False)
        else:
            self.freq_shape = self.frequency_shape(height, width, transform, keep)
            r = (self.freq_shape[0] - 1) // 2  # |f_h| <= r, all rows when that covers H
            rows = list(range(height)) if self.freq_shape[0] == height else \
                list(range(r + 1)) + list(range(height - r, height))
            self.register_buffer("rows", torch.tensor(rows, dtype=torch.long, device=device),
                                 persistent=False)

    @staticmethod
    def frequency_shape(height: int, width: int, transform: str = "dct",
                        keep: int | None = None) -> tuple[int, int]:
        """``(F_h, F_w)`` of the kept frequencies."""
        if transform == "dct":
            return (height, width) if keep is None else (keep, keep)
        if keep is None:
            return height, width // 2 + 1
        return min(2 * (keep // 2) + 1, height), min(keep // 2 + 1, width // 2 + 1)

    @property
    def truncated(self) -> bool:
        return self.freq_shape != ((self.height, self.width) if self.transform == "dct" else
                                   (self.height, self.width // 2 + 1))

    def forward(self, x: Tensor) -> Tensor:
        if self.transform == "dct":
            c_h, c_w = self.c_h.to(x.dtype), self.c_w.to(x.dtype)
            return (c_h @ x @ c_w.T).unsqueeze(1)
        z = torch.fft.rfft2(x, norm="ortho")
        if self.truncated:
            z = z.index_select(-2, self.rows)[..., :self.freq_shape[1]]
        return torch.stack([z.real, z.imag], dim=1)

    def inverse(self, z: Tensor) -> Tensor:
        """``(N, P, C, F_h, F_w)`` → ``(N, C, H, W)``."""
        if self.transform == "dct":
            return self.c_h.to(z.dtype).T @ z[:, 0] @ self.c_w.to(z.dtype)
        if self.truncated:  # zero-fill: rows [0, a) and [H − a + 1, H), columns [0, F_w)
            f_h, f_w = self.freq_shape
            a = (f_h + 1) // 2
            gap = z.new_zeros(*z.shape[:-2], self.height - f_h, f_w)
            z = torch.cat([z[..., :a, :], gap, z[..., a:, :]], dim=-2)
            z = nn.functional.pad(z, (0, self.width // 2 + 1 - f_w))
        return torch.fft.irfft2(torch.complex(z[:, 0], z[:, 1]), s=(self.height, self.width),
                                norm="ortho")

    @staticmethod
    def as_channels(z: Tensor) -> Tensor:
        """``(N, P, C, F_h, F_w)`` → ``(N, P·C, F_h, F_w)``: DFT channels ``[Re X_0 … Re
        X_{C−1}, Im X_0 … Im X_{C−1}]``."""
        return z.reshape(z.shape[0], z.shape[1] * z.shape[2], *z.shape[3:])

    def extra_repr(self) -> str:
        return (f"{self.transform}, {self.height}x{self.width} -> {self.parts}x"
                f"{self.freq_shape[0]}x{self.freq_shape[1]}, keep={self.keep}")


class SpectralLayer(nn.Module):
    r"""One transform-domain layer ``Z'_o = m_o ⊙ Σ_i A_oi Z_i (+ b_o at frequency (0, 0))`` on
    ``(N, P, C_in, F_h, F_w)`` (``P = 2``: real and imaginary parts, complex product).

    ``A``: the ``C_in → C_out`` channel mixing, a registered linear family (``mixing``, no bias)
    applied at every frequency (and to both parts alike: a real 1×1 convolution). ``m``:
    ``multiplier="full"`` one per output channel and frequency (``P·C_out·F_h·F_w``
    parameters), ``"shared"`` one for all channels (``P·F_h·F_w``), ``"lowrank"`` a separable
    rank-``r`` one per channel, ``m_o = Σ_r u_or v_orᵀ`` (complex for DFT;
    ``P·C_out·r·(F_h + F_w)``). Parameters: ``mixing(C_in, C_out) + multiplier + C_out``
    (bias). Init: the multiplier is 1 (``Σ_r u v`` = 1 for low rank) plus ``N(0, 0.1²)`` noise;
    the mixing uses its family's default."""

    def __init__(self, in_channels: int, out_channels: int, freq_shape: tuple[int, int], *,
                 parts: int = 1, multiplier: str = "full", multiplier_rank: int = 1,
                 mixing: str = "dense", bias: bool = True, dtype=None, device=None) -> None:
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        self.out_channels = _positive_int("out_channels", out_channels)
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {', '.join(MULTIPLIERS)}, got "
                             f"{multiplier!r}")
        if parts not in (1, 2):
            raise ValueError(f"parts must be 1 (real) or 2 (complex), got {parts!r}")
        self.rank = _positive_int("multiplier_rank", multiplier_rank)
        self.multiplier, self.parts, self.freq_shape = multiplier, parts, tuple(freq_shape)
        factory = {"dtype": dtype, "device": device}
        self.mix = _check_family(mixing, "mixing")(in_channels, out_channels, bias=False,
                                                   **factory)
        self.mixing = mixing
        f_h, f_w = self.freq_shape
        if multiplier == "lowrank":
            self.u = nn.Parameter(torch.empty(parts, out_channels, self.rank, f_h, **factory))
            self.v = nn.Parameter(torch.empty(parts, out_channels, self.rank, f_w, **factory))
        else:
            c = out_channels if multiplier == "full" else 1
            self.m = nn.Parameter(torch.empty(parts, c, f_h, f_w, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.multiplier == "lowrank":
                for t in (self.u, self.v):
                    t.normal_(0.0, _MULT_NOISE)
                    t[0] += 1.0 / math.sqrt(self.rank)
            else:
                self.m.normal_(0.0, _MULT_NOISE)
                self.m[0] += 1.0
            if self.bias is not None:
                self.bias.zero_()

    def multiplier_tensor(self) -> Tensor:
        """``m`` as ``(P, C_out or 1, F_h, F_w)``."""
        if self.multiplier != "lowrank":
            return self.m
        u, v = self.u, self.v
        if self.parts == 1:
            return torch.einsum("pcrh,pcrw->pchw", u, v)
        re = torch.einsum("crh,crw->chw", u[0], v[0]) - torch.einsum("crh,crw->chw", u[1], v[1])
        im = torch.einsum("crh,crw->chw", u[0], v[1]) + torch.einsum("crh,crw->chw", u[1], v[0])
        return torch.stack([re, im])

    def forward(self, z: Tensor) -> Tensor:
        h = self.mix(z.movedim(2, -1)).movedim(-1, 2)  # (N, P, C_out, F_h, F_w)
        m = self.multiplier_tensor()
        if self.parts == 1:
            y = h * m
        else:
            y = torch.stack([h[:, 0] * m[0] - h[:, 1] * m[1], h[:, 0] * m[1] + h[:, 1] * m[0]],
                            dim=1)
        if self.bias is not None:
            dc = torch.zeros_like(y[0])
            dc[0, :, 0, 0] = self.bias
            y = y + dc
        return y

    @staticmethod
    def num_params(in_channels: int, out_channels: int, freq_shape: tuple[int, int], *,
                   parts: int = 1, multiplier: str = "full", multiplier_rank: int = 1,
                   mixing: str = "dense", bias: bool = True) -> int:
        f_h, f_w = freq_shape
        mult = {"full": parts * out_channels * f_h * f_w, "shared": parts * f_h * f_w,
                "lowrank": parts * out_channels * multiplier_rank * (f_h + f_w)}[multiplier]
        return (get_layer_class(mixing).num_params(in_channels, out_channels, bias=False)
                + mult + (out_channels if bias else 0))

    def extra_repr(self) -> str:
        rank = f", rank={self.rank}" if self.multiplier == "lowrank" else ""
        return (f"{self.in_channels} -> {self.out_channels}, freq={self.freq_shape}, "
                f"parts={self.parts}, multiplier={self.multiplier!r}{rank}, "
                f"mixing={self.mixing!r}, bias={self.bias is not None}")


@register("transform-net", kind="model")
class TransformNet(nn.Module):
    r"""Transform-domain network (ProdSumNet's convolution-free variant; module docstring).

    ``x`` (``(N, C·H·W)`` or ``(N, C, H, W)``) → fixed ``transform`` (``"dct"`` or ``"dft"``,
    truncated to the low ``keep × keep`` frequencies when ``keep`` is set) → for each
    ``c`` in ``channels``: :class:`SpectralLayer` (``C_prev → c``: channel ``mixing``, an
    element-wise ``multiplier``, a bias) then the activation where ``nonlinearity`` says →
    classifier (a registered linear family, default ``dense``, with ``classifier_kwargs``) on
    the ``P·C_L·F_h·F_w`` real transform-domain features. ``channels=()`` is a linear classifier
    on the (truncated) transform.

    Parameters (exact, :meth:`predicted_num_params`): ``Σ_l SpectralLayer.num_params +
    classifier(P·C_L·F_h·F_w → classes)``; ``channels``, ``len(channels)``, ``keep`` and the
    multiplier's sharing/rank move it freely (the classifier usually dominates).
    Example: MNIST-sized ``transform="dct", keep=8, channels=(4, 4)``: ``(4 + 256 + 4) + (16 +
    256 + 4) + (4·64·10 + 10) = 3,110``.
    """

    def __init__(self, in_features: int, num_classes: int, *,
                 input_shape: tuple[int, ...] | None = None, transform: str = "dct",
                 channels: tuple[int, ...] = (4,), keep: int | None = None,
                 multiplier: str = "full", multiplier_rank: int = 1, mixing: str = "dense",
                 nonlinearity: str = "transform", activation: str = "relu",
                 negative_slope: float = 0.5, bias: bool = True, classifier: str = "dense",
                 classifier_kwargs: dict | None = None) -> None:
        super().__init__()
        shape = image_shape(in_features, input_shape)
        _positive_int("num_classes", num_classes)
        channels = _channels(channels, allow_empty=True)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {', '.join(NONLINEARITIES)}, got "
                             f"{nonlinearity!r}")
        self.act = make_activation(activation, negative_slope)
        c, h, w = shape
        self.input_shape, self.nonlinearity = shape, nonlinearity
        self.transform = SpectralTransform(h, w, transform=transform, keep=keep)
        parts, freq = self.transform.parts, self.transform.freq_shape
        self.layers = nn.ModuleList()
        prev = c
        for out in channels:
            self.layers.append(SpectralLayer(prev, out, freq, parts=parts, multiplier=multiplier,
                                             multiplier_rank=multiplier_rank, mixing=mixing,
                                             bias=bias))
            prev = out
        clf_kw = dict(classifier_kwargs or {})
        self.classifier = _check_family(classifier, "classifier")(
            parts * prev * freq[0] * freq[1], num_classes, **clf_kw)
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), transform=transform, channels=list(channels),
                           keep=keep, multiplier=multiplier, multiplier_rank=multiplier_rank,
                           mixing=mixing, nonlinearity=nonlinearity, activation=activation,
                           negative_slope=negative_slope, bias=bias, classifier=classifier,
                           classifier_kwargs=clf_kw)

    def _nonlin(self, z: Tensor) -> Tensor:
        if self.nonlinearity == "transform":
            return self.act(z)
        if self.nonlinearity == "spatial":
            return self.transform(self.act(self.transform.inverse(z)))
        return z

    def features(self, x: Tensor) -> Tensor:
        """The last layer's transform-domain output, ``(N, P, C_L, F_h, F_w)``."""
        z = self.transform(_as_image(x, self.input_shape))
        for layer in self.layers:
            z = self._nonlin(layer(z))
        return z

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(SpectralTransform.as_channels(self.features(x)).flatten(1))

    @staticmethod
    def predicted_num_params(in_features: int, num_classes: int, *,
                             input_shape: tuple[int, ...] | None = None, transform: str = "dct",
                             channels: tuple[int, ...] = (4,), keep: int | None = None,
                             multiplier: str = "full", multiplier_rank: int = 1,
                             mixing: str = "dense", bias: bool = True, classifier: str = "dense",
                             classifier_kwargs: dict | None = None, **_) -> int:
        """Trainable-parameter count from the formulas, without building the model."""
        c, h, w = image_shape(in_features, input_shape)
        parts = 1 if transform == "dct" else 2
        freq = SpectralTransform.frequency_shape(h, w, transform, keep)
        total, prev = 0, c
        for out in _channels(channels, allow_empty=True):
            total += SpectralLayer.num_params(prev, out, freq, parts=parts, multiplier=multiplier,
                                              multiplier_rank=multiplier_rank, mixing=mixing,
                                              bias=bias)
            prev = out
        return total + get_layer_class(classifier).num_params(
            parts * prev * freq[0] * freq[1], num_classes, **dict(classifier_kwargs or {}))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# --- the image-domain ProdSum network ---------------------------------------------------------
class ProdSumBlock(nn.Module):
    r"""``y = act(W x + b)`` on flattened ``(C_in, H, W)`` maps with ``W`` the product of sums
    ``(I ⊗ P_h ⊗ P_w) · Σ_{p,q} T_pq ⊗ S_p ⊗ S_q`` (or, ``separable``, ``(I ⊗ P_h ⊗ P_w) ·
    (Σ_q T'_q ⊗ I ⊗ S_q)(Σ_p T_p ⊗ S_p ⊗ I)``), applied by :func:`.prodsum_matmul` without
    forming any Kronecker matrix (:meth:`factors` lists the sums; :meth:`forward` applies
    them with :func:`.kron_matmul`, the identity factors as batch dimensions and the 3-mode
    convolution sum as the product ``(Σ_p T̃_p ⊗ S_p ⊗ I)(I ⊗ I ⊗ [S_0; …; S_{k−1}])`` of two
    2-mode ones). ``S``: :func:`.shift_matrix` of a ``kernel_size`` 'same'
    convolution with ``dilation`` (zero padding); ``P``: :func:`.pooling_matrix` (average,
    window = stride = ``pool``; ``pool=1``: none). Fixed factors are buffers (not parameters).

    Parameters: ``k²·C_in·C_out`` (separable: ``k·C_out·(C_in + C_out)``) ``+ C_out`` (bias).
    Init: He-normal over each factor's fan-in (the last factor carries the ReLU gain 2).
    Cost per sample: the shifts and pooling are applied as dense ``H × H``, ``W × W`` matrices
    (:func:`.kron_matmul`), about ``R·C·H·W·(H + W)`` multiply-adds per sum of ``R`` terms."""

    def __init__(self, in_channels: int, out_channels: int, height: int, width: int, *,
                 kernel_size: int = 3, dilation: int = 1, separable: bool = False,
                 pool: int = 2, act_before_pool: bool = False, bias: bool = True, dtype=None,
                 device=None) -> None:
        super().__init__()
        k = _positive_int("kernel_size", kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding), got {k}")
        d, pool = _positive_int("dilation", dilation), _positive_int("pool", pool)
        if pool > min(height, width):
            raise ValueError(f"pooling by {pool} needs a map of at least {pool}x{pool}, got "
                             f"{height}x{width}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.dilation, self.separable, self.pool = k, d, separable, pool
        self.act_before_pool = bool(act_before_pool)
        self.in_size = (height, width)
        self.out_size = (height // pool, width // pool)
        factory = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        # the shifts of a 'same' k×k convolution (k² terms, tap p·k + q) from the operator module
        [(_, s_h, s_w)] = conv2d_as_prodsum(torch.zeros(1, 1, k, k, **factory), height, width,
                                            padding=d * (k - 1) // 2, dilation=d)
        if separable:
            self.register_buffer("s_h", s_h[::k].contiguous(), persistent=False)  # (k, H, H)
            self.register_buffer("s_w", s_w[:k].contiguous(), persistent=False)   # (k, W, W)
            self.t1 = nn.Parameter(torch.empty(k, out_channels, in_channels, **factory))
            self.t2 = nn.Parameter(torch.empty(k, out_channels, out_channels, **factory))
        else:
            self.register_buffer("s_h", s_h, persistent=False)
            self.register_buffer("s_w", s_w, persistent=False)
            self.t = nn.Parameter(torch.empty(k * k, out_channels, in_channels, **factory))
        if pool > 1:
            self.register_buffer("p_h", pooling_matrix(height, pool, **factory),
                                 persistent=False)
            self.register_buffer("p_w", pooling_matrix(width, pool, **factory),
                                 persistent=False)
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = self.kernel_size
        with torch.no_grad():
            if self.separable:
                self.t1.normal_(0.0, math.sqrt(1.0 / (k * self.in_channels)))
                self.t2.normal_(0.0, math.sqrt(2.0 / (k * self.out_channels)))
            else:
                self.t.normal_(0.0, math.sqrt(2.0 / (k * k * self.in_channels)))
            if self.bias is not None:
                self.bias.zero_()

    def factors(self) -> list[tuple[Tensor, ...]]:
        """Every Kronecker sum of the block's linear map ``W`` on the flattened ``(C_in, H, W)``
        map, the first applied first (the identity factors as dense matrices: a reference for
        :func:`.prodsum_matmul` / :func:`.prodsum_dense`; :meth:`forward` batches them)."""
        (h, w), k = self.in_size, self.kernel_size
        dev = {"dtype": self.s_h.dtype, "device": self.s_h.device}
        if self.separable:
            out = [(self.t1, self.s_h, torch.eye(w, **dev).expand(k, w, w)),
                   (self.t2, torch.eye(h, **dev).expand(k, h, h), self.s_w)]
        else:
            out = [(self.t, self.s_h, self.s_w)]
        if self.pool > 1:
            out.append((torch.eye(self.out_channels, **dev), self.p_h, self.p_w))
        return out

    def _conv(self, x: Tensor) -> Tensor:
        """The convolution's sum(s), ``(N, C_in·H·W) → (N, C_out·H·W)``."""
        n, (h, w), c, o, k = (x.shape[0], self.in_size, self.in_channels, self.out_channels,
                              self.kernel_size)
        if not self.separable:
            # Σ_pq T_pq ⊗ S_p ⊗ S_q = (Σ_p T̃_p ⊗ S_p ⊗ I_W)(I_C ⊗ I_H ⊗ Ŝ): Ŝ = [S_0; …; S_{k−1}]
            # stacks the k width shifts (a (k·W × W) factor), T̃_p = [T_p0 … T_p,k−1]; two
            # two-mode products (the identities as batch dimensions) instead of one 3-mode sum
            y = kron_matmul(x.reshape(n * c * h, w), self.s_w[:k].reshape(k * w, w))
            y = y.reshape(n, c, h, k, w).permute(0, 4, 3, 1, 2).reshape(n * w, k * c * h)
            t = self.t.reshape(k, k, o, c).permute(0, 2, 1, 3).reshape(k, o, k * c)
            y = kron_matmul(y, t, self.s_h[::k])
            return y.reshape(n, w, o, h).permute(0, 2, 3, 1).reshape(n, o * h * w)
        # Σ_p T_p ⊗ S_p ⊗ I_W: the identity on W as a batch dimension
        y = x.reshape(n, c * h, w).transpose(1, 2).reshape(n * w, c * h)
        y = kron_matmul(y, self.t1, self.s_h).reshape(n, w, o, h)
        # Σ_q T'_q ⊗ I_H ⊗ S_q: the identity on H as a batch dimension
        y = kron_matmul(y.permute(0, 3, 2, 1).reshape(n * h, o * w), self.t2, self.s_w)
        return y.reshape(n, h, o, w).transpose(1, 2).reshape(n, o * h * w)

    def _pool(self, y: Tensor) -> Tensor:
        """``I_C ⊗ P_h ⊗ P_w``: the identity on the channels as a batch dimension."""
        n, (h, w), o = y.shape[0], self.in_size, self.out_channels
        return kron_matmul(y.reshape(n * o, h * w), self.p_h, self.p_w).reshape(n, -1)

    def forward(self, x: Tensor, act: nn.Module | None = None) -> Tensor:
        """``act(W x + b)`` on ``(N, C_in·H·W)`` (``act`` None: ``W x + b``); with
        ``act_before_pool``, ``P · act(C x + b)`` — the CNN order, ``W = P C`` split around the
        activation. The bias is per channel."""
        split = act is not None and self.act_before_pool and self.pool > 1
        y = self._conv(x)
        if self.pool > 1 and not split:
            y = self._pool(y)
        if self.bias is not None:
            n, o = y.shape[0], self.out_channels
            y = (y.reshape(n, o, -1) + self.bias[:, None]).reshape(n, -1)
        if act is None:
            return y
        y = act(y)
        return self._pool(y) if split else y

    @staticmethod
    def num_params(in_channels: int, out_channels: int, *, kernel_size: int = 3,
                   separable: bool = False, bias: bool = True, **_) -> int:
        k = kernel_size
        weights = (k * out_channels * (in_channels + out_channels) if separable
                   else k * k * in_channels * out_channels)
        return weights + (out_channels if bias else 0)

    def extra_repr(self) -> str:
        (h, w), (ho, wo) = self.in_size, self.out_size
        return (f"{self.in_channels}x{h}x{w} -> {self.out_channels}x{ho}x{wo}, "
                f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"separable={self.separable}, pool={self.pool}, bias={self.bias is not None}")


@register("prodsumnet", kind="model")
class ProdSumNet(nn.Module):
    r"""ProdSumNet in the image domain: ``len(channels)`` :class:`ProdSumBlock` s (block ``l``:
    ``C_{l-1} → channels[l]``, a ``kernel_size`` 'same' product of sums with ``dilation``,
    ``separable`` or not, then average pooling by ``pool``), each followed by the activation,
    then a classifier (a registered linear family, default ``dense``) on the flattened last map.
    Every linear map is one product of sums of Kronecker products on the flattened image
    (module docstring); with ``separable=False`` it is a CNN (convolution → average pooling →
    activation), with ``dilation > 1`` and ``pool=1`` a dilated CNN.

    Parameters (exact, :meth:`predicted_num_params`): ``Σ_l ProdSumBlock.num_params +
    classifier(C_L·H_L·W_L → classes)``, ``H_l = ⌊H_{l−1}/pool⌋``; ``channels``, the depth, the
    kernel size, ``separable`` and ``pool`` move it freely. The presets
    (:func:`prodsumnet_presets`) span ~1K–100K on 28×28 images; ``psn-3.5k`` has exactly the
    paper's 3,554.
    """

    def __init__(self, in_features: int, num_classes: int, *,
                 input_shape: tuple[int, ...] | None = None,
                 channels: tuple[int, ...] = (4, 8, 16), kernel_size: int = 3,
                 dilation: int = 1, separable: bool = False, pool: int = 2,
                 act_before_pool: bool = False, activation: str = "relu",
                 negative_slope: float = 0.5, bias: bool = True, classifier: str = "dense",
                 classifier_kwargs: dict | None = None) -> None:
        super().__init__()
        shape = image_shape(in_features, input_shape)
        _positive_int("num_classes", num_classes)
        channels = _channels(channels, allow_empty=False)
        self.act = make_activation(activation, negative_slope)
        c, h, w = shape
        self.input_shape = shape
        self.blocks = nn.ModuleList()
        for i, out in enumerate(channels):
            if pool > min(h, w):
                raise ValueError(f"block {i}: pooling by {pool} needs a map of at least "
                                 f"{pool}x{pool}, got {h}x{w} (fewer blocks or pool=1)")
            block = ProdSumBlock(c, out, h, w, kernel_size=kernel_size, dilation=dilation,
                                 separable=separable, pool=pool,
                                 act_before_pool=act_before_pool, bias=bias)
            self.blocks.append(block)
            c, (h, w) = out, block.out_size
        clf_kw = dict(classifier_kwargs or {})
        self.classifier = _check_family(classifier, "classifier")(c * h * w, num_classes,
                                                                  **clf_kw)
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), channels=list(channels),
                           kernel_size=kernel_size, dilation=dilation, separable=separable,
                           pool=pool, act_before_pool=act_before_pool, activation=activation,
                           negative_slope=negative_slope, bias=bias, classifier=classifier,
                           classifier_kwargs=clf_kw)

    def forward(self, x: Tensor) -> Tensor:
        h = _as_image(x, self.input_shape).reshape(x.shape[0], -1)
        for block in self.blocks:
            h = block(h, self.act)
        return self.classifier(h)

    @staticmethod
    def predicted_num_params(in_features: int, num_classes: int, *,
                             input_shape: tuple[int, ...] | None = None,
                             channels: tuple[int, ...] = (4, 8, 16), kernel_size: int = 3,
                             separable: bool = False, pool: int = 2, bias: bool = True,
                             classifier: str = "dense", classifier_kwargs: dict | None = None,
                             **_) -> int:
        """Trainable-parameter count from the formulas, without building the model."""
        c, h, w = image_shape(in_features, input_shape)
        total = 0
        for out in _channels(channels, allow_empty=False):
            total += ProdSumBlock.num_params(c, out, kernel_size=kernel_size,
                                             separable=separable, bias=bias)
            c, h, w = out, h // pool, w // pool
        return total + get_layer_class(classifier).num_params(
            c * h * w, num_classes, **dict(classifier_kwargs or {}))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# --- presets ----------------------------------------------------------------------------------
#: name → (model, keyword arguments); counts on 28×28×1 inputs with 10 classes in
#: :func:`prodsumnet_presets` (the tiers are named by that nominal budget)
PRESETS: dict[str, tuple[str, dict]] = {
    # image domain: 3 blocks of a 3×3 'same' product of sums + 2×2 average pooling
    # (28 → 14 → 7 → 3), dense classifier on C_3·3·3 features
    "psn-1k": ("prodsumnet", {"channels": [3, 6, 6]}),
    # 100 + 910 + 1,274 + (126·10 + 10) = 3,554: the paper's headline budget, exactly
    "psn-3.5k": ("prodsumnet", {"channels": [10, 10, 14]}),
    "psn-10k": ("prodsumnet", {"channels": [12, 24, 24]}),
    "psn-30k": ("prodsumnet", {"channels": [24, 40, 48]}),
    # transform domain (DFT truncated to |f| <= keep//2, periodic full-size depthwise filters,
    # ReLU in the image domain); the classifier reads the 2·C·F_h·F_w real coefficients
    "tdn-3.5k": ("transform-net", {"transform": "dft", "keep": 9, "channels": [6, 3],
                                   "nonlinearity": "spatial"}),
    "tdn-30k": ("transform-net", {"transform": "dft", "keep": 13, "channels": [16, 16],
                                  "nonlinearity": "spatial", "multiplier": "lowrank",
                                  "multiplier_rank": 2}),
    "tdn-100k": ("transform-net", {"transform": "dft", "keep": 25, "channels": [20, 12],
                                   "nonlinearity": "spatial"}),
}


def prodsumnet_presets(input_shape: tuple[int, ...] = (1, 28, 28),
                       num_classes: int = 10) -> list[dict]:
    """The presets with their exact trainable-parameter counts for ``input_shape`` and
    ``num_classes``: ``[{"name", "model", "kwargs", "num_params"}]`` in preset order."""
    shape = image_shape(math.prod(input_shape), input_shape)
    n_in = math.prod(shape)
    out = []
    for name, (model, kw) in PRESETS.items():
        cls = ProdSumNet if model == "prodsumnet" else TransformNet
        if kw.get("keep") is not None:  # small images: keep what there is
            kw = {**kw, "keep": min(kw["keep"], *shape[1:])}
        out.append({"name": name, "model": model, "kwargs": dict(kw),
                    "num_params": cls.predicted_num_params(n_in, num_classes,
                                                           input_shape=shape, **kw)})
    return out
