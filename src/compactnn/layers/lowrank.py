"""Low-rank layer ``W = U V^T``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import StructuredLinear, copy_bias_, dense_weight_and_bias, svd
from .registry import register_layer

_GAINS = {"paper": 2.0, "lecun": 1.0, "uniform": 1.0 / 3.0}


@register_layer("lowrank")
class LowRank(StructuredLinear):
    r"""Low-rank layer: ``y = U (V^T x) + b`` with ``U ∈ R^{out×r}``, ``V ∈ R^{in×r}``.

    Parameters: ``r·(in + out) + out``. Cost: O(r·(in + out)) time and memory per sample.
    Init: ``U ~ N(0, 1/r)``, ``V ~ N(0, gain/in)`` so that ``Var(W_ij) = gain/in`` — ``paper``
    (gain 2, He), ``lecun`` (1), ``uniform`` (1/3, the variance of ``nn.Linear``'s default).
    ``from_dense``: truncated SVD (the optimal rank-r approximation), split as
    ``U = U_r √S``, ``V = V_r √S``.
    """

    param_formula = "rank·(in + out) + out"
    budget_kwargs = {"rank": 8}

    def __init__(self, in_features, out_features, *, rank=8, bias=True, init="paper",
                 device=None, dtype=None):
        super().__init__(in_features, out_features)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if init not in _GAINS:
            raise ValueError(f"LowRank init must be one of {', '.join(_GAINS)}, got {init!r}")
        self.rank, self.init = rank, init
        factory = {"device": device, "dtype": dtype}
        self.u = nn.Parameter(torch.empty(out_features, rank, **factory))
        self.v = nn.Parameter(torch.empty(in_features, rank, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.u.normal_(0.0, 1 / math.sqrt(self.rank))
            self.v.normal_(0.0, math.sqrt(_GAINS[self.init] / self.in_features))
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.linear(F.linear(x, self.v.T), self.u, self.bias)

    def to_dense(self) -> Tensor:
        return self.u @ self.v.T

    @staticmethod
    def num_params(in_features, out_features, *, rank=8, bias=True, **_) -> int:
        return rank * (in_features + out_features) + (out_features if bias else 0)

    def structure_repr(self) -> str:
        return f"rank={self.rank}, init={self.init!r}"

    @classmethod
    def from_dense(cls, w, *, rank=8, bias=None):
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, rank=rank, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype)
        u, s, vh = svd(weight)
        k = min(rank, s.numel())
        with torch.no_grad():
            layer.u.zero_()
            layer.v.zero_()
            layer.u[:, :k] = u[:, :k] * s[:k].sqrt()
            layer.v[:, :k] = vh[:k].T * s[:k].sqrt()
            copy_bias_(layer, b)
        return layer
