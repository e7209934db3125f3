"""Toeplitz and diagonal-Toeplitz (DTNN) layers."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import functional as F
from ..init import check_scheme, init_bias_, init_diagonal_
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias, scaled_als
from .registry import register_layer


class _ToeplitzBase(StructuredLinear):
    def __init__(self, in_features, out_features, *, bias, init, diagonal, device, dtype):
        super().__init__(in_features, out_features)
        check_scheme(init)
        self.init = init
        factory = {"device": device, "dtype": dtype}
        self.t = nn.Parameter(torch.empty(in_features + out_features - 1, **factory))
        if diagonal:
            self.d = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("d", None)
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each output sums ``in`` terms, so the DC paper's N(0, 2/n) uses the fan-in here.
        s = check_scheme(self.init)
        with torch.no_grad():
            if s.circulant == "normal":
                std = 1.0 if s.c_var is None else math.sqrt(s.c_var / self.in_features)
                self.t.normal_(0.0, std)
            elif s.circulant == "uniform":
                bound = 1 / math.sqrt(self.in_features)
                self.t.uniform_(-bound, bound)
            else:  # identity: ones on the main diagonal
                self.t.normal_(0.0, 1e-2)
                self.t[self.in_features - 1] += 1.0
        if self.d is not None:
            init_diagonal_(self.d, self.init)
        init_bias_(self.bias, self.init, self.in_features)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.toeplitz_matmul(x, self.t, self.out_features, d_out=self.d, bias=self.bias)

    def to_dense(self) -> Tensor:
        w = F.toeplitz_dense(self.t, self.in_features, self.out_features)
        return w if self.d is None else self.d[:, None] * w

    def structure_repr(self) -> str:
        size = F.toeplitz_fft_size(self.in_features, self.out_features)
        return f"fft_size={size}, init={self.init!r}"


@register_layer("toeplitz")
class Toeplitz(_ToeplitzBase):
    r"""Toeplitz layer: ``y = T x + b`` with ``T[i, j] = t[i - j + in - 1]`` (constant diagonals).

    Parameters: ``in + out - 1`` (``2n - 1`` square) ``+ out`` bias.
    Cost: O(L log L) per sample with ``L ≥ in + out - 1`` the circulant-embedding size (a fast
    FFT size ≈ 2n); O(n) memory. ``from_dense`` is the exact Frobenius projection
    (diagonal averages). Used as a baseline by Araujo et al. (2020) and Thomas et al. (2018).
    """

    param_formula = "in + out - 1 + out"

    def __init__(self, in_features, out_features, *, bias=True, init="paper", device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias=bias, init=init, diagonal=False,
                         device=device, dtype=dtype)

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return in_features + out_features - 1 + (out_features if bias else 0)

    @classmethod
    def from_dense(cls, w, *, bias=None):
        weight, b = dense_weight_and_bias(w)
        layer = cls(weight.shape[1], weight.shape[0], bias=(b is not None) if bias is None
                    else bias, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.t.copy_(F.project_toeplitz(weight))
            copy_bias_(layer, b)
        return layer


@register_layer("dtnn")
class DiagonalToeplitz(_ToeplitzBase):
    r"""Diagonal-Toeplitz layer (DTNN, Araujo et al. 2020): ``y = diag(d) · T x + b``.

    The DC layer with its circulant replaced by a Toeplitz matrix. Parameters:
    ``in + out - 1 + out (+ out bias)``. Cost as :class:`Toeplitz`. Init ``paper``:
    ``t ~ N(0, 2/in)``, ``d ~ U{±1}``. ``from_dense``: alternating least squares, as DC's
    (it recovers a DTNN matrix in every case tested).
    """

    param_formula = "in + out - 1 + 2·out"

    def __init__(self, in_features, out_features, *, bias=True, init="paper", device=None,
                 dtype=None):
        super().__init__(in_features, out_features, bias=bias, init=init, diagonal=True,
                         device=device, dtype=dtype)

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return in_features + 2 * out_features - 1 + (out_features if bias else 0)

    @classmethod
    def from_dense(cls, w, *, bias=None, iters: int = 100):
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype)
        # rank-one start as for DC: the strongest row fixes t up to that row's scale
        i = torch.arange(out_f, device=weight.device)[:, None]
        j = torch.arange(in_f, device=weight.device)[None, :]
        m = torch.zeros(out_f, in_f + out_f - 1, dtype=weight.dtype, device=weight.device)
        seen = torch.zeros(out_f, in_f + out_f - 1, dtype=torch.bool, device=weight.device)
        m[i.expand(-1, in_f), i - j + in_f - 1] = weight
        seen[i.expand(-1, in_f), i - j + in_f - 1] = True
        t, d = scaled_als(weight, m, seen, iters, lambda t: F.toeplitz_dense(t, in_f, out_f),
                          lambda d: F.project_toeplitz(weight, row_scale=d), rows=True)
        with torch.no_grad():
            layer.t.copy_(t)
            layer.d.copy_(d)
            copy_bias_(layer, b)
        return layer
