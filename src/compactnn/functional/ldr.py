"""Low displacement rank (LDR) matrices (Thomas et al., NeurIPS 2018) through Krylov matrices.

``M = Σ_i K(A, g_i) · K(B, h_i)^T`` with ``K(A, v) = [v, Av, A²v, …, A^{n-1}v]``. With
``A = Z_1`` and ``B = Z_{-1}`` (the ``f``-circulant shifts ``Z_f v = [f v_{n-1}, v_0, …,
v_{n-2}]``) these are the Toeplitz-like matrices (``Z_1 M - M Z_{-1}`` has rank ≤ r); with
learned sub-diagonal or tri-diagonal ``A, B`` they are LDR-SD / LDR-TD. For nilpotent
operators (sub-diagonal) the formula inverts the Stein displacement: ``M - A M B^T = G H^T``,
the convention of the LDR authors' code; ``tests/test_families.py`` checks both ranks.

Products with the shift operators ``Z_{±1}`` (Toeplitz-like) use FFTs: ``O(r n log n)`` per
input (an f-circulant matrix is a diagonally scaled circulant). The others use explicit
Krylov matrices — closed forms for the sub-diagonal operators (one ``cumprod`` and a skew
done with reshapes), ``n - 1`` operator applications for tri-diagonal ones: ``O(r n²)`` time
and memory per call, the "slow but general" algorithm of the LDR authors' code (their fast
``O(r n log² n)`` algorithms for other operators are not implemented here). ``ldr_dense``
always builds the explicit Krylov matrices (the shift's in closed form: one gather).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .circulant import fft_dtype

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
        scale = torch.where(k < j, v.new_tensor(self.f), v.new_tensor(1.0))  # f in v's dtype
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
        if n == 1:
            return v[..., None]
        # lag coordinates: c[l, j] = v[l] · P[l, j], P[l, j] = Π_{m=l}^{l+j-1} sub[m] — a
        # cumulative product along j of the Hankel windows of sub (padded with ones: entries
        # with l + j ≥ n fall off the matrix)
        ext = torch.cat([self.sub, self.sub.new_ones(n)])
        p = torch.cumprod(ext.unfold(0, n - 1, 1)[:n], dim=1)  # P[:, 1:]
        rows = v[..., :, None]
        c = torch.cat([rows, rows * p], dim=-1)
        # skew, K[k, j] = c[k - j, j]: row j of K^T is row j of c^T shifted right by j. Each
        # row padded with n zeros and read with a row stride of 2n - 1 starts j places later
        # (what runs in from the row before is its zero padding) — reshapes and slices only
        padded = torch.cat([c.transpose(-1, -2), torch.zeros_like(c)], dim=-1)
        flat = padded.reshape(*c.shape[:-2], 2 * n * n)[..., : n * (2 * n - 1)]
        return flat.reshape(*c.shape[:-2], n, 2 * n - 1)[..., :n].transpose(-1, -2)


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


def _fcirculant_matmul(c: Tensor, x: Tensor, f: float, transpose: bool) -> Tensor:
    """``K(Z_f, c_i) x_i`` (or ``K(Z_f, c_i)^T x_i``) for ``c (r, n)``, ``x (..., r, n)``,
    ``f = ±1``, with FFTs. ``K(Z_f, c)`` is the f-circulant matrix with first column ``c``:
    with ``D = diag(η^k)``, ``η^n = f``, ``D K D⁻¹ = C(D c)``, the circulant of ``D c``
    (for ``k < j``: ``η^{k-j} f c[k-j+n] = η^{k-j+n} c[k-j+n]``). So ``K x = D⁻¹ C(Dc) D x``
    and ``K^T x = D C(Dc)^T D⁻¹ x``, where ``C(a)^T`` is the circulant of ``a`` reversed."""
    n = c.shape[-1]

    def reverse(a):  # a[(-m) mod n]
        return torch.roll(torch.flip(a, (-1,)), 1, -1)

    if f == 1.0:  # D = I, all real
        c = reverse(c) if transpose else c
        return torch.fft.irfft(torch.fft.rfft(c) * torch.fft.rfft(x), n=n)
    k = torch.arange(n, device=c.device, dtype=c.dtype)
    d = torch.polar(torch.ones_like(k), math.pi / n * k)  # η = e^{iπ/n}: η^n = -1
    dc = c * d
    if transpose:
        y = torch.fft.ifft(torch.fft.fft(reverse(dc)) * torch.fft.fft(x / d)) * d
    else:
        y = torch.fft.ifft(torch.fft.fft(dc) * torch.fft.fft(x * d)) / d
    return y.real  # K and x are real: the imaginary part is round-off


def _fft_shifts(op_a: Operator, op_b: Operator) -> bool:
    return all(isinstance(op, shift_op) and op.f in (1.0, -1.0) for op in (op_a, op_b))


def ldr_matmul(x: Tensor, op_a: Operator, op_b: Operator, g: Tensor, h: Tensor) -> Tensor:
    """``M x`` for inputs ``(..., n)`` without forming ``M``: ``Σ_i K(A,g_i) (K(B,h_i)^T x)``.
    Shift operators ``Z_{±1}`` (Toeplitz-like) go through FFTs, ``O(r n log n)`` per input;
    the others through explicit Krylov matrices, ``O(r n²)``."""
    if _fft_shifts(op_a, op_b) and x.numel():  # (MKL's FFT refuses an empty batch)
        # half precision is transformed in float32 (no half FFTs on the CPU), as circulant does
        work = fft_dtype(x.dtype)
        u = _fcirculant_matmul(h.to(work), x.to(work).unsqueeze(-2), op_b.f, transpose=True)
        return _fcirculant_matmul(g.to(work), u, op_a.f, transpose=False).sum(-2).to(x.dtype)
    ka, kb = krylov(op_a, g), krylov(op_b, h)
    u = torch.einsum("...l,rlj->...rj", x, kb)
    return torch.einsum("...rj,rkj->...k", u, ka)
