r"""Kronecker products and products of sums of Kronecker products (ProdSum, Wu 2018,
arXiv 1809.02209), applied without forming any Kronecker matrix.

Conventions
-----------
Vectors are flattened **row-major** (PyTorch's ``reshape``): ``vec(X) = X.reshape(-1)`` puts
``X[j1, j2]`` at position ``j1·n2 + j2``. ``torch.kron(A, B)[i1·m2 + i2, j1·n2 + j2] =
A[i1, j1]·B[i2, j2]``, and with these two conventions

    (A ⊗ B) vec(X) = vec(A X Bᵀ)        A: (m1, n1), B: (m2, n2), X: (n1, n2).

(Column-major texts write the same identity as ``(Bᵀ ⊗ A) vec(X) = vec(A X B)``.) With d
factors, ``(F_1 ⊗ … ⊗ F_d) vec(X)`` contracts mode k of ``X = x.reshape(n_1, …, n_d)`` with
``F_k``. The NCHW flattening of a ``(C, H, W)`` image is this vec, so a 2-D convolution is
``Σ_pq K_pq ⊗ S_p ⊗ S_q`` on ``image.reshape(-1)`` (:func:`conv2d_as_prodsum`).

* A **Kronecker sum** is a sequence of d factor tensors, either each ``(m_k, n_k)`` (one term)
  or all ``(R, m_k, n_k)``: ``Σ_{r<R} F_1[r] ⊗ … ⊗ F_d[r]``, an
  ``(Π m_k) × (Π n_k)`` matrix (:func:`kron_matmul`, reference :func:`kron_dense`).
* A **product of sums** is a sequence of Kronecker sums applied in order, ``factors[0]``
  first: ``W = S_{K-1} ⋯ S_1 S_0`` (:func:`prodsum_matmul`, reference :func:`prodsum_dense`).
  Consecutive sums only need matching flat sizes (the mode split may change between them).

Fixed factors are given as dense (small) tensors; the builders here make the named kinds:
:func:`shift_matrix` (cyclic or zero-padded shifts, strided, dilated), :func:`permutation_matrix`,
:func:`pooling_matrix` (averaging), :func:`dct_bands` and :func:`prodsum_basis` (the bases of the
``prodsum`` layer). Transforms are **real**: the orthonormal DCT-II (:func:`.dct_matrix`) stands
in for the DFT, whose complex entries a real-valued network would have to carry as 2×2 blocks.

Cost of ``kron_matmul`` (d = 2, R terms, batch N): ``N·R·min(n1 n2 m2 + m1 n1 m2,
n1 n2 m1 + m1 n2 m2)`` multiply-adds in two matrix products (the cheaper order is chosen),
against ``N·m1 m2 n1 n2`` for the dense matrix. Plain autograd differentiates everything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce

import torch
from torch import Tensor
from torch.nn import functional as F

from .dct import dct_matrix

__all__ = [
    "BASES",
    "avg_pool2d_as_prodsum",
    "conv2d_as_prodsum",
    "dct_bands",
    "kron_dense",
    "kron_matmul",
    "kron_rearrange",
    "kron_unrearrange",
    "near_square_factors",
    "nearest_kron_sum",
    "permutation_matrix",
    "pooling_matrix",
    "prodsum_basis",
    "prodsum_dense",
    "prodsum_matmul",
    "shift_matrix",
]

#: named bases of :func:`prodsum_basis`
BASES = ("dilated", "shift", "dct", "identity")


# --- Kronecker sums ---------------------------------------------------------------------------
def _terms(factors, what: str = "kron_matmul") -> list[Tensor]:
    """The factors of one Kronecker sum as ``(R, m_k, n_k)`` tensors (R ≥ 1, shared)."""
    if isinstance(factors, Tensor):
        factors = (factors,)
    factors = list(factors)
    if not factors:
        raise ValueError(f"{what} needs at least one Kronecker factor")
    for f in factors:
        if not isinstance(f, Tensor):
            raise ValueError(f"{what}: Kronecker factors must be tensors, got {type(f).__name__}")
    dims = {f.dim() for f in factors}
    if dims == {2}:
        return [f.unsqueeze(0) for f in factors]
    if dims == {3} and len({f.shape[0] for f in factors}) == 1 and factors[0].shape[0] >= 1:
        return factors
    raise ValueError(f"{what}: Kronecker factors must all be matrices (m, n) or all stacks "
                     f"(R, m, n) with the same R >= 1, got shapes "
                     f"{[tuple(f.shape) for f in factors]}")


def _sizes(fs: list[Tensor]) -> tuple[int, int]:
    return math.prod(f.shape[1] for f in fs), math.prod(f.shape[2] for f in fs)


def _flops(fs: list[Tensor]) -> int:
    """Multiply-adds per sample of :func:`_apply_last_first` (the last mode first)."""
    ms, ns = [f.shape[1] for f in fs], [f.shape[2] for f in fs]
    r = fs[0].shape[0]
    return sum(r * math.prod(ns[:k]) * ns[k] * ms[k] * math.prod(ms[k + 1:])
               for k in range(len(fs)))


def _apply_last_first(x: Tensor, fs: list[Tensor]) -> Tensor:
    """``(N, Π n) → (N, Π m)``: the last mode for all R terms in one product, the middle modes
    term by term, then the first mode and the sum over the terms in one product."""
    n_batch, r, d = x.shape[0], fs[0].shape[0], len(fs)
    ms, ns = [f.shape[1] for f in fs], [f.shape[2] for f in fs]
    if d == 1:
        return x @ fs[0].sum(0).T
    # explicit sizes throughout: reshape(-1, …) is ambiguous for an empty batch
    last = fs[-1].permute(2, 0, 1).reshape(ns[-1], r * ms[-1])
    y = x.reshape(n_batch * math.prod(ns[:-1]), ns[-1]) @ last
    y = y.reshape(n_batch, *ns[:-1], r, ms[-1]).movedim(-2, 1)
    for k in range(d - 2, 0, -1):  # y: (N, R, n_0 … n_k, m_{k+1} … m_{d-1})
        y = y.movedim(2 + k, -1)
        shape = y.shape
        y = y.reshape(n_batch, r, math.prod(shape[2:-1]), ns[k]) @ fs[k].transpose(1, 2)
        y = y.reshape(*shape[:-1], ms[k]).movedim(-1, 2 + k)
    first = fs[0].permute(1, 0, 2).reshape(ms[0], r * ns[0])
    y = first @ y.reshape(n_batch, r * ns[0], math.prod(ms[1:]))
    return y.reshape(n_batch, math.prod(ms))


def _apply_pair(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``Σ_r A_r ⊗ B_r`` on ``x`` of shape ``(N, n1·n2)``: two single matrix products over
    all terms, the cheaper mode first (ties: the first mode). Each contraction is laid out as
    one large product (transposed copies in between) rather than a batch of small ones, whose
    weight gradient would also need a per-sample reduction."""
    r, m1, n1 = a.shape
    _, m2, n2 = b.shape
    n_batch = x.shape[0]
    if m1 * n1 * n2 + m1 * n2 * m2 <= n1 * n2 * m2 + m1 * n1 * m2:
        xt = x.reshape(n_batch, n1, n2).transpose(0, 1).reshape(n1, n_batch * n2)
        y = (a.reshape(r * m1, n1) @ xt).reshape(r, m1, n_batch, n2)  # A_r X, all r
        y = y.permute(1, 2, 0, 3).reshape(m1 * n_batch, r * n2)
        y = y @ b.transpose(1, 2).reshape(r * n2, m2)  # Σ_r (A_r X) B_rᵀ
        return y.reshape(m1, n_batch, m2).transpose(0, 1).reshape(n_batch, m1 * m2)
    y = x.reshape(n_batch * n1, n2) @ b.permute(2, 0, 1).reshape(n2, r * m2)  # X B_rᵀ, all r
    y = y.reshape(n_batch, n1, r, m2).permute(0, 3, 2, 1).reshape(n_batch * m2, r * n1)
    y = y @ a.permute(1, 0, 2).reshape(m1, r * n1).T  # Σ_r A_r (X B_rᵀ), transposed
    return y.reshape(n_batch, m2, m1).transpose(1, 2).reshape(n_batch, m1 * m2)


def _apply(x: Tensor, fs: list[Tensor]) -> Tensor:
    """Apply one Kronecker sum to ``x`` of shape ``(N, Π n)`` in the cheaper mode order."""
    d = len(fs)
    if d == 2:
        return _apply_pair(x, *fs)
    rev = [f for f in reversed(fs)]
    if d > 1 and _flops(rev) < 0.8 * _flops(fs):  # reversed modes: the first mode first
        ns, ms = [f.shape[2] for f in rev], [f.shape[1] for f in rev]
        n_batch = x.shape[0]
        xr = x.reshape(n_batch, *reversed(ns)).permute(0, *range(d, 0, -1))
        y = _apply_last_first(xr.reshape(n_batch, math.prod(ns)), rev)
        y = y.reshape(n_batch, *ms).permute(0, *range(d, 0, -1))
        return y.reshape(n_batch, math.prod(ms))
    return _apply_last_first(x, fs)


def kron_matmul(x: Tensor, *factors: Tensor) -> Tensor:
    """``(Σ_r F_1[r] ⊗ … ⊗ F_d[r]) x`` for ``x`` of shape ``(..., Π n_k)`` → ``(..., Π m_k)``,
    without forming the Kronecker matrix; factors each ``(m_k, n_k)`` or all ``(R, m_k, n_k)``.
    Two factors: ``vec(Σ_r A_r X B_rᵀ)`` with ``X = x.reshape(..., n1, n2)`` (row-major)."""
    fs = _terms(factors)
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("kron_matmul needs an input tensor with a feature dimension")
    m, n = _sizes(fs)
    if x.shape[-1] != n:
        raise ValueError(f"kron_matmul: the factors take {n} features, got input shape "
                         f"{tuple(x.shape)}")
    lead = x.shape[:-1]
    return _apply(x.reshape(math.prod(lead), n), fs).reshape(*lead, m)


def kron_dense(*factors: Tensor) -> Tensor:
    """Reference: ``Σ_r torch.kron(F_1[r], …, F_d[r])``, the ``(Π m_k, Π n_k)`` matrix."""
    fs = _terms(factors, "kron_dense")
    return sum(reduce(torch.kron, [f[r] for f in fs]) for r in range(fs[0].shape[0]))


# --- products of sums -------------------------------------------------------------------------
def _chain(factors) -> list[list[Tensor]]:
    if isinstance(factors, Tensor) or not isinstance(factors, Sequence) or not factors:
        raise ValueError("a product of sums needs a non-empty sequence of Kronecker sums "
                         "(each a tuple of factor tensors)")
    chain = [_terms(f, f"prodsum factor {i}") for i, f in enumerate(factors)]
    for i in range(1, len(chain)):
        given, wanted = _sizes(chain[i - 1])[0], _sizes(chain[i])[1]
        if given != wanted:
            raise ValueError(f"prodsum factor {i} takes {wanted} features but factor {i - 1} "
                             f"gives {given}")
    return chain


def prodsum_matmul(x: Tensor, factors, *, zero_pad: bool = False,
                   out_features: int | None = None, bias: Tensor | None = None) -> Tensor:
    """``W x (+ bias)`` with ``W = S_{K-1} ⋯ S_0``, ``S_i`` the Kronecker sum ``factors[i]``
    (``factors[0]`` applied first), for ``x`` of shape ``(..., in)`` → ``(..., out)``.

    ``zero_pad``: an input with fewer features than ``S_0`` takes is zero-padded at the end;
    ``out_features``: keep the first ``out_features`` outputs (truncation). Together they
    apply the top-left ``(out, in)`` block of ``W``. Cost: Σ_i of :func:`kron_matmul`'s."""
    chain = _chain(factors)
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("prodsum_matmul needs an input tensor with a feature dimension")
    n_in, n_out = _sizes(chain[0])[1], _sizes(chain[-1])[0]
    n = x.shape[-1]
    if n != n_in and not (zero_pad and n < n_in):
        raise ValueError(f"prodsum_matmul: the first factor takes {n_in} features, got input "
                         f"shape {tuple(x.shape)}" + ("" if zero_pad else
                                                       " (zero_pad=True pads shorter inputs)"))
    out = n_out if out_features is None else out_features
    if isinstance(out, bool) or not isinstance(out, int) or not 1 <= out <= n_out:
        raise ValueError(f"prodsum_matmul: out_features must be an int in [1, {n_out}], "
                         f"got {out_features!r}")
    lead = x.shape[:-1]
    h = x.reshape(math.prod(lead), n)
    if n < n_in:
        h = F.pad(h, (0, n_in - n))
    for fs in chain:
        h = _apply(h, fs)
    y = h.reshape(*lead, n_out)
    if out < n_out:
        y = y[..., :out]
    return y if bias is None else y + bias


def prodsum_dense(factors) -> Tensor:
    """Reference: ``kron_dense(S_{K-1}) ⋯ kron_dense(S_0)`` (Kronecker matrices formed)."""
    chain = _chain(factors)
    w = kron_dense(*chain[0])
    for fs in chain[1:]:
        w = kron_dense(*fs) @ w
    return w


# --- factor shapes and the nearest Kronecker sum ----------------------------------------------
def near_square_factors(n: int, max_aspect: int = 4) -> tuple[int, int]:
    """``(a, b)`` with ``a ≤ b ≤ max_aspect·a`` and ``a·b ≥ n`` smallest (``a`` the largest
    divisor of that product up to its square root): ``n`` itself when it factors that evenly
    (784 → 28·28, 1000 → 25·40, 10 → 2·5), else the next size that does (7 → 2·4, 13 → 2·7,
    17 → 3·6). Squares always qualify, so at most about √n is padded."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"near_square_factors needs a positive int, got {n!r}")
    size = n
    while True:
        a = math.isqrt(size)
        while size % a:
            a -= 1
        if size // a <= max_aspect * a:
            return a, size // a
        size += 1


def kron_rearrange(w: Tensor, m1: int, n1: int, m2: int, n2: int) -> Tensor:
    """Van Loan–Pitsianis rearrangement of an ``(m1·m2, n1·n2)`` matrix into ``(m1·n1, m2·n2)``:
    ``R[i1·n1 + j1, i2·n2 + j2] = W[i1·m2 + i2, j1·n2 + j2]``, so that
    ``R(Σ_r A_r ⊗ B_r) = Σ_r vec(A_r) vec(B_r)ᵀ`` (row-major vec) and ``‖R‖_F = ‖W‖_F``."""
    if w.shape[-2:] != (m1 * m2, n1 * n2):
        raise ValueError(f"kron_rearrange: expected a ({m1 * m2}, {n1 * n2}) matrix, got shape "
                         f"{tuple(w.shape)}")
    return w.reshape(m1, m2, n1, n2).permute(0, 2, 1, 3).reshape(m1 * n1, m2 * n2)


def kron_unrearrange(r: Tensor, m1: int, n1: int, m2: int, n2: int) -> Tensor:
    """Inverse of :func:`kron_rearrange`."""
    if r.shape[-2:] != (m1 * n1, m2 * n2):
        raise ValueError(f"kron_unrearrange: expected a ({m1 * n1}, {m2 * n2}) matrix, got "
                         f"shape {tuple(r.shape)}")
    return r.reshape(m1, n1, m2, n2).permute(0, 2, 1, 3).reshape(m1 * m2, n1 * n2)


def nearest_kron_sum(w: Tensor, shapes: tuple[tuple[int, int], tuple[int, int]],
                     rank: int) -> tuple[Tensor, Tensor]:
    """``(A, B)`` of shapes ``(rank, m1, n1)``, ``(rank, m2, n2)`` minimising
    ``‖W − Σ_r A_r ⊗ B_r‖_F`` (Van Loan & Pitsianis 1993): the truncated SVD of
    :func:`kron_rearrange` ``(W) = U S Vᵀ``, ``A_r = √s_r U_r``, ``B_r = √s_r V_r`` (terms past
    the rearranged matrix's rank are zero). Half-precision inputs are decomposed in float32."""
    (m1, n1), (m2, n2) = shapes
    r = kron_rearrange(w, m1, n1, m2, n2)
    half = r.dtype in (torch.float16, torch.bfloat16)
    u, s, vh = torch.linalg.svd(r.float() if half else r, full_matrices=False)
    k = min(rank, s.numel())
    a = r.new_zeros(rank, m1 * n1, dtype=u.dtype)
    b = r.new_zeros(rank, m2 * n2, dtype=u.dtype)
    root = s[:k].sqrt()
    a[:k] = (u[:, :k] * root).T
    b[:k] = vh[:k] * root[:, None]
    return a.reshape(rank, m1, n1).to(w.dtype), b.reshape(rank, m2, n2).to(w.dtype)


# --- fixed factors ----------------------------------------------------------------------------
def _check_int(name: str, v, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    return v


def shift_matrix(n_out: int, n_in: int | None = None, offset: int = 0, *, stride: int = 1,
                 cyclic: bool = False, dtype=None, device=None) -> Tensor:
    """The ``(n_out, n_in)`` 0/1 matrix with ``(P x)_i = x[i·stride + offset]``:
    ``P[i, j] = 1`` iff ``j = i·stride + offset`` (``cyclic``: modulo ``n_in``; otherwise rows
    whose index falls outside ``[0, n_in)`` are zero, i.e. zero padding). A dilated shift is
    the offset ``q·dilation − padding`` of a convolution tap."""
    n_out = _check_int("n_out", n_out)
    n_in = n_out if n_in is None else _check_int("n_in", n_in)
    stride = _check_int("stride", stride)
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ValueError(f"offset must be an int, got {offset!r}")
    i = torch.arange(n_out, device=device)
    j = i * stride + offset
    p = torch.zeros(n_out, n_in, dtype=dtype or torch.get_default_dtype(), device=device)
    if cyclic:
        p[i, j % n_in] = 1
    else:
        ok = (j >= 0) & (j < n_in)
        p[i[ok], j[ok]] = 1
    return p


def permutation_matrix(perm, *, dtype=None, device=None) -> Tensor:
    """``P[i, perm[i]] = 1``: ``(P x)_i = x[perm[i]]``."""
    perm = torch.as_tensor(perm, device=device)
    n = perm.numel()
    if perm.dim() != 1 or n == 0 or not torch.equal(perm.sort().values.cpu(), torch.arange(n)):
        raise ValueError("permutation_matrix needs a 1-D permutation of 0 … n-1")
    p = torch.zeros(n, n, dtype=dtype or torch.get_default_dtype(), device=device)
    p[torch.arange(n, device=device), perm] = 1
    return p


def pooling_matrix(n_in: int, window: int, stride: int | None = None, *, dtype=None,
                   device=None) -> Tensor:
    """Average pooling: ``P[o, o·stride + t] = 1/window`` for ``t < window``;
    ``n_out = (n_in − window) // stride + 1`` (``stride`` defaults to ``window``, as
    ``nn.AvgPool1d``)."""
    n_in, window = _check_int("n_in", n_in), _check_int("window", window)
    stride = window if stride is None else _check_int("stride", stride)
    if window > n_in:
        raise ValueError(f"pooling window {window} exceeds the input size {n_in}")
    n_out = (n_in - window) // stride + 1
    p = torch.zeros(n_out, n_in, dtype=dtype or torch.get_default_dtype(), device=device)
    o = torch.arange(n_out, device=device)[:, None]
    t = torch.arange(window, device=device)[None, :]
    p[o.expand(-1, window), o * stride + t] = 1.0 / window
    return p


def dct_bands(n: int, bands: int, *, dtype=None, device=None) -> Tensor:
    """``(bands, n, n)`` orthogonal projectors ``Cᵀ E_j C`` (``C`` the orthonormal DCT-II,
    ``E_j`` selecting the contiguous frequency band ``[⌊jn/J⌋, ⌊(j+1)n/J⌋)``); they sum to
    the identity, and ``Σ_j T_j ⊗ P_j`` mixes channels band by band in the DCT domain."""
    n, bands = _check_int("n", n), _check_int("bands", bands)
    if bands > n:
        raise ValueError(f"dct_bands: {bands} bands need a size of at least {bands}, got {n}")
    c = dct_matrix(n, dtype=torch.float64, device=device)
    edges = [j * n // bands for j in range(bands + 1)]
    p = torch.stack([c[lo:hi].T @ c[lo:hi] for lo, hi in zip(edges, edges[1:], strict=False)])
    return p.to(dtype or torch.get_default_dtype())


def prodsum_basis(name: str, size: int, terms: int, *, level: int = 0, dtype=None,
                  device=None) -> Tensor:
    """The ``(terms, size, size)`` fixed factors ``P_j`` of a named basis, for factor number
    ``level`` of a product:

    * ``shift``: cyclic shifts by ``j − terms//2`` (a circular convolution with ``terms`` taps);
    * ``dilated``: cyclic shifts by ``(j − terms//2)·terms^level``: ``K`` factors reach
      ``terms^K`` consecutive offsets (balanced base-``terms`` digits), a dilated stack;
    * ``dct``: :func:`dct_bands` (``terms ≤ size``), channel mixing per DCT band;
    * ``identity``: ``I`` (``terms = 1``), channel mixing shared by every position.

    Shifts wrap modulo ``size``, so offsets may repeat when ``terms`` (or ``terms^level``)
    reaches ``size``: the basis is then redundant, never wrong."""
    size, terms = _check_int("size", size), _check_int("terms", terms)
    level = _check_int("level", level, 0)
    dtype = dtype or torch.get_default_dtype()
    if name in ("shift", "dilated"):
        step = pow(terms, level, size) if name == "dilated" else 1
        return torch.stack([shift_matrix(size, size, (j - terms // 2) * step % size, cyclic=True,
                                         dtype=dtype, device=device) for j in range(terms)])
    if name == "dct":
        return dct_bands(size, terms, dtype=dtype, device=device)
    if name == "identity":
        if terms != 1:
            raise ValueError(f"basis 'identity' has one term, got terms={terms}")
        return torch.eye(size, dtype=dtype, device=device)[None]
    raise ValueError(f"unknown basis {name!r}; choose one of {', '.join(BASES)}")


# --- convolution and pooling as products of sums ----------------------------------------------
def _pair(name: str, v, low: int) -> tuple[int, int]:
    t = (v, v) if not isinstance(v, (tuple, list)) else tuple(v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return tuple(_check_int(name, x, low) for x in t)


def conv2d_as_prodsum(weight: Tensor, height: int, width: int, *, stride=1, padding=0,
                      dilation=1, padding_mode: str = "zeros") -> list[tuple[Tensor, ...]]:
    """A 2-D convolution (``nn.Conv2d`` semantics: cross-correlation, ``groups=1``, no bias)
    as one Kronecker sum ``Σ_{p,q} K_pq ⊗ S_p ⊗ S_q`` over the ``kh·kw`` kernel taps:
    ``K_pq = weight[:, :, p, q]`` ``(C_out, C_in)``, ``S_p`` the ``(H_out, H)``
    :func:`shift_matrix` with offset ``p·dilation − padding`` and the stride (``S_q`` likewise
    along the width; cyclic for ``padding_mode="circular"``). Returns ``[(K, S_h, S_w)]``
    (stacks of ``kh·kw`` terms) for :func:`prodsum_matmul` on ``image.reshape(N, -1)``
    (NCHW); the output is ``(N, C_out·H_out·W_out)``."""
    if not isinstance(weight, Tensor) or weight.dim() != 4:
        raise ValueError("conv2d_as_prodsum needs a (C_out, C_in, kh, kw) weight tensor")
    if padding_mode not in ("zeros", "circular"):
        raise ValueError(f"padding_mode must be 'zeros' or 'circular', got {padding_mode!r}")
    c_out, c_in, kh, kw = weight.shape
    sizes = (_check_int("height", height), _check_int("width", width))
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    shifts = []
    for n, k, s, p, d in zip(sizes, (kh, kw), stride, padding, dilation, strict=True):
        n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if n_out < 1:
            raise ValueError(f"the kernel (size {k}, dilation {d}) does not fit an input of "
                             f"size {n} with padding {p}")
        if padding_mode == "circular" and p > n:
            raise ValueError(f"circular padding {p} exceeds the input size {n}")
        shifts.append(torch.stack([
            shift_matrix(n_out, n, t * d - p, stride=s, cyclic=padding_mode == "circular",
                         dtype=weight.dtype, device=weight.device) for t in range(k)]))
    taps = weight.permute(2, 3, 0, 1).reshape(kh * kw, c_out, c_in)
    s_h = shifts[0].repeat_interleave(kw, dim=0)  # term p·kw + q uses S_p and S_q
    s_w = shifts[1].repeat(kh, 1, 1)
    return [(taps, s_h, s_w)]


def avg_pool2d_as_prodsum(channels: int, height: int, width: int, kernel_size, stride=None, *,
                          dtype=None, device=None) -> list[tuple[Tensor, ...]]:
    """``nn.AvgPool2d(kernel_size, stride)`` (no padding) as ``I_C ⊗ P_h ⊗ P_w``
    (:func:`pooling_matrix` along each side); returns ``[(I_C, P_h, P_w)]``."""
    kh, kw = _pair("kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else _pair("stride", stride, 1)
    eye = torch.eye(_check_int("channels", channels), dtype=dtype or torch.get_default_dtype(),
                    device=device)
    return [(eye, pooling_matrix(height, kh, sh, dtype=eye.dtype, device=device),
             pooling_matrix(width, kw, sw, dtype=eye.dtype, device=device))]
