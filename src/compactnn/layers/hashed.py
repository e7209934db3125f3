"""Hashed weights (Chen, Wilson, Tyree, Weinberger, Chen, *Compressing Neural Networks with the
Hashing Trick*, ICML 2015)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as TF

from .. import functional as F
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias
from .registry import register_layer

_GAINS = {"uniform": 1.0 / 3.0, "paper": 2.0, "lecun": 1.0}


def _buckets(in_features: int, out_features: int, compression: float, buckets: int | None):
    if buckets is not None:
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ValueError(f"buckets must be a positive int, got {buckets!r}")
        return buckets
    if not 0 < compression <= 1:
        raise ValueError(f"compression must be in (0, 1], got {compression!r}")
    return max(1, round(compression * in_features * out_features))


@register_layer("hashed")
class HashedLinear(StructuredLinear):
    r"""HashNet layer: ``V[i, j] = ξ(i, j) · w[h(i, j)]``, ``y = V x + b``.

    ``K`` shared weights (``buckets``, or ``round(compression · in · out)``), a bucket hash
    ``h`` and a sign hash ``ξ ∈ {±1}`` (MurmurHash3 finaliser of the position, see
    :mod:`compactnn.functional.hashing`), deterministic given ``seed``. The seed is drawn from
    torch's RNG when not given and is stored in the ``state_dict`` (buffer ``hash_seed``), so a
    saved layer reloads with the same hash. Parameters: ``K + out``. Cost: the virtual matrix is
    materialised per call, O(in·out) time and memory (as in the paper); the *stored* model is
    O(K). ``from_dense``: exact least squares (signed bucket means).
    """

    param_formula = "K + out  (K = buckets ≈ compression·in·out)"
    budget_kwargs = {"compression": 1 / 64}

    def __init__(self, in_features, out_features, *, compression=1 / 8, buckets=None, seed=None,
                 bias=True, init="uniform", device=None, dtype=None):
        super().__init__(in_features, out_features)
        if init not in _GAINS:
            raise ValueError(f"HashedLinear init must be one of {', '.join(_GAINS)}, got {init!r}")
        self.init = init
        self.buckets = _buckets(in_features, out_features, compression, buckets)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.buckets, **factory))
        self.register_buffer("hash_seed", torch.tensor(int(seed), dtype=torch.int64,
                                                       device=device))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = math.sqrt(_GAINS[self.init] / self.in_features)
        with torch.no_grad():
            self.weight.normal_(0.0, std)
            if self.bias is not None:
                bound = 1 / math.sqrt(self.in_features)
                self.bias.uniform_(-bound, bound) if self.init == "uniform" else self.bias.zero_()

    def hash_tables(self) -> tuple[Tensor, Tensor]:
        """``(bucket index, sign)`` of shape ``(out, in)``, computed once per seed and device
        (not stored in the ``state_dict``: the seed is)."""
        key = (int(self.hash_seed), self.weight.device)
        cache = self.__dict__.get("_hash_cache")
        if cache is None or cache[0] != key:
            # ordinary tensors even when first built under inference_mode: an inference
            # tensor would break every later forward that autograd records
            with torch.inference_mode(False):
                idx, sign = F.hash_indices(self.out_features, self.in_features, self.buckets,
                                           key[0], device=self.weight.device)
            cache = (key, idx, sign.to(torch.int8))
            self.__dict__["_hash_cache"] = cache
        return cache[1], cache[2]

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return TF.linear(x, self.to_dense(), self.bias)

    def to_dense(self) -> Tensor:
        return F.hashed_dense(self.weight, *self.hash_tables())

    @staticmethod
    def num_params(in_features, out_features, *, compression=1 / 8, buckets=None, bias=True,
                   **_) -> int:
        return _buckets(in_features, out_features, compression, buckets) + (
            out_features if bias else 0)

    def structure_repr(self) -> str:
        ratio = self.buckets / (self.in_features * self.out_features)
        return f"buckets={self.buckets}, compression={ratio:.4g}, seed={int(self.hash_seed)}"

    @classmethod
    def from_dense(cls, w, *, compression=1 / 8, buckets=None, seed=0, bias=None):
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, compression=compression, buckets=buckets, seed=seed,
                    bias=(b is not None) if bias is None else bias, device=weight.device,
                    dtype=weight.dtype)
        idx, sign = layer.hash_tables()
        with torch.no_grad():
            layer.weight.copy_(F.weighted_diagonal_means(weight, idx, layer.buckets, scale=sign))
            copy_bias_(layer, b)
        return layer
