"""Structured Efficient Linear Layers (Moczulski et al., *ACDC: A Structured Efficient Linear
Layer*, ICLR 2016): ACDC (cosine transform) and AFDF (Fourier transform)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import functional as F
from .base import (
    StructuredLinear,
    copy_bias_,
    dense_weight_and_bias,
    refine_to_dense_,
    scaled_als,
)
from .registry import register_layer

_SELL_INITS = ("identity", "paper")


class _SELLBase(StructuredLinear):
    """``n = max(in, out)``; ``x`` (optionally permuted) is scaled by ``a`` and zero-padded to
    ``n``, the bias ``a_b ∈ R^n`` is added, a transform–diagonal–inverse-transform maps
    ``R^n → R^n``, the output is truncated to ``out`` and ``d_b`` is added."""

    def __init__(self, in_features, out_features, *, bias, init, permute, perm_seed,
                 device, dtype):
        super().__init__(in_features, out_features)
        if init not in _SELL_INITS:
            raise ValueError(f"{type(self).__name__} init must be one of {_SELL_INITS}, "
                             f"got {init!r}")
        self.init, self.permute, self.perm_seed = init, bool(permute), perm_seed
        self.n = max(in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.a = nn.Parameter(torch.empty(in_features, **factory))
        if bias:
            self.a_bias = nn.Parameter(torch.empty(self.n, **factory))
        else:
            self.register_parameter("a_bias", None)
        self._init_bias(bias, factory)
        if self.permute:
            gen = None if perm_seed is None else torch.Generator().manual_seed(int(perm_seed))
            self.register_buffer("perm", torch.randperm(in_features, generator=gen).to(device))
        else:
            self.register_buffer("perm", None)

    def _init_a(self) -> None:
        with torch.no_grad():
            if self.init == "identity":  # near identity, as in the ACDC paper
                self.a.normal_(1.0, 1e-2)
            else:  # the DC paper's scheme: random signs, the gain sits in the diagonal d
                self.a.copy_(torch.randint(0, 2, self.a.shape).to(self.a) * 2 - 1)
            for b in (self.a_bias, self.bias):
                if b is not None:
                    b.zero_()

    def _input(self, x: Tensor) -> Tensor:
        return x if self.perm is None else x[..., self.perm]

    def _perm_matrix(self, w: Tensor) -> Tensor:
        """Right-multiply a matrix acting on permuted inputs by the permutation."""
        if self.perm is None:
            return w
        out = torch.zeros_like(w)
        out[:, self.perm] = w
        return out

    def structure_repr(self) -> str:
        return f"n={self.n}, init={self.init!r}, permute={self.permute}"

    @classmethod
    def _from_dense_start(cls, w, bias, kwargs):
        """``(layer, W, b, w)``: a layer shaped like ``w`` with ``a_b = 0``, and ``w`` the dense
        matrix with the layer's input permutation undone (the matrix acting on ``P x``)."""
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype, **kwargs)
        with torch.no_grad():
            if layer.a_bias is not None:
                layer.a_bias.zero_()
        copy_bias_(layer, b)
        unpermuted = weight if layer.perm is None else weight[:, layer.perm]
        return layer, weight, unpermuted


@register_layer("acdc")
class ACDC(_SELLBase):
    r"""ACDC layer: ``y = (C^T · diag(d) · C · (a ⊙ P x ⊕ 0 + a_b))[:out] + d_b``.

    ``C`` is the orthonormal DCT-II (computed with one FFT, tested against
    ``scipy.fft.dct(norm="ortho")``), ``P`` an optional fixed random permutation (a buffer;
    ``permute=True``, as between the stacked layers of the paper). Square: ``4N`` parameters
    (``a, a_b, d, d_b``); rectangular: ``in + 2n + out`` (``in + n`` without biases).
    Init ``identity`` (default): ``a, d ~ N(1, 0.01²)``, biases 0 (Moczulski et al.);
    ``paper``: ``a ~ U{±1}``, ``d ~ N(0, 2)`` (the DC paper's variance-preserving choice).
    Cost: O(n log n) time, O(n) memory (the DCT's autograd keeps a few n-vectors per sample).
    No DCT-based layer diagonalises circulants, so ACDC is *not* a DC product (Araujo et al.).
    """

    param_formula = "in + 2·max(in,out) + out  (4N square)"

    def __init__(self, in_features, out_features, *, bias=True, init="identity", permute=False,
                 perm_seed=None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, init=init, permute=permute,
                         perm_seed=perm_seed, device=device, dtype=dtype)
        self.d = nn.Parameter(torch.empty(self.n, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_a()
        with torch.no_grad():
            if self.init == "identity":
                self.d.normal_(1.0, 1e-2)
            else:
                self.d.normal_(0.0, math.sqrt(2.0))

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        h = self._input(x) * self.a
        if self.n > self.in_features:
            h = torch.nn.functional.pad(h, (0, self.n - self.in_features))
        if self.a_bias is not None:
            h = h + self.a_bias
        # half/bfloat16: the whole product in float32, rounded once (each F.dct alone would
        # round its output to the input's dtype)
        ft = F.fft_dtype(h.dtype)
        y = F.idct(F.dct(h.to(ft)) * self.d.to(ft))[..., : self.out_features].to(h.dtype)
        return y if self.bias is None else y + self.bias

    def _core(self) -> Tensor:
        c = F.dct_matrix(self.n, dtype=self.d.dtype, device=self.d.device)
        return c.T @ (self.d[:, None] * c)

    def to_dense(self) -> Tensor:
        w = self._core()[: self.out_features, : self.in_features] * self.a
        return self._perm_matrix(w)

    def dense_bias(self) -> Tensor | None:
        if self.bias is None:
            return None
        return (self._core() @ self.a_bias)[: self.out_features] + self.bias

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        n = max(in_features, out_features)
        return in_features + n + ((n + out_features) if bias else 0)

    from_dense_exact = False

    @classmethod
    def from_dense(cls, w, *, bias=None, iters: int = 100, **kwargs):
        """Numerical fit of ``(C^T diag(d) C)[:out, :in] · diag(a)`` to a dense matrix.

        Start: ``a = 1`` and ``d_k = (C W̃ C^T)_kk`` (``W̃``: ``W`` zero-padded to ``n × n``), the
        exact least-squares ``d`` for ``a = 1`` when square, then the least-squares ``a`` for
        that ``d`` (per column); then at most ``iters`` L-BFGS iterations on ``(a, d)`` minimising
        ``||W - to_dense()||_F`` (the best iterate is kept). The biases: ``a_b = 0``, ``d_b = b``.
        An approximation: ACDC matrices form a small, non-convex set; the fit of a matrix of
        the family's own structure usually, not provably, recovers it. ``kwargs`` (``init``,
        ``permute``, ``perm_seed``) go to the constructor. Cost: O(n³) for the start, then
        ``iters`` times a dense ``to_dense`` (O(n³)) and its backward.
        """
        layer, weight, wu = cls._from_dense_start(w, bias, kwargs)
        n, out_f, in_f = layer.n, layer.out_features, layer.in_features
        c = F.dct_matrix(n, dtype=weight.dtype, device=weight.device)
        pad = weight.new_zeros(n, n)
        pad[:out_f, :in_f] = wu
        d = torch.diagonal(c @ pad @ c.T)
        k = (c.T @ (d[:, None] * c))[:out_f, :in_f]
        a = (wu * k).sum(0) / (k * k).sum(0).clamp_min(torch.finfo(weight.dtype).tiny)
        with torch.no_grad():
            layer.d.copy_(d)
            layer.a.copy_(a)
        refine_to_dense_(layer, weight, iters)
        return layer


@register_layer("afdf")
class AFDF(_SELLBase):
    r"""AFDF layer: ``y = (F^{-1} · diag(f) · F · (a ⊙ P x ⊕ 0 + a_b))[:out] + d_b``.

    ``F`` is the DFT and ``f`` a Hermitian-symmetric spectrum stored as ``n`` real numbers
    (real parts of bins ``0…⌊n/2⌋``, imaginary parts of bins ``1…⌈n/2⌉-1``), so the layer is
    real and ``F^{-1} diag(f) F = circ(irfft(f))``: AFDF is exactly a circulant times a diagonal
    (``C·D``), trained in the frequency domain. Square: ``4N`` parameters; rectangular
    ``in + 2n + out`` (``in + n`` without biases). Init ``identity``: ``a, f ≈ 1`` (all-pass);
    ``paper``: ``a ~ U{±1}``, ``c = irfft(f) ~ N(0, 2/n)``. Cost: O(n log n).
    """

    param_formula = "in + 2·max(in,out) + out  (4N square)"

    def __init__(self, in_features, out_features, *, bias=True, init="identity", permute=False,
                 perm_seed=None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, init=init, permute=permute,
                         perm_seed=perm_seed, device=device, dtype=dtype)
        n = self.n
        self.f_real = nn.Parameter(torch.empty(n // 2 + 1, device=device, dtype=dtype))
        self.f_imag = nn.Parameter(torch.empty((n - 1) // 2, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_a()
        with torch.no_grad():
            if self.init == "identity":
                self.f_real.normal_(1.0, 1e-2)
                self.f_imag.normal_(0.0, 1e-2)
            else:  # spectrum of c ~ N(0, 2/n): |bin|² has mean 2 (real bins N(0, 2))
                self.f_real.normal_(0.0, 1.0)
                self.f_imag.normal_(0.0, 1.0)
                self.f_real[0] *= math.sqrt(2.0)
                if self.n % 2 == 0:
                    self.f_real[-1] *= math.sqrt(2.0)

    def spectrum(self) -> Tensor:
        """The Hermitian half-spectrum ``f`` (``n // 2 + 1`` complex bins; complex64 for
        half/bfloat16 parameters, which have no complex FFTs)."""
        ft = F.fft_dtype(self.f_real.dtype)
        imag = torch.cat([self.f_imag.new_zeros(1), self.f_imag,
                          self.f_imag.new_zeros(1 - self.n % 2)])
        return torch.complex(self.f_real.to(ft), imag.to(ft))

    def circulant_vector(self) -> Tensor:
        """``c`` with ``F^{-1} diag(f) F = circ(c)``, in the parameters' dtype."""
        return torch.fft.irfft(self.spectrum(), n=self.n).to(self.f_real.dtype)

    def _eff_bias(self, c: Tensor) -> Tensor | None:
        if self.bias is None:
            return None
        return F.diag_circulant_diag(self.a_bias, c, out_features=self.out_features) + self.bias

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        spec = self.spectrum()
        c = torch.fft.irfft(spec, n=self.n)
        # the parameters *are* the spectrum: no FFT of c when the op runs at length n
        c_spectrum = F.circulant_spectrum(c.detach(), self.in_features, self.out_features,
                                          rfft_n=spec.detach())
        return F.diag_circulant_diag(self._input(x), c, d_in=self.a, bias=self._eff_bias(c),
                                     out_features=self.out_features, c_spectrum=c_spectrum)

    def to_dense(self) -> Tensor:
        w = F.diag_circulant_diag_dense(self.circulant_vector(), self.in_features,
                                        self.out_features, d_in=self.a)
        return self._perm_matrix(w)

    @classmethod
    def from_dense(cls, w, *, bias=None, iters: int = 100, **kwargs):
        """Fit ``circ(c)[:out, :in] · diag(a)`` to a dense matrix by alternating least squares
        (as :meth:`DiagonalCirculant.from_dense`, on columns), then store ``f = rfft(c)``.

        Each half-step is the exact minimiser of ``||W - circ(c)[:out,:in] diag(a)||_F`` in one
        factor (diagonal averages for ``c``, a per-column ratio for ``a``), so the error never
        increases; the start is the strongest column of the rank-one rearrangement
        ``M[j, (i - j) mod n] = W[i, j] = a_j c_{(i-j) mod n}``. It recovers AFDF matrices (C·D
        products; in every case tested, no proof); for other matrices it is an approximation.
        Biases: ``a_b = 0``,
        ``d_b = b``. ``kwargs`` (``init``, ``permute``, ``perm_seed``) go to the constructor.
        Cost: O(iters · out · in).
        """
        layer, weight, wu = cls._from_dense_start(w, bias, kwargs)
        n, out_f, in_f = layer.n, layer.out_features, layer.in_features
        i = torch.arange(out_f, device=weight.device)[:, None]
        j = torch.arange(in_f, device=weight.device)[None, :]
        m = weight.new_zeros(in_f, n)
        seen = torch.zeros(in_f, n, dtype=torch.bool, device=weight.device)
        m[j.expand(out_f, -1), (i - j) % n] = wu
        seen[j.expand(out_f, -1), (i - j) % n] = True
        c, a = scaled_als(wu, m, seen, iters, lambda c: F.circulant_dense(c)[:out_f, :in_f],
                          lambda a: F.project_circulant(wu, n, col_scale=a), rows=False)
        spec = torch.fft.rfft(c.to(F.fft_dtype(c.dtype)))
        with torch.no_grad():
            layer.a.copy_(a)
            layer.f_real.copy_(spec.real)
            layer.f_imag.copy_(spec.imag[1:(n - 1) // 2 + 1])
        return layer

    def dense_bias(self) -> Tensor | None:
        return self._eff_bias(self.circulant_vector())

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        n = max(in_features, out_features)
        return in_features + n + ((n + out_features) if bias else 0)
