r"""Kronecker-sum (KFC) and product-of-sums (ProdSum) layers.

Both pad: an input of ``in`` features is zero-padded to the ``n`` the structure takes and the
first ``out`` of its ``m`` outputs are kept, so the layer applies the top-left ``(out, in)``
block of a structured ``(m, n)`` matrix, and ``to_dense()`` is exactly that block.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import functional as F
from ..functional.prodsum import BASES
from ..init import check_scheme, init_bias_
from .base import StructuredLinear, copy_bias_, dense_weight_and_bias, refine_to_dense_
from .registry import register_layer

__all__ = ["Kronecker", "ProdSum", "kronecker_shapes", "prodsum_layout"]

_NOISE_STD = 1e-2  # the "identity" scheme's perturbation, as init.init_circulant_


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


def _fill_(t: Tensor, dist: str, var: float) -> None:
    """Fill ``t`` with zero-mean entries of variance ``var`` (normal or uniform)."""
    if dist == "uniform":
        bound = math.sqrt(3 * var)
        t.uniform_(-bound, bound)
    else:
        t.normal_(0.0, math.sqrt(var))


def _scheme(init: str) -> tuple[str, float | None]:
    """``(distribution, gain)`` of an init scheme: the output variance is ``gain`` times the
    input's mean square (``None``: unit-variance entries, the ``normal`` scheme)."""
    s = check_scheme(init)
    if s.circulant == "delta":
        return "identity", None
    if s.circulant == "uniform":
        return "uniform", 1.0 / 3.0  # the variance of nn.Linear's U(±1/√in) default
    return "normal", s.c_var


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


# --- Kronecker sums ---------------------------------------------------------------------------
def kronecker_shapes(in_features: int, out_features: int,
                     shapes=None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Factor shapes ``((m1, n1), (m2, n2))`` of :class:`Kronecker`: given, or
    ``in → p1·p2`` and ``out → q1·q2`` by :func:`.near_square_factors` (``p1 ≤ p2``,
    ``q1 ≤ q2``) paired crosswise, ``A: (q1, p2)``, ``B: (q2, p1)``, which never has more
    parameters per term than the other pairing (rearrangement inequality)."""
    if shapes is None:
        p1, p2 = F.near_square_factors(in_features)
        q1, q2 = F.near_square_factors(out_features)
        return (q1, p2), (q2, p1)
    try:
        (m1, n1), (m2, n2) = shapes
    except (TypeError, ValueError):
        raise ValueError(f"shapes must be ((m1, n1), (m2, n2)), got {shapes!r}") from None
    for v in (m1, n1, m2, n2):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"shapes must hold positive ints, got {shapes!r}")
    if m1 * m2 < out_features or n1 * n2 < in_features:
        raise ValueError(f"shapes {shapes!r} give a {m1 * m2}x{n1 * n2} matrix, smaller than "
                         f"{out_features}x{in_features}")
    return (m1, n1), (m2, n2)


def _masked_ls(r: Tensor, mask: Tensor, v: Tensor) -> Tensor:
    """Row by row, the least-squares (minimum-norm) ``u_p`` of ``r_p ≈ v u_p`` on the
    entries ``mask_p`` marks."""
    g = torch.einsum("pq,qa,qb->pab", mask, v, v)
    rhs = (r * mask) @ v
    return (torch.linalg.pinv(g, hermitian=True) @ rhs[..., None])[..., 0]


def _masked_als(r: Tensor, mask: Tensor, v: Tensor, iters: int) -> tuple[float, Tensor, Tensor]:
    """Alternating least squares for ``r ≈ u vᵀ`` on the entries ``mask`` marks, from ``v``;
    each half-step is exact in its factor, so the error never increases. Stops early when the
    fit is exact to rounding or stalls. Returns ``(error, u, v)``."""
    scale = float((r * mask).norm()) or 1.0
    tol = 1e3 * torch.finfo(r.dtype).eps * scale
    u = _masked_ls(r, mask, v)
    err = float((mask * (r - u @ v.T)).norm())
    for _ in range(iters):
        if err <= tol:
            break
        v = _masked_ls(r.T, mask.T, u)
        u = _masked_ls(r, mask, v)
        new = float((mask * (r - u @ v.T)).norm())
        stalled = new > err * (1 - 1e-12)
        err = min(err, new)
        if stalled:
            break
    return err, u, v


@register_layer("kronecker")
class Kronecker(StructuredLinear):
    r"""Kronecker-sum layer (KFC): ``y = W x + b`` with ``W`` the top-left ``(out, in)`` block of
    ``Σ_{r<R} A_r ⊗ B_r``, ``A_r ∈ R^{m1×n1}``, ``B_r ∈ R^{m2×n2}`` all trainable.

    Applied as ``vec(Σ_r A_r X B_rᵀ)`` with ``X`` the (zero-padded) input reshaped row-major to
    ``(n1, n2)`` (:func:`.kron_matmul`; the Kronecker matrix is never formed). Shapes: by
    default ``n1·n2 ≥ in`` and ``m1·m2 ≥ out`` are the smallest near-square sizes
    (:func:`.near_square_factors`: the sizes themselves when they factor with aspect ≤ 4,
    e.g. 784 = 28·28, 10 = 2·5; 7 → 2·4 is padded) paired as :func:`kronecker_shapes` says;
    ``shapes=((m1, n1), (m2, n2))`` sets them.

    Parameters: ``R·(m1·n1 + m2·n2) + out`` (784 → 784, R = 2: 3,136 + 784).
    Cost per sample: ``R·min(n1 n2 m2 + m1 n1 m2, n1 n2 m1 + m1 n2 m2)`` multiply-adds
    (≈ ``2R·n^{1.5}`` square) against ``n²`` dense (measured: results/benchmarks/prodsum.md);
    backward keeps one intermediate of ``R·n1·m2`` or ``R·m1·n2`` floats per sample.

    Init: ``Var(W_ij) = gain/in`` as the schemes of :mod:`compactnn.init` — ``paper`` (He,
    gain 2), ``lecun`` (1), ``uniform`` (1/3, uniform factors: ``nn.Linear``'s variance),
    ``normal`` (``Var W_ij = 1``), ``identity`` (``A_0 = I``, ``B_0 = I`` rectangular, plus
    ``N(0, 10⁻⁴)`` noise: the identity when ``m2 = n2``).

    ``from_dense``: Van Loan & Pitsianis (1993): the rearrangement (:func:`.kron_rearrange`)
    turns ``Σ_r A_r ⊗ B_r`` into the rank-``R`` matrix ``Σ_r vec A_r vec B_rᵀ``, so its
    truncated SVD is the nearest Kronecker sum in Frobenius norm — exact for the family's own
    matrices. Padded shapes leave the padded entries free (a low-rank completion): the fully
    seen rearranged rows (columns) span the row (column) space of a matrix of the structure
    when they have its rank, and the least-squares fit of every row (column) on the entries it
    has is then exact. The fit starts from these two and from the zero-filled SVD and runs
    alternating least squares on the seen entries (``iters`` sweeps), keeping the best. It
    recovered every padded matrix of the structure tried at ranks 1–4 (sizes 1–31), but 8 of
    135 near-critically sampled ones at ranks 8–12 (too few fully seen rows and columns) only
    to 1e-4…1e-9 — hence ``from_dense_exact = False`` for the family.

    Kronecker FC layers: Zhou et al. (2015), "Exploiting local structures with the Kronecker
    layer in convolutional networks"; ProdSumNet (Wu 2018, arXiv 1809.02209) has them as a
    special case.
    """

    param_formula = "rank·(m1·n1 + m2·n2) + out (m1·m2 ≥ out, n1·n2 ≥ in near-square)"
    budget_kwargs = {"rank": 2}
    #: exact and optimal for unpadded shapes; padded ones can defeat the fit (see above)
    from_dense_exact = False

    def __init__(self, in_features, out_features, *, bias=True, rank=2, shapes=None,
                 init="paper", device=None, dtype=None):
        super().__init__(in_features, out_features)
        self.rank = _positive_int("rank", rank)
        self.shapes = kronecker_shapes(in_features, out_features, shapes)
        check_scheme(init)
        self.init = init
        (m1, n1), (m2, n2) = self.shapes
        factory = {"device": device, "dtype": dtype}
        self.a = nn.Parameter(torch.empty(rank, m1, n1, **factory))
        self.b = nn.Parameter(torch.empty(rank, m2, n2, **factory))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        dist, gain = _scheme(self.init)
        n1 = self.shapes[0][1]
        with torch.no_grad():
            if dist == "identity":
                for t in (self.a, self.b):
                    t.normal_(0.0, _NOISE_STD)
                    t[0] += torch.eye(*t.shape[1:], dtype=t.dtype, device=t.device)
            else:  # Var(W_ij) = R · Var(a) · Var(b) = gain/in (1 for ``normal``)
                target = 1.0 if gain is None else gain / self.in_features
                _fill_(self.a, dist, 1.0 / (self.rank * n1))
                _fill_(self.b, dist, target * n1)
        init_bias_(self.bias, self.init, self.in_features)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.prodsum_matmul(x, [(self.a, self.b)], zero_pad=True,
                                out_features=self.out_features, bias=self.bias)

    def to_dense(self) -> Tensor:
        return F.kron_dense(self.a, self.b)[:self.out_features, :self.in_features]

    @property
    def padded(self) -> bool:
        (m1, n1), (m2, n2) = self.shapes
        return (m1 * m2, n1 * n2) != (self.out_features, self.in_features)

    @staticmethod
    def num_params(in_features, out_features, *, rank=2, shapes=None, bias=True, **_) -> int:
        (m1, n1), (m2, n2) = kronecker_shapes(in_features, out_features, shapes)
        return rank * (m1 * n1 + m2 * n2) + (out_features if bias else 0)

    def structure_repr(self) -> str:
        (m1, n1), (m2, n2) = self.shapes
        pad = f", padded to {m1 * m2}x{n1 * n2}" if self.padded else ""
        return f"rank={self.rank}, shapes=(({m1}, {n1}), ({m2}, {n2})){pad}, init={self.init!r}"

    @classmethod
    def from_dense(cls, w, *, rank=2, shapes=None, bias=None, iters: int = 200):
        """Nearest Kronecker sum of ``w`` (``(out, in)`` tensor or ``nn.Linear``): truncated SVD
        of the rearranged matrix (optimal); for padded shapes, up to ``iters`` alternating
        least-squares sweeps on the observed entries."""
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, rank=rank, shapes=shapes,
                    bias=(b is not None) if bias is None else bias,
                    device=weight.device, dtype=weight.dtype)
        (m1, n1), (m2, n2) = layer.shapes
        work = weight.to(_work_dtype(weight.dtype))
        padded = work.new_zeros(m1 * m2, n1 * n2)
        padded[:out_f, :in_f] = work
        a, bb = F.nearest_kron_sum(padded, layer.shapes, rank)
        if layer.padded:
            a, bb = cls._fit_padded(padded, layer.shapes, out_f, in_f, a, bb, iters)
        with torch.no_grad():
            layer.a.copy_(a)
            layer.b.copy_(bb)
            copy_bias_(layer, b)
        return layer

    @staticmethod
    def _fit_padded(padded: Tensor, shapes, out_f: int, in_f: int, a: Tensor, b: Tensor,
                    iters: int) -> tuple[Tensor, Tensor]:
        (m1, n1), (m2, n2) = shapes
        rank = a.shape[0]
        seen = torch.zeros_like(padded)
        seen[:out_f, :in_f] = 1
        r = F.kron_rearrange(padded, m1, n1, m2, n2)
        mask = F.kron_rearrange(seen, m1, n1, m2, n2)
        starts = [b.reshape(rank, -1).T]  # the zero-filled SVD's B

        def top(m: Tensor, left: bool) -> Tensor:  # an orthonormal basis of rank columns
            u, _, vh = torch.linalg.svd(m, full_matrices=False)
            basis = u if left else vh.T
            out = m.new_zeros(basis.shape[0], rank)
            k = min(rank, basis.shape[1])
            out[:, :k] = basis[:, :k]
            return out

        # Fully seen rearranged rows span the row space of a matrix of the structure when they
        # have its rank; every row's least-squares fit on the entries it has is then exact
        # (likewise for fully seen columns and the column space).
        rows, cols = mask.bool().all(1), mask.bool().all(0)
        if rows.any():
            starts.append(top(r[rows], left=False))
        if cols.any():
            starts.append(_masked_ls(r.T, mask.T, top(r[:, cols], left=True)))
        best = min((_masked_als(r, mask, v, iters) for v in starts), key=lambda t: t[0])
        _, u, v = best
        return u.T.reshape(rank, m1, n1), v.T.reshape(rank, m2, n2)


# --- products of sums -------------------------------------------------------------------------
def prodsum_layout(in_features: int, out_features: int, *, depth=2, terms=3, basis="dilated",
                   block=None, width=None) -> tuple[int, list[int]]:
    """``(s, [h_0, …, h_depth])`` of :class:`ProdSum`: the size ``s`` of the fixed factors
    (default: the larger of :func:`.near_square_factors` ``(max(in, out))``) and the channel
    counts, ``h_0 = ⌈in/s⌉``, ``h_depth = ⌈out/s⌉``, ``width`` (default ``max(h_0, h_depth)``)
    in between."""
    depth, terms = _positive_int("depth", depth), _positive_int("terms", terms)
    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}; choose one of {', '.join(BASES)}")
    s = F.near_square_factors(max(in_features, out_features))[1] if block is None else \
        _positive_int("block", block)
    if basis == "identity" and terms != 1:
        raise ValueError(f"basis 'identity' has one term, got terms={terms}")
    if basis == "dct" and terms > s:
        raise ValueError(f"basis 'dct' splits the block of {s} into at most {s} bands, got "
                         f"terms={terms}")
    h_in, h_out = -(-in_features // s), -(-out_features // s)
    h = max(h_in, h_out) if width is None else _positive_int("width", width)
    return s, [h_in] + [h] * (depth - 1) + [h_out]


@register_layer("prodsum")
class ProdSum(StructuredLinear):
    r"""Product-of-sums layer (ProdSumNet, Wu 2018): ``y = W x + b`` with ``W`` the top-left
    ``(out, in)`` block of

        ``Π_{i<K} (Σ_{j<J} T_ij ⊗ P_ij)``   (factor 0 applied first),

    ``T_ij ∈ R^{h_{i+1}×h_i}`` trainable, ``P_ij ∈ R^{s×s}`` fixed (a buffer, not counted).
    The input is zero-padded to ``h_0·s`` and read row-major as ``h_0`` channels of ``s``
    positions; each factor mixes channels with ``T`` and positions with the fixed ``P``
    (``basis``, :func:`.prodsum_basis`): ``"dilated"`` (default: cyclic shifts by
    ``(j − J//2)·J^i``, so ``K`` factors reach ``J^K`` positions — a dilated linear CNN),
    ``"shift"`` (cyclic shifts by ``j − J//2``: a circular CNN with ``J`` taps per factor),
    ``"dct"`` (``J`` DCT-band projectors: channel mixing per band in the transform domain,
    no convolution; its factors commute band by band, so depth adds width constraints, not
    reach), ``"identity"`` (``J = 1``: ``T ⊗ I``, no positional mixing).

    Keywords: ``depth`` ``K``, ``terms`` ``J``, ``basis``, ``block`` ``s`` (default: the
    larger near-square factor of ``max(in, out)``, 784 → 28), ``width`` (the hidden channel
    count; default ``max(h_0, h_K)``). Shapes: :func:`prodsum_layout`.

    Parameters: ``J·Σ_i h_i·h_{i+1} + out`` (784 → 784 defaults: s = 28, h = 28, 4,704 + 784),
    adjustable in steps through ``terms``, ``depth``, ``width`` and ``block``.
    Cost per sample: ``Σ_i J·s·min(h_i·(s + h_{i+1}), h_{i+1}·(h_i + s))`` multiply-adds in two
    small matrix products per factor (:func:`.kron_matmul`; ≈ ``2·J·K·n^{1.5}`` for a square
    layer with ``s = h = √n``, against ``n²`` dense) — the fixed factors are applied as dense
    ``s × s`` matrices, their sparsity is not exploited. Memory: backward keeps one
    ``J × h_i × s`` intermediate per sample and factor.

    Init: each factor keeps the mean square of its input in expectation (exactly for shift and
    DCT bases, whose ``Σ_j P_jᵀP_j = c·I``): ``T_ij ~ N(0, 1/(c·h_i))`` with
    ``c = Σ_j ‖P_ij‖²/s``; the first factor carries the scheme's gain over the ``in`` real
    inputs: ``N(0, gain·s/(c·in))``, so the output mean square is ``gain`` × the input's at
    every depth — ``paper`` (gain 2, He), ``lecun`` (1), ``uniform`` (1/3, uniform entries),
    ``normal`` (``N(0, 1)`` entries, variance grows), ``identity`` (each factor
    ``I ⊗ I``: ``T_ij = c_j I`` with ``Σ_j c_j P_ij = I``, plus ``N(0, 10⁻⁴)`` noise).

    ``from_dense``: a numerical fit — the least-squares first factor with the others set to
    the identity (exact for ``depth = 1``), then L-BFGS on all factors (``iters``). A local
    method: it recovered 58 of 60 matrices of the structure tried (depth 2, sizes 5–64); the
    other two stopped at 4 % relative error.
    """

    param_formula = "terms·Σ h_i·h_(i+1) + out (h_0 = ⌈in/s⌉, h_depth = ⌈out/s⌉, s = block)"
    budget_kwargs = {"terms": 3}
    from_dense_exact = False

    def __init__(self, in_features, out_features, *, bias=True, depth=2, terms=3,
                 basis="dilated", block=None, width=None, init="paper", device=None,
                 dtype=None):
        super().__init__(in_features, out_features)
        self.block, self.channels = prodsum_layout(in_features, out_features, depth=depth,
                                                   terms=terms, basis=basis, block=block,
                                                   width=width)
        check_scheme(init)
        self.depth, self.terms, self.basis, self.init = depth, terms, basis, init
        factory = {"device": device, "dtype": dtype}
        h = self.channels
        for i in range(depth):
            self.register_parameter(f"t{i}", nn.Parameter(
                torch.empty(terms, h[i + 1], h[i], **factory)))
        self.register_buffer("p", torch.stack([
            F.prodsum_basis(basis, self.block, terms, level=i, dtype=dtype or
                            torch.get_default_dtype(), device=device) for i in range(depth)]))
        self._init_bias(bias, factory)
        self.reset_parameters()

    def factors(self) -> list[tuple[Tensor, Tensor]]:
        """The Kronecker sums ``(T_i, P_i)`` of :func:`.prodsum_matmul`, factor 0 first."""
        return [(getattr(self, f"t{i}"), self.p[i]) for i in range(self.depth)]

    def reset_parameters(self) -> None:
        dist, gain = _scheme(self.init)
        s, h = self.block, self.channels
        with torch.no_grad():
            for i, (t, p) in enumerate(self.factors()):
                if dist == "identity":
                    t.normal_(0.0, _NOISE_STD)
                    eye = torch.eye(*t.shape[1:], dtype=t.dtype, device=t.device)
                    t += _identity_coefficients(p).to(t.dtype)[:, None, None] * eye
                    continue
                c = float(p.double().square().sum()) / s or 1.0
                if gain is None:
                    var = 1.0
                elif i == 0:
                    var = gain * s / (c * self.in_features)
                else:
                    var = 1.0 / (c * h[i])
                _fill_(t, dist, var)
        init_bias_(self.bias, self.init, self.in_features)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.prodsum_matmul(x, self.factors(), zero_pad=True,
                                out_features=self.out_features, bias=self.bias)

    def to_dense(self) -> Tensor:
        return F.prodsum_dense(self.factors())[:self.out_features, :self.in_features]

    @staticmethod
    def num_params(in_features, out_features, *, depth=2, terms=3, basis="dilated", block=None,
                   width=None, bias=True, **_) -> int:
        _, h = prodsum_layout(in_features, out_features, depth=depth, terms=terms, basis=basis,
                              block=block, width=width)
        return terms * sum(a * b for a, b in zip(h, h[1:], strict=False)) + (
            out_features if bias else 0)

    def structure_repr(self) -> str:
        return (f"depth={self.depth}, terms={self.terms}, basis={self.basis!r}, "
                f"block={self.block}, channels={self.channels}, init={self.init!r}")

    @classmethod
    def from_dense(cls, w, *, depth=2, terms=3, basis="dilated", block=None, width=None,
                   bias=None, iters: int = 200):
        """Fit ``w`` (``(out, in)`` tensor or ``nn.Linear``): the least-squares first factor
        (the others the identity), then up to ``iters`` L-BFGS iterations on every factor."""
        weight, b = dense_weight_and_bias(w)
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, depth=depth, terms=terms, basis=basis, block=block,
                    width=width, bias=(b is not None) if bias is None else bias,
                    init="identity", device=weight.device, dtype=weight.dtype)
        s, h = layer.block, layer.channels
        work = weight.to(_work_dtype(weight.dtype))
        padded = work.new_zeros(h[-1] * s, h[0] * s)
        padded[:out_f, :in_f] = work
        seen = torch.zeros_like(padded)
        seen[:out_f, :in_f] = 1
        with torch.no_grad():
            # factor 0's first rows, block by block: W[a, c] ≈ Σ_j T_0[j, a, c] P_0j on the
            # entries seen; the identities after it (the "identity" init: I ⊗ I plus 1 %
            # noise) pass its first min(h_1, h_K) channels on
            keep = min(h[1], h[-1])
            p0 = layer.p[0].to(work.dtype)

            def blocks(m):
                return m.reshape(h[-1], s, h[0], s).permute(0, 2, 1, 3)[:keep]

            wb, mb = blocks(padded), blocks(seen)
            g = torch.einsum("acuv,juv,kuv->acjk", mb, p0, p0)
            rhs = torch.einsum("acuv,juv->acj", mb * wb, p0)
            t0 = (torch.linalg.pinv(g, hermitian=True) @ rhs[..., None])[..., 0]
            t0 = t0.permute(2, 0, 1).to(layer.t0.dtype)
            # the other channels start small but not at zero, where they would meet zero
            # gradients (a saddle of the product) and never be used
            rms = float(t0.double().square().mean().sqrt()) if t0.numel() else 0.0
            layer.t0.normal_(0.0, _NOISE_STD * (rms or 1.0))
            layer.t0[:, :keep] = t0
            copy_bias_(layer, b)
        if depth > 1:
            refine_to_dense_(layer, weight, iters)
        return layer


def _identity_coefficients(p: Tensor) -> Tensor:
    """Least-squares ``c`` with ``Σ_j c_j P_j ≈ I`` (exact for the named bases)."""
    flat = p.double().reshape(p.shape[0], -1)
    eye = torch.eye(p.shape[1], dtype=torch.float64, device=p.device).reshape(-1)
    return torch.linalg.pinv(flat @ flat.T, hermitian=True) @ (flat @ eye)
