"""Low displacement rank (LDR) matrices (Thomas et al., NeurIPS 2018) through Krylov matrices.

``M = Σ_i K(A, g_i) · K(B, h_i)^T`` with ``K(A, v) = [v, Av, A²v, …, A^{n-1}v]``. With
``A = Z_1`` and ``B = Z_{-1}`` (the ``f``-circulant shifts ``Z_f v = [f v_{n-1}, v_0, …,
v_{n-2}]``) these are the Toeplitz-like matrices (``Z_1 M - M Z_{-1}`` has rank ≤ r); with
learned sub-diagonal or tri-diagonal ``A, B`` they are LDR-SD / LDR-TD. For nilpotent
operators (sub-diagonal) the formula inverts the Stein displacement: ``M - A M B^T = G H^T``,
the convention of the LDR authors' code; ``tests/test_families.py`` checks both ranks.

Products use the explicit Krylov matrices (built column by column, ``n - 1`` operator
applications vectorised over the rank): ``O(r n²)`` time and memory per call, the "slow but
general" algorithm of the LDR authors' code — the fast ``O(r n log² n)`` algorithms exist only
for special operators.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["krylov", "ldr_dense", "ldr_matmul", "shift_op", "subdiagonal_op", "tridiagonal_op"]

Operator = Callable[[Tensor], Tensor]


def shift_op(f: float) -> Operator:
    """``Z_f``: ``v ↦ [f·v_{n-1}, v_0, …, v_{n-2}]`` (down-shift with wrap-around scaled by f)."""

    def apply(v: Tensor) -> Tensor:
        return torch.cat([f * v[..., -1:], v[..., :-1]], dim=-1)

    return apply


def subdiagonal_op(sub: Tensor) -> Operator:
    """The matrix with ``sub`` (length n-1) on its sub-diagonal and zeros elsewhere."""

    def apply(v: Tensor) -> Tensor:
        return torch.cat([torch.zeros_like(v[..., :1]), sub * v[..., :-1]], dim=-1)

    return apply


def tridiagonal_op(sub: Tensor, diag: Tensor, sup: Tensor) -> Operator:
    """Tri-diagonal matrix: sub-diagonal ``sub`` (n-1), diagonal ``diag`` (n), super ``sup``."""

    def apply(v: Tensor) -> Tensor:
        zero = torch.zeros_like(v[..., :1])
        return (diag * v + torch.cat([zero, sub * v[..., :-1]], dim=-1)
                + torch.cat([sup * v[..., 1:], zero], dim=-1))

    return apply


def krylov(op: Operator, v: Tensor) -> Tensor:
    """Krylov matrices of the rows of ``v`` (shape ``(r, n)``): ``(r, n, n)``, column j = A^j v."""
    cols = [v]
    for _ in range(v.shape[-1] - 1):
        cols.append(op(cols[-1]))
    return torch.stack(cols, dim=-1)


def ldr_dense(op_a: Operator, op_b: Operator, g: Tensor, h: Tensor) -> Tensor:
    """``Σ_i K(A, g_i) K(B, h_i)^T`` for ``g, h`` of shape ``(r, n)``."""
    return torch.einsum("rkj,rlj->kl", krylov(op_a, g), krylov(op_b, h))


def ldr_matmul(x: Tensor, op_a: Operator, op_b: Operator, g: Tensor, h: Tensor) -> Tensor:
    """``M x`` for inputs ``(..., n)`` without forming ``M``: ``Σ_i K(A,g_i) (K(B,h_i)^T x)``."""
    ka, kb = krylov(op_a, g), krylov(op_b, h)
    u = torch.einsum("...l,rlj->...rj", x, kb)
    return torch.einsum("...rj,rkj->...k", u, ka)
