"""Circulant-based layers: diagonal-circulant (DC), circulant projection, plain circulant."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import functional as F
from ..init import check_scheme, init_bias_, init_circulant_, init_diagonal_
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias, scaled_als
from .registry import register_layer


class _CirculantFamily(StructuredLinear):
    """``d_out ⊙ (circ(v) · pad_n(d_in ⊙ x))[:out] + b`` with ``n = max(in, out)``: subclasses
    say which tensors play ``v``, ``d_in`` and ``d_out``; forward and ``to_dense`` are shared."""

    recompute = False  # see DiagonalCirculant

    def _parts(self) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(v, d_in, d_out)``."""
        raise TypeError("abstract")  # pragma: no cover - every subclass overrides

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        v, d_in, d_out = self._parts()
        return F.diag_circulant_diag(x, v, d_in=d_in, d_out=d_out, bias=self.bias,
                                     out_features=self.out_features, recompute=self.recompute)

    def to_dense(self) -> Tensor:
        v, d_in, d_out = self._parts()
        return F.diag_circulant_diag_dense(v, self.in_features, self.out_features, d_in=d_in,
                                           d_out=d_out)


@register_layer("dc")
class DiagonalCirculant(_CirculantFamily):
    r"""Diagonal-circulant layer (Araujo et al., *Understanding and Training Deep Diagonal
    Circulant Neural Networks*, ECAI 2020).

    ``y = diag(d) · (circ(c) · pad_n(x))[:out] + b`` with ``n = max(in, out)``: the input is
    zero-padded to ``n`` when ``out > in`` and the output truncated to ``out`` when
    ``out < in``. ``circ(c)`` has ``c`` as first column (``scipy.linalg.circulant(c)``).

    Shapes: ``(..., in_features) → (..., out_features)``.
    Parameters: ``c ∈ R^n``, ``d ∈ R^out``, ``b ∈ R^out`` → ``n + 2·out`` (``n + out`` without
    bias); e.g. 9,216 for a 3072×3072 layer and 3,092 for 3072→10.
    Cost: O(n log n) time per sample (two batch FFTs forward, three backward); O(n) memory
    for the weights; backward keeps the input and one real activation per sample, or only
    the input with ``recompute=True`` (one more FFT in backward: a deep DCNN then keeps half
    the activations, for 10–15 % more time at n = 4,096).
    Init ``"paper"``: ``c ~ N(0, 2/n)``, ``d ~ U{±1}``, ``b ~ N(0, 0.01²)``; see
    :mod:`compactnn.init` for the alternatives.
    """

    param_formula = "max(in,out) + 2·out"

    def __init__(self, in_features, out_features, *, bias=True, init="paper", recompute=False,
                 device=None, dtype=None):
        super().__init__(in_features, out_features)
        check_scheme(init)
        self.init, self.recompute = init, bool(recompute)
        self.n = max(in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.c = nn.Parameter(torch.empty(self.n, **factory))
        self.d = nn.Parameter(torch.empty(out_features, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_circulant_(self.c, self.init)
        init_diagonal_(self.d, self.init)
        init_bias_(self.bias, self.init, self.n)

    def _parts(self):
        return self.c, None, self.d

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return max(in_features, out_features) + out_features * (2 if bias else 1)

    def structure_repr(self) -> str:
        return f"n={self.n}, init={self.init!r}" + (", recompute=True" if self.recompute else "")

    @classmethod
    def from_dense(cls, w, *, bias=None, iters: int = 100):
        """Fit ``diag(d)·circ(c)`` to a dense matrix by alternating least squares.

        Each half-step is the exact minimiser of ``||W - diag(d) circ(c)[:out,:in]||_F`` in one
        factor (diagonal averages for ``c``, a per-row ratio for ``d``), so the error never
        increases (:func:`~compactnn.layers.base.scaled_als`). A DC product is far from dense,
        so the fit of a general matrix is an approximation; a DC matrix itself is recovered
        (in every case tested; no proof). Cost: O(iters · out · in).
        """
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype)
        n = layer.n
        # W_ij = d_i c_{(i-j) mod n}: rearranged as M_ik = W_{i,(i-k) mod n}, a DC matrix is the
        # rank-one d c^T (entries with no j are missing). Start from the strongest row of M.
        i = torch.arange(out_f, device=weight.device)[:, None]
        j = torch.arange(in_f, device=weight.device)[None, :]
        m = torch.zeros(out_f, n, dtype=weight.dtype, device=weight.device)
        seen = torch.zeros(out_f, n, dtype=torch.bool, device=weight.device)
        m[i.expand(-1, in_f), (i - j) % n] = weight
        seen[i.expand(-1, in_f), (i - j) % n] = True
        c, d = scaled_als(weight, m, seen, iters,
                          lambda c: F.circulant_dense(c)[:out_f, :in_f],
                          lambda d: F.project_circulant(weight, n, row_scale=d), rows=True)
        with torch.no_grad():
            layer.c.copy_(c)
            layer.d.copy_(d)
        copy_bias_(layer, b)
        return layer


@register_layer("circulant_projection")
class CirculantProjection(_CirculantFamily):
    r"""Circulant projection (Cheng et al., *An exploration of parameter redundancy in deep
    networks with circulant projections*, ICCV 2015).

    ``y = (circ(r) · pad_n(s ⊙ x))[:out] + b`` with a **fixed** random sign vector
    ``s ∈ {±1}^in`` (a buffer, not trained) and ``n = max(in, out)``: for ``out < in`` the first
    ``out`` rows are kept, for ``out > in`` the input is zero-padded to an ``out × out`` circulant.

    Parameters: ``r ∈ R^n`` and ``b ∈ R^out`` → ``n + out`` (``n`` without bias), plus ``in``
    non-trained signs. Cost: O(n log n) time, O(n) memory.
    ``sign_seed`` makes the sign flip reproducible independently of the global RNG.
    """

    param_formula = "max(in,out) + out  (+ in fixed signs)"

    def __init__(self, in_features, out_features, *, bias=True, init="paper", sign_seed=None,
                 device=None, dtype=None):
        super().__init__(in_features, out_features)
        check_scheme(init)
        self.init, self.sign_seed = init, sign_seed
        self.n = max(in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.r = nn.Parameter(torch.empty(self.n, **factory))
        self.register_buffer("signs", torch.empty(in_features, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        gen = None
        if self.sign_seed is not None:
            gen = torch.Generator().manual_seed(int(self.sign_seed))
        with torch.no_grad():
            self.signs.copy_(torch.randint(0, 2, (self.in_features,), generator=gen) * 2 - 1)
        init_circulant_(self.r, self.init)
        init_bias_(self.bias, self.init, self.n)

    def _parts(self):
        return self.r, self.signs, None

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return max(in_features, out_features) + (out_features if bias else 0)

    def structure_repr(self) -> str:
        return f"n={self.n}, init={self.init!r}, fixed_signs={self.in_features}"

    @classmethod
    def from_dense(cls, w, *, bias=None, sign_seed=None):
        """Least-squares ``r`` for this layer's fixed signs (exact projection)."""
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias=(b is not None) if bias is None else bias,
                    sign_seed=sign_seed, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.r.copy_(F.project_circulant(weight, layer.n, col_scale=layer.signs))
        copy_bias_(layer, b)
        return layer


@register_layer("circulant")
class Circulant(_CirculantFamily):
    r"""Plain circulant layer: ``y = (circ(c) · pad_n(x))[:out] + b``, ``n = max(in, out)``.

    Parameters: ``n + out`` (``n`` without bias). Cost: O(n log n) time, O(n) memory.
    ``from_dense`` is the exact Frobenius projection (diagonal averages).
    """

    param_formula = "max(in,out) + out"

    def __init__(self, in_features, out_features, *, bias=True, init="paper",
                 device=None, dtype=None):
        super().__init__(in_features, out_features)
        check_scheme(init)
        self.init = init
        self.n = max(in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.c = nn.Parameter(torch.empty(self.n, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_circulant_(self.c, self.init)
        init_bias_(self.bias, self.init, self.n)

    def _parts(self):
        return self.c, None, None

    @staticmethod
    def num_params(in_features, out_features, *, bias=True, **_) -> int:
        return max(in_features, out_features) + (out_features if bias else 0)

    def structure_repr(self) -> str:
        return f"n={self.n}, init={self.init!r}"

    @classmethod
    def from_dense(cls, w, *, bias=None):
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.c.copy_(F.project_circulant(weight, layer.n))
        copy_bias_(layer, b)
        return layer
