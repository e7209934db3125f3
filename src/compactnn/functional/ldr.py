"""Low displacement rank (LDR) matrices (Thomas et al., NeurIPS 2018) through Krylov matrices.

``M = Σ_i K(A, g_i) · K(B, h_i)^T`` with ``K(A, v) = [v, Av, A²v, …, A^{n-1}v]``. With
``A = Z_1`` and ``B = Z_{-1}`` (the ``f``-circulant shifts ``Z_f v = [f v_{n-1}, v_0, …,
v_{n-2}]``) these are the Toeplitz-like matrices (``Z_1 M - M Z_{-1}`` has rank ≤ r); with
learned sub-diagonal or tri-diagonal ``A, B`` they are LDR-SD / LDR-TD. For nilpotent
operators (sub-diagonal) the formula inverts the Stein displacement: ``M - A M B^T = G H^T``,
the convention of the LDR authors' code; ``tests/test_families.py`` checks both ranks.

Products use explicit Krylov matrices — closed forms for the shift (one gather) and the
sub-diagonal operators (one ``cumprod``), ``n - 1`` operator applications for tri-diagonal
ones: ``O(r n²)`` time and memory per call, the "slow but general" algorithm of the LDR
authors' code (their fast ``O(r n log² n)`` algorithms exist only for special operators).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["krylov", "ldr_dense", "ldr_matmul", "shift_op", "subdiagonal_op", "tridiagonal_op"]

Operator = Callable[[Tensor], Tensor]


class _Operator:
    """A displacement operator: ``op(v)`` applies it to ``(..., n)``; ``op.krylov(v)`` builds
    the Krylov matrices of the rows of ``v`` (shape ``(r, n)`` → ``(r, n, n)``, column j is
    ``A^j v``). The generic Krylov build applies the operator ``n - 1`` times."""

    def __call__(self, v: Tensor) -> Tensor:
        raise TypeError("abstract")  # pragma: no cover

    def krylov(self, v: Tensor) -> Tensor:
        cols = [v]
        for _ in range(v.shape[-1] - 1):
            cols.append(self(cols[-1]))
        return torch.stack(cols, dim=-1)


def _lag(n: int, device) -> tuple[Tensor, Tensor]:
    k = torch.arange(n, device=device)[:, None]
    j = torch.arange(n, device=device)[None, :]
    return k, j


class shift_op(_Operator):  # noqa: N801 - used like a function: shift_op(1.0)
    """``Z_f``: ``v ↦ [f·v_{n-1}, v_0, …, v_{n-2}]`` (down-shift with wrap-around scaled by f).
    Krylov matrix in closed form: ``K[k, j] = v[(k - j) mod n] · (f if k < j else 1)``."""

    def __init__(self, f: float) -> None:
        self.f = float(f)

    def __call__(self, v: Tensor) -> Tensor:
        return torch.cat([self.f * v[..., -1:], v[..., :-1]], dim=-1)

    def krylov(self, v: Tensor) -> Tensor:
        k, j = _lag(v.shape[-1], v.device)
        scale = torch.where(k < j, self.f, 1.0).to(v.dtype)
        return v[..., (k - j) % v.shape[-1]] * scale


class subdiagonal_op(_Operator):  # noqa: N801
    """The matrix with ``sub`` (length n-1) on its sub-diagonal and zeros elsewhere.
    Krylov matrix in closed form: ``K[k, j] = v[k-j] · Π_{m=k-j}^{k-1} sub[m]`` (k ≥ j), the
    products taken with one ``cumprod`` — no loop over the n powers."""

    def __init__(self, sub: Tensor) -> None:
        self.sub = sub

    def __call__(self, v: Tensor) -> Tensor:
        return torch.cat([torch.zeros_like(v[..., :1]), self.sub * v[..., :-1]], dim=-1)

    def krylov(self, v: Tensor) -> Tensor:
        n = v.shape[-1]
        k, j = _lag(n, v.device)
        s_prev = torch.cat([self.sub.new_ones(1), self.sub])[:, None].expand(n, n)
        # q[k, i] = Π_{m=i}^{k-1} sub[m]  (empty product 1 on and above the diagonal)
        q = torch.cumprod(torch.where(k > j, s_prev, torch.ones_like(s_prev)), dim=0)
        lag = (k - j).clamp_min(0)
        prod = q.gather(1, lag)  # q[k, k-j] = Π_{m=k-j}^{k-1} sub[m]
        return torch.where(k >= j, v[..., lag] * prod, v.new_zeros(()))


class tridiagonal_op(_Operator):  # noqa: N801
    """Tri-diagonal matrix: sub-diagonal ``sub`` (n-1), diagonal ``diag`` (n), super ``sup``.
    No closed-form Krylov matrix: built by ``n - 1`` operator applications."""

    def __init__(self, sub: Tensor, diag: Tensor, sup: Tensor) -> None:
        self.sub, self.diag, self.sup = sub, diag, sup

    def __call__(self, v: Tensor) -> Tensor:
        zero = torch.zeros_like(v[..., :1])
        return (self.diag * v + torch.cat([zero, self.sub * v[..., :-1]], dim=-1)
                + torch.cat([self.sup * v[..., 1:], zero], dim=-1))


def krylov(op: Operator, v: Tensor) -> Tensor:
    """Krylov matrices of the rows of ``v`` (shape ``(r, n)``): ``(r, n, n)``, column j = A^j v.

    ``op`` is one of this module's operators (closed forms where they exist) or any callable
    ``v ↦ A v`` (built by repeated application)."""
    if isinstance(op, _Operator):
        return op.krylov(v)
    return _Operator.krylov(op, v)  # type: ignore[arg-type]


def ldr_dense(op_a: Operator, op_b: Operator, g: Tensor, h: Tensor) -> Tensor:
    """``Σ_i K(A, g_i) K(B, h_i)^T`` for ``g, h`` of shape ``(r, n)``."""
    return torch.einsum("rkj,rlj->kl", krylov(op_a, g), krylov(op_b, h))


def ldr_matmul(x: Tensor, op_a: Operator, op_b: Operator, g: Tensor, h: Tensor) -> Tensor:
    """``M x`` for inputs ``(..., n)`` without forming ``M``: ``Σ_i K(A,g_i) (K(B,h_i)^T x)``."""
    ka, kb = krylov(op_a, g), krylov(op_b, h)
    u = torch.einsum("...l,rlj->...rj", x, kb)
    return torch.einsum("...rj,rkj->...k", u, ka)
