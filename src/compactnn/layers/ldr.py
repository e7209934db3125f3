"""Low displacement rank layers (Thomas, Gu, Dao, Rudra, Ré, *Learning Compressed Transforms
with Low Displacement Rank*, NeurIPS 2018): Toeplitz-like, LDR-SD, LDR-TD."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as TF

from .. import functional as F
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias, refine_to_dense_, svd
from .registry import register_layer


def _stein_z0(w: Tensor) -> Tensor:
    """``W - Z_0 W Z_0^T`` (``Z_0``: the shift, the LDR-SD/TD operators' initial value): for
    nilpotent operators ``Σ_i K(A, g_i) K(B, h_i)^T`` inverts ``M - A M B^T = G H^T``."""
    d = w.clone()
    d[1:, 1:] -= w[:-1, :-1]
    return d


class _LDRBase(StructuredLinear):
    r"""``y = (Σ_{i<r} K(A, g_i) K(B, h_i)^T · pad_n(x))[:out] + b``, ``n = max(in, out)``.

    ``G, H ∈ R^{r×n}`` ~ N(0, 1/(r·n)) (the authors' init). Products: FFTs for
    Toeplitz-like (O(r·n log n) per input), explicit Krylov matrices for LDR-SD/TD (O(r·n²)
    time and memory per forward; see :mod:`compactnn.functional.ldr`).
    """

    def __init__(self, in_features, out_features, *, rank, bias, init, device, dtype):
        super().__init__(in_features, out_features)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        if init != "paper":
            raise ValueError(f"{type(self).__name__} supports init='paper' (the LDR authors' "
                             f"scheme) only, got {init!r}")
        self.rank, self.init = rank, init
        self.n = max(in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.g = nn.Parameter(torch.empty(rank, self.n, **factory))
        self.h = nn.Parameter(torch.empty(rank, self.n, **factory))
        self._make_operators(factory)
        self._init_bias(bias, factory)
        self.reset_parameters()

    def _make_operators(self, factory: dict) -> None:
        """Create the operator parameters (none for fixed operators)."""

    def _reset_operators(self) -> None:
        """Initialise the operator parameters."""

    def reset_parameters(self) -> None:
        std = 1 / math.sqrt(self.rank * self.n)
        with torch.no_grad():
            self.g.normal_(0.0, std)
            self.h.normal_(0.0, std)
            if self.bias is not None:
                self.bias.zero_()
        self._reset_operators()

    def operators(self):
        raise TypeError("abstract")  # pragma: no cover - every subclass overrides

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if self.n > self.in_features:
            x = TF.pad(x, (0, self.n - self.in_features))
        op_a, op_b = self.operators()
        y = F.ldr_matmul(x, op_a, op_b, self.g, self.h)[..., : self.out_features]
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> Tensor:
        op_a, op_b = self.operators()
        return F.ldr_dense(op_a, op_b, self.g, self.h)[: self.out_features, : self.in_features]

    def structure_repr(self) -> str:
        return f"n={self.n}, rank={self.rank}"

    from_dense_exact = False

    def _displacement(self, w: Tensor) -> Tensor:
        """The displacement of the ``n × n`` matrix ``w`` whose rank-r factors are the
        generators at the layer's initial operators, as ``(left, right)`` maps below."""
        raise TypeError("abstract")  # pragma: no cover

    def _generators(self, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """``(G, H)`` from the factors ``D ≈ u v^T`` of the displacement."""
        return u.T, v.T

    @classmethod
    def from_dense(cls, w, *, rank=1, bias=None, iters: int = 100, **kwargs):
        """Fit the generators (and learned operators) to a dense matrix.

        Projection: ``W`` zero-padded to ``n × n``, its displacement under the layer's initial
        operators (Toeplitz-like: ``Z_1 W - W Z_{-1}``; LDR-SD/TD, whose operators start as the
        shift ``Z_0``: ``W - Z_0 W Z_0^T``) truncated to rank ``r`` by SVD and mapped back to
        ``G, H`` — exact for square matrices of displacement rank ≤ r under those operators
        (Toeplitz-like matrices of the same rank, Toeplitz matrices for r ≥ 2). Then at most
        ``iters`` L-BFGS iterations on all parameters but the bias, minimising
        ``||W - to_dense()||_F`` (the best iterate is kept, so the error never ends above the
        projection's). Rectangular matrices and learned operators are fitted, not recovered.
        Cost: one ``n × n`` SVD, then ``iters`` times ``to_dense`` (O(r n²), O(r n³) for TD)
        and its backward.
        """
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, rank=rank, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype, **kwargs)
        n = layer.n
        pad = weight.new_zeros(n, n)
        pad[:out_f, :in_f] = weight
        u, s, vh = svd(layer._displacement(pad))
        k = min(rank, s.numel())
        root = s[:k].sqrt()
        g, h = layer._generators(u[:, :k] * root, vh[:k].T * root)
        with torch.no_grad():
            layer.g.zero_()
            layer.h.zero_()
            layer.g[:k] = g
            layer.h[:k] = h
        copy_bias_(layer, b)
        refine_to_dense_(layer, weight, iters)
        return layer


@register_layer("toeplitz_like")
class ToeplitzLike(_LDRBase):
    r"""Toeplitz-like: fixed operators ``A = Z_1``, ``B = Z_{-1}``; ``Z_1 M - M Z_{-1}`` has rank
    ≤ r (a Toeplitz matrix has displacement rank 2). Parameters ``2rn + out`` (the published
    ``2rn + n`` when square)."""

    param_formula = "2·rank·n + out  (n = max(in,out))"
    budget_kwargs = {"rank": 2}

    def __init__(self, in_features, out_features, *, rank=1, bias=True, init="paper",
                 device=None, dtype=None):
        super().__init__(in_features, out_features, rank=rank, bias=bias, init=init,
                         device=device, dtype=dtype)

    def operators(self):
        return F.shift_op(1.0), F.shift_op(-1.0)

    def _displacement(self, w):
        # Z_1 W - W Z_{-1}: rows rolled down; column j of W Z_{-1} is W[:, j+1], last -W[:, 0]
        w_z = torch.cat([w[:, 1:], -w[:, :1]], dim=1)
        return torch.roll(w, 1, dims=0) - w_z

    def _generators(self, u, v):
        # Z_1 K(Z_1, g) K(Z_{-1}, h)^T - (…) Z_{-1} = g (T h)^T with (T h)_m = -2 h_{m+1}
        # (m < n-1) and (T h)_{n-1} = 2 h_0; invert T on the right factor
        h = torch.cat([v[-1:], -v[:-1]], dim=0) / 2
        return u.T, h.T

    @staticmethod
    def num_params(in_features, out_features, *, rank=1, bias=True, **_) -> int:
        n = max(in_features, out_features)
        return 2 * rank * n + (out_features if bias else 0)


@register_layer("ldr_sd")
class LDRSubdiagonal(_LDRBase):
    r"""LDR-SD: learned sub-diagonal operators ``A, B`` (``n - 1`` entries each, init 1, i.e. the
    shift ``Z_0``). Parameters ``2rn + 2(n-1) + out`` (published: ``2rn + 2(n-1) + n``)."""

    param_formula = "2·rank·n + 2(n-1) + out"
    budget_kwargs = {"rank": 2}

    def __init__(self, in_features, out_features, *, rank=1, bias=True, init="paper",
                 device=None, dtype=None):
        super().__init__(in_features, out_features, rank=rank, bias=bias, init=init,
                         device=device, dtype=dtype)

    def _make_operators(self, factory):
        self.sub_a = nn.Parameter(torch.empty(self.n - 1, **factory))
        self.sub_b = nn.Parameter(torch.empty(self.n - 1, **factory))

    def _reset_operators(self):
        with torch.no_grad():
            self.sub_a.fill_(1.0)
            self.sub_b.fill_(1.0)

    def operators(self):
        return F.subdiagonal_op(self.sub_a), F.subdiagonal_op(self.sub_b)

    def _displacement(self, w):
        return _stein_z0(w)

    @staticmethod
    def num_params(in_features, out_features, *, rank=1, bias=True, **_) -> int:
        n = max(in_features, out_features)
        return 2 * rank * n + 2 * (n - 1) + (out_features if bias else 0)


@register_layer("ldr_td")
class LDRTridiagonal(_LDRBase):
    r"""LDR-TD: learned tri-diagonal operators ``A, B`` (``3n - 2`` entries each; init: ones on
    the sub-diagonal, zeros elsewhere). Parameters ``2rn + 2(3n-2) + out``
    (published: ``2rn + 2(3n-2) + n``)."""

    param_formula = "2·rank·n + 2(3n-2) + out"
    budget_kwargs = {"rank": 1}

    def __init__(self, in_features, out_features, *, rank=1, bias=True, init="paper",
                 device=None, dtype=None):
        super().__init__(in_features, out_features, rank=rank, bias=bias, init=init,
                         device=device, dtype=dtype)

    def _make_operators(self, factory):
        n = self.n
        for side in ("a", "b"):
            self.register_parameter(f"sub_{side}", nn.Parameter(torch.empty(n - 1, **factory)))
            self.register_parameter(f"diag_{side}", nn.Parameter(torch.empty(n, **factory)))
            self.register_parameter(f"sup_{side}", nn.Parameter(torch.empty(n - 1, **factory)))

    def _reset_operators(self):
        with torch.no_grad():
            for side in ("a", "b"):
                getattr(self, f"sub_{side}").fill_(1.0)
                getattr(self, f"diag_{side}").zero_()
                getattr(self, f"sup_{side}").zero_()

    def operators(self):
        return (F.tridiagonal_op(self.sub_a, self.diag_a, self.sup_a),
                F.tridiagonal_op(self.sub_b, self.diag_b, self.sup_b))

    def _displacement(self, w):
        return _stein_z0(w)

    @staticmethod
    def num_params(in_features, out_features, *, rank=1, bias=True, **_) -> int:
        n = max(in_features, out_features)
        return 2 * rank * n + 2 * (3 * n - 2) + (out_features if bias else 0)
