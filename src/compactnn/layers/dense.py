"""Dense baseline, registered so that every family is reachable through the registry."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..init import check_scheme
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias
from .registry import register_layer


@register_layer("dense")
class Dense(StructuredLinear):
    """Unstructured ``y = x W^T + b``: ``out·in (+out)`` parameters, O(out·in) time and memory.

    ``init="uniform"`` is ``nn.Linear``'s default; ``init="paper"`` is He-normal
    (``N(0, 2/in)``), the dense analogue of the DC paper's scheme; ``init="lecun"`` is
    ``N(0, 1/in)``; ``"paper:<σ²>"`` is ``N(0, σ²/in)`` (what ``init="aware"`` of a model
    gives each layer, :func:`compactnn.init.aware_variances`).
    """

    param_formula = "in·out + out"

    def __init__(self, in_features, out_features, *, bias=True, init="uniform",
                 device=None, dtype=None):
        super().__init__(in_features, out_features)
        if init == "uniform":
            self._var = None
        elif isinstance(init, str) and init.split(":")[0] in ("paper", "lecun"):
            self._var = check_scheme(init).c_var  # the same variance rules as the DC layers
        else:
            raise ValueError(f"Dense init must be 'uniform', 'paper', 'lecun' or "
                             f"'paper:<variance>', got {init!r}")
        self.init = init
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_features)
        with torch.no_grad():
            if self.init == "uniform":
                nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            else:
                self.weight.normal_(0.0, math.sqrt(self._var / self.in_features))
            if self.bias is not None:
                if self.init == "uniform":
                    self.bias.uniform_(-bound, bound)
                else:
                    self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.linear(x, self.weight, self.bias)

    def to_dense(self) -> Tensor:
        return self.weight

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return in_features * out_features + (out_features if bias else 0)

    @classmethod
    def from_dense(cls, w, *, bias=None):
        weight, b = dense_weight_and_bias(w)
        has_bias = b is not None if bias is None else bias
        layer = cls(weight.shape[1], weight.shape[0], bias=has_bias,
                    device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(weight)
            copy_bias_(layer, b)
        return layer
