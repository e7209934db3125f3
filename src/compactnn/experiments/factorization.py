"""Theory made checkable (Araujo et al. 2020, §3; seed 001): how well does a product of ``m``
alternating circulant and diagonal factors ``B_1 B_2 ⋯ B_m`` (``B_i`` circulant for odd ``i``,
diagonal for even ``i``, the theorems' form) approximate a random ``n × n`` matrix of rank
``r``, as a function of ``m``?

The theorems: any complex ``n × n`` matrix is such a product of ``2n − 1`` factors up to any
``ε > 0`` (Huhtanen & Perämäki 2015; the paper's Theorem 1), and one of rank ``r`` (``r``
dividing ``n``) of ``4r + 1`` factors (the paper's Theorem 2). Both are existence results
for complex factors. A necessary condition follows from counting: the products of ``m``
factors form a set of dimension at most ``m·n − (m − 1)`` (each factor has ``n`` entries, and
a scale moves freely between neighbours), and the rank-``r`` matrices one of dimension
``r·(2n − r)``, so approximating *every* rank-``r`` matrix needs
``m·n − (m − 1) ≥ r·(2n − r)`` (:func:`counting_bound`); for ``r = n`` that is ``m ≥ n + 1``.

The fit (:func:`fit_dc_product`) minimises ``||A − B_1⋯B_m||_F`` over all factors at once by
Levenberg–Marquardt (Gauss–Newton steps on the exact Jacobian, damped), from a warm start
(the best fit with ``m − 2`` factors followed by an identity diagonal and circulant, so the
error can only fall with ``m``) and from a random start, keeping the better. A fit that
does not reach zero is the optimiser's limit at that budget, not a counterexample to the
theorems.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch
from torch import Tensor

from .._optional import progress_bar
from ..train import write_json
from .plots import figure
from .runner import Experiment, register_experiment

__all__ = ["counting_bound", "dc_product_apply", "dc_product_dense", "dc_product_jacobian",
           "fit_dc_product", "fit_dc_product_als", "random_factors", "random_rank_matrix"]

#: a relative error at or below this counts as "reached zero" (the fits stop at TOL)
ZERO, TOL = 1e-8, 1e-11


def _check_factors(factors: list[Tensor]) -> int:
    if not factors:
        raise ValueError("a DC product needs at least one factor")
    n = factors[0].shape[-1]
    for i, f in enumerate(factors):
        if f.dim() != 1 or f.shape[0] != n:
            raise ValueError(f"factor {i} has shape {tuple(f.shape)}; every factor must be a "
                             f"vector of length n = {n}")
    return n


def _circ_matrix(c: Tensor) -> Tensor:
    """``circ(c)``: first column ``c``, ``circ(c)[i, j] = c[(i − j) mod n]``."""
    i = torch.arange(c.shape[0], device=c.device)
    return c[(i[:, None] - i[None, :]) % c.shape[0]]


def _apply(f: Tensor, i: int, x: Tensor) -> Tensor:
    """Factor ``B_{i+1}`` (circulant for even 0-based ``i``) times the columns of ``x``."""
    if i % 2:
        return f[:, None] * x
    y = torch.fft.ifft(torch.fft.fft(f)[:, None] * torch.fft.fft(x, dim=0), dim=0)
    return y if f.is_complex() or x.is_complex() else y.real


def dc_product_dense(factors: list[Tensor]) -> Tensor:
    """The ``n × n`` matrix ``B_1 B_2 ⋯ B_m`` of the vectors ``factors`` (``B_i = circ(f_i)``
    for odd ``i``, ``diag(f_i)`` for even ``i``, 1-based), by explicit dense products — the
    reference the fast paths are tested against. O(m·n³)."""
    _check_factors(factors)
    out = None
    for i, f in enumerate(factors):
        b = _circ_matrix(f) if i % 2 == 0 else torch.diag(f)
        out = b if out is None else out @ b
    return out


def dc_product_apply(x: Tensor, factors: list[Tensor]) -> Tensor:
    """``x ↦ B_1 ⋯ B_m x`` for ``x`` of shape ``(..., n)`` (each vector in the last dimension),
    by FFTs (circulants) and products (diagonals), from ``B_m`` to ``B_1``. O(m·n log n) per
    vector. Complex when any factor or ``x`` is."""
    n = _check_factors(factors)
    if x.shape[-1] != n:
        raise ValueError(f"x has {x.shape[-1]} entries in its last dimension; the factors "
                         f"have n = {n}")
    shape = x.shape
    y = x.reshape(-1, n).T
    for i in range(len(factors) - 1, -1, -1):
        y = _apply(factors[i], i, y)
    return y.T.reshape(*shape[:-1], n)


def dc_product_jacobian(factors: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``(J, P)``: ``P = B_1 ⋯ B_m`` and ``J[(a·n + b), (i·n + k)] = ∂P[a, b] / ∂f_i[k]`` (the
    product is multilinear, and holomorphic in complex factors). For a diagonal factor
    ``∂P/∂d_k = L[:, k] R[k, :]`` with ``L = B_1⋯B_{i−1}``, ``R = B_{i+1}⋯B_m``; for a circulant
    ``circ(c) = F⁻¹ diag(F c) F`` gives the same form in ``λ = F c`` with ``L F⁻¹`` and ``F R``,
    then ``∂/∂c = ∂/∂λ · F``. Real factors give a real ``J``. O(m·n⁴) time, ``n² × m·n``."""
    n = _check_factors(factors)
    m = len(factors)
    dtype = factors[0].dtype
    eye = torch.eye(n, dtype=dtype, device=factors[0].device)
    right = [eye] * m
    s = eye
    for i in range(m - 1, -1, -1):
        right[i] = s
        s = _apply(factors[i], i, s)
    cols, left = [], eye
    for i, f in enumerate(factors):
        lm, rm = left, right[i]
        if i % 2 == 0:
            lm, rm = torch.fft.ifft(lm, dim=1), torch.fft.fft(rm, dim=0)
        block = (lm[:, None, :] * rm.T[None, :, :]).reshape(n * n, n)
        if i % 2 == 0:
            block = torch.fft.fft(block, dim=1)
            block = block if dtype.is_complex else block.real
        cols.append(block)
        # left · B_i: a circulant acts on the rows' right side as (B_iᵀ leftᵀ)ᵀ
        left = left * f[None, :] if i % 2 else _right_circ(left, f)
    return torch.cat(cols, 1), left


def _right_circ(x: Tensor, c: Tensor) -> Tensor:
    """``x · circ(c)`` (``circ(c)ᵀ = circ(c')`` with ``c'_k = c_{−k mod n}``)."""
    flipped = torch.roll(torch.flip(c, [0]), 1)
    return _apply(flipped, 0, x.T).T


def random_factors(m: int, n: int, *, complex_factors: bool, generator=None) -> list[Tensor]:
    """``m`` random factors: circulant columns ``~ N(0, 1/n)`` (spectrum of unit scale),
    diagonals ``~ N(0, 1)``; complex ones with independent real and imaginary parts (halved
    variance each)."""
    out = []
    for i in range(m):
        f = torch.randn(n, generator=generator, dtype=torch.float64)
        if complex_factors:
            f = torch.complex(f, torch.randn(n, generator=generator,
                                             dtype=torch.float64)) / math.sqrt(2)
        out.append(f / math.sqrt(n) if i % 2 == 0 else f)
    return out


def random_rank_matrix(n: int, r: int, *, complex_entries: bool, generator=None) -> Tensor:
    """``U Vᵀ`` with ``U, V ∈ n × r`` standard Gaussian (complex Gaussian when asked): rank
    ``r`` with probability one."""
    if not 1 <= r <= n:
        raise ValueError(f"rank must be in [1, n = {n}], got {r}")
    dtype = torch.complex128 if complex_entries else torch.float64
    u = torch.randn(n, r, generator=generator, dtype=dtype)
    v = torch.randn(r, n, generator=generator, dtype=dtype)
    return u @ v


def counting_bound(n: int, r: int) -> int:
    """The fewest factors ``m`` with ``m·n − (m − 1) ≥ r·(2n − r)``: below it the products of
    ``m`` factors (a set of dimension ≤ ``m·n − (m − 1)``) cannot approximate every rank-``r``
    matrix (dimension ``r·(2n − r)``). ``n + 1`` for ``r = n``."""
    return max(1, math.ceil((r * (2 * n - r) - 1) / (n - 1))) if n > 1 else 1


def _balance(factors: list[Tensor]) -> list[Tensor]:
    """Rescale the factors to equal RMS entries (the product is unchanged)."""
    rms = [f.abs().pow(2).mean().sqrt().item() for f in factors]
    if min(rms) == 0:
        return factors
    g = math.exp(statistics.fmean(math.log(x) for x in rms))
    return [f * (g / x) for f, x in zip(factors, rms, strict=True)]


def _start(a: Tensor, m: int, complex_factors: bool | None, init: list[Tensor] | None,
           generator) -> tuple[Tensor, list[Tensor], float]:
    """A fit's checked target (as complex128 or float64), starting factors and norm."""
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be a square matrix, got shape {tuple(a.shape)}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"the number of factors must be an int >= 1, got {m!r}")
    cplx = a.is_complex() if complex_factors is None else bool(complex_factors)
    if a.is_complex() and not cplx:
        raise ValueError("a complex matrix needs complex factors")
    dtype = torch.complex128 if cplx else torch.float64
    a = a.to(dtype)
    factors = ([f.to(dtype) for f in init] if init is not None
               else random_factors(m, a.shape[0], complex_factors=cplx, generator=generator))
    if len(factors) != m:
        raise ValueError(f"init has {len(factors)} factors, expected {m}")
    if _check_factors(factors) != a.shape[0]:
        raise ValueError(f"the factors have length {factors[0].shape[0]}, a is "
                         f"{a.shape[0]} × {a.shape[0]}")
    norm = torch.linalg.norm(a).item()
    if norm == 0:
        raise ValueError("a is zero: the relative error is undefined")
    return a, factors, norm


def fit_dc_product(a: Tensor, m: int, *, complex_factors: bool | None = None,
                   init: list[Tensor] | None = None, iters: int = 400, tol: float = TOL,
                   generator=None) -> tuple[list[Tensor], list[float]]:
    """Fit ``B_1 ⋯ B_m`` to the square matrix ``a`` in Frobenius norm by Levenberg–Marquardt:
    each step solves ``(JᴴJ + μ·s·I) δ = Jᴴ r`` (in its ``n² × n²`` dual form when ``m > n``)
    for all factors at once, is kept if it lowers the error (then ``μ`` shrinks) and retried
    with a larger ``μ`` otherwise; the factors are rebalanced after each step. Stops at a
    relative error ``≤ tol``, after ``iters`` steps, when ``μ`` blows up (a local minimum), or
    when 50 steps gained less than 0.1 % (a plateau). ``complex_factors``: default, complex
    exactly when ``a`` is. Returns ``(factors, relative errors after each step)``."""
    a, factors, norm = _start(a, m, complex_factors, init, generator)
    n, dtype = a.shape[0], a.dtype
    factors = _balance(factors)
    jac, p = dc_product_jacobian(factors)
    res = (a - p).reshape(-1)
    err = torch.linalg.norm(res).item() / norm
    hist, mu = [err], 1e-3
    for _ in range(iters):
        if err <= tol:
            break
        jh = jac.conj().T
        dual = jac.shape[1] > jac.shape[0]
        gram = jac @ jh if dual else jh @ jac
        rhs = res if dual else jh @ res
        scale = gram.diagonal().real.mean().item() or 1.0
        eye = torch.eye(gram.shape[0], dtype=dtype)
        while mu <= 1e10:
            sol = torch.linalg.solve(gram + (mu * scale) * eye, rhs)
            delta = jh @ sol if dual else sol
            trial = [f + delta[i * n:(i + 1) * n] for i, f in enumerate(factors)]
            new = torch.linalg.norm(a - dc_product_dense_fast(trial)).item() / norm
            if new < err:
                factors, mu = _balance(trial), max(mu / 3, 1e-12)
                break
            mu *= 4
        if mu > 1e10:  # no damping lowers the error: a (local) minimum
            break
        jac, p = dc_product_jacobian(factors)
        res = (a - p).reshape(-1)
        err = torch.linalg.norm(res).item() / norm
        hist.append(err)
        if len(hist) > 50 and err > 0.999 * hist[-51]:
            break
    return factors, hist


def fit_dc_product_als(a: Tensor, m: int, *, complex_factors: bool | None = None,
                       init: list[Tensor] | None = None, sweeps: int = 300, tol: float = TOL,
                       generator=None) -> tuple[list[Tensor], list[float]]:
    """Alternating least squares for ``B_1 ⋯ B_m ≈ a``: each factor in turn is the exact
    minimiser with the others fixed — with ``L = B_1⋯B_{i−1}``, ``R = B_{i+1}⋯B_m`` a diagonal
    solves the Hadamard-product normal equations ``((LᴴL) ⊙ (RRᴴ)ᵀ) d = diag(Lᴴ a Rᴴ)``, a
    circulant the same in the Fourier domain (``L F⁻¹``, ``F R``) mapped back to its first
    column (real parts of the system for real factors) — so the error never increases.
    The alternating scheme of the ``dc`` family's ``from_dense``; here the baseline of
    :func:`fit_dc_product`.
    Returns ``(factors, relative error after each sweep)``."""
    a, factors, norm = _start(a, m, complex_factors, init, generator)
    n, dtype, cplx = a.shape[0], a.dtype, a.is_complex()
    eye = torch.eye(n, dtype=dtype)
    four = torch.fft.fft(torch.eye(n, dtype=torch.complex128), dim=0)  # F: fft(c) = F c
    hist = [torch.linalg.norm(a - dc_product_dense_fast(factors)).item() / norm]
    for _ in range(sweeps):
        if hist[-1] <= tol:
            break
        right, s = [eye] * m, eye
        for i in range(m - 1, -1, -1):
            right[i] = s
            s = _apply(factors[i], i, s)
        left = eye
        for i in range(m):
            lm, rm = left.to(torch.complex128), right[i].to(torch.complex128)
            if i % 2 == 0:
                lm, rm = torch.fft.ifft(lm, dim=1), torch.fft.fft(rm, dim=0)
            gram = (lm.conj().T @ lm) * (rm @ rm.conj().T).T
            rhs = torch.diagonal(lm.conj().T @ a.to(torch.complex128) @ rm.conj().T)
            if i % 2 == 0:
                gram, rhs = four.conj().T @ gram @ four, four.conj().T @ rhs
            if not cplx:
                gram, rhs = gram.real, rhs.real
            ridge = 1e-12 * gram.diagonal().real.mean().clamp_min(1e-300)
            sol = torch.linalg.solve(gram + ridge * torch.eye(n, dtype=gram.dtype), rhs)
            factors[i] = sol.to(dtype)
            left = left * factors[i][None, :] if i % 2 else _right_circ(left, factors[i])
        factors = _balance(factors)
        hist.append(torch.linalg.norm(a - left).item() / norm)
    return factors, hist


def dc_product_dense_fast(factors: list[Tensor]) -> Tensor:
    """:func:`dc_product_dense` by FFTs on the identity's columns (O(m·n² log n))."""
    n = _check_factors(factors)
    dtype = torch.promote_types(factors[0].dtype, torch.float64)
    return dc_product_apply(torch.eye(n, dtype=dtype), factors).T


# --- the experiment -------------------------------------------------------------------------
#: (label, complex target and factors)
SETTINGS = (("real", False), ("complex", True))
FULL = {"n": 16, "ranks": (1, 2, 4, 16), "trials": 3, "iters": 800, "sweeps": 1000}
QUICK = {"n": 8, "ranks": (1, 8), "trials": 1, "iters": 100, "sweeps": 100}


def _curve(a: Tensor, ms: list[int], cplx: bool, iters: int, gen) -> list[float]:
    """The fitted error for each ``m`` of ``ms`` (odd, increasing), warm-started from the
    previous ``m``'s best fit with an identity diagonal and circulant appended, and a
    random start whenever the warm start does not reach ``ZERO``."""
    n = a.shape[0]
    dtype = torch.complex128 if cplx else torch.float64
    errs, best = [], None
    for m in ms:
        tries = []
        if best is not None and len(best) < m:
            pad = []  # identity factors: the start is the previous fit, exactly
            for i in range(len(best), m):
                one = torch.zeros(n, dtype=dtype)
                one[0] = 1.0  # circ(e_0) = I
                pad.append(one if i % 2 == 0 else torch.ones(n, dtype=dtype))
            tries.append(fit_dc_product(a, m, init=[*best, *pad], complex_factors=cplx,
                                        iters=iters))
        if not tries or tries[0][1][-1] > ZERO:
            tries.append(fit_dc_product(a, m, complex_factors=cplx, iters=iters,
                                        generator=gen))
        best, hist = min(tries, key=lambda t: t[1][-1])
        errs.append(hist[-1])
    return errs


def _bound(n: int, r: int) -> int:
    """The theorems' number of factors for rank ``r``: ``min(4r + 1, 2n − 1)``."""
    return min(4 * r + 1, 2 * n - 1)


def _stats(v: list[float]) -> dict:
    return {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "max": max(v), "min": min(v), "n": len(v)}


def _fmt(s: dict) -> str:
    if s["max"] <= ZERO:
        return f"≤ {ZERO:.0e} (all)"
    spread = f" ± {s['std']:.2g}" if s["n"] > 1 else ""
    return f"{s['mean']:.3g}{spread}"


def _factorization(*, quick: bool, out_dir: Path, log) -> str:
    budget = QUICK if quick else FULL
    n, trials, iters = budget["n"], budget["trials"], budget["iters"]
    ms = list(range(1, 2 * n + 2, 2))  # odd: circulant first and last, as in the theorems
    gen = torch.Generator().manual_seed(0)
    curves: dict[tuple[str, int], list[list[float]]] = {}
    als: dict[tuple[str, int], list[float]] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # n ≤ 32: more threads only add synchronisation
    try:
        jobs = [(s, r, t) for s in SETTINGS for r in budget["ranks"] for t in range(trials)]
        for (label, cplx), r, t in progress_bar(jobs, desc="factorization", leave=False):
            a = random_rank_matrix(n, r, complex_entries=cplx, generator=gen)
            errs = _curve(a, ms, cplx, iters, gen)
            curves.setdefault((label, r), []).append(errs)
            _, hist = fit_dc_product_als(a, _bound(n, r), complex_factors=cplx,
                                         sweeps=budget["sweeps"], generator=gen)
            als.setdefault((label, r), []).append(hist[-1])
            first = next((m for m, e in zip(ms, errs, strict=True) if e <= ZERO), None)
            log(f"factorization {label} r={r} matrix {t}: error {errs[0]:.3g} (m=1) → "
                f"{errs[-1]:.3g} (m={ms[-1]}); ≤ {ZERO:g} from m = {first}")
    finally:
        torch.set_num_threads(threads)
    stats = {k: [_stats([c[j] for c in v]) for j in range(len(ms))] for k, v in curves.items()}

    def reached(key) -> int | None:  # the first m where every matrix is at zero
        return next((m for m, s in zip(ms, stats[key], strict=True) if s["max"] <= ZERO), None)

    def at(key, m: int) -> str:
        return _fmt(stats[key][ms.index(m)]) if m in ms else f"(m = {m} > {ms[-1]}: not fitted)"

    write_json(out_dir / "results.json", {
        "n": n, "trials": trials, "iters": iters, "ms": ms, "zero": ZERO, "tol": TOL,
        "curves": {f"{s} | r={r}": v for (s, r), v in curves.items()},
        "als_at_bound": {f"{s} | r={r}": v for (s, r), v in als.items()},
        "sweeps": budget["sweeps"],
        "stats": {f"{s} | r={r}": v for (s, r), v in stats.items()}})
    summary = ["| factors | rank r | counting bound | Theorem 2: 4r + 1 | Theorem 1: 2n − 1 | "
               "first m with every fit ≤ 1e-8 | error at 4r + 1 | error at 2n − 1 | "
               "ALS at min(4r + 1, 2n − 1) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in curves:
        label, r = key
        first = reached(key)
        zeros = sum(c[-1] <= ZERO for c in curves[key])
        first = (first if first is not None
                 else f"none up to {ms[-1]} ({zeros} of {len(curves[key])} fits at zero there)")
        summary.append(
            f"| {label} | {r} | {counting_bound(n, r)} | {4 * r + 1} | {2 * n - 1} | "
            f"{first} | {at(key, 4 * r + 1)} | "
            f"{at(key, 2 * n - 1)} | {_fmt(_stats(als[key]))} |")
    full = ["| m | " + " | ".join(f"{s}, r = {r}" for s, r in curves) + " |",
            "|---:|" + "---:|" * len(curves)]
    for j, m in enumerate(ms):
        full.append(f"| {m} | " + " | ".join(_fmt(stats[k][j]) for k in curves) + " |")
    with figure(out_dir / "factorization.png", figsize=(11, 4.4), ncols=2, sharey=True) as axes:
        for ax, (label, _) in zip(axes, SETTINGS, strict=True):
            for c, r in enumerate(budget["ranks"]):
                s = stats[(label, r)]
                mean = [max(x["mean"], 1e-16) for x in s]
                lo = [max(x["min"], 1e-16) for x in s]
                hi = [max(x["max"], 1e-16) for x in s]
                ax.plot(ms, mean, "o-", color=f"C{c}", ms=3, label=f"rank {r}")
                ax.fill_between(ms, lo, hi, color=f"C{c}", alpha=0.2)
                if 4 * r + 1 <= ms[-1]:
                    ax.axvline(4 * r + 1, color=f"C{c}", ls="--", lw=0.8)
                ax.axvline(counting_bound(n, r), color=f"C{c}", ls=":", lw=0.8)
            ax.axvline(2 * n - 1, color="k", ls="--", lw=0.8, label="2n − 1 (Theorem 1)")
            ax.axhline(ZERO, color="gray", ls=":", lw=0.8, label=f"'zero': {ZERO:g}")
            ax.set_yscale("log")
            ax.set_xlabel("factors m (circulant, diagonal, …, circulant)")
            ax.set_title(f"{label} matrices, {label} factors, n = {n}")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("relative error ||A − B₁⋯B_m||_F / ||A||_F")
        axes[0].legend(fontsize=7)
    return (
        f"Random n × n matrices A = U Vᵀ of rank r (U, V Gaussian; complex Gaussian for the "
        f"complex rows), n = {n}, {trials} matrices per rank and setting; each fitted by "
        f"products of m = 1, 3, …, {ms[-1]} alternating circulant and diagonal factors "
        f"(circulant first and last, as in the theorems; a DC layer diag(d)·circ(c) is two "
        f"factors). Fit: Levenberg–Marquardt on all factors at once (exact Jacobian, at most "
        f"{iters} steps, stopping at a relative error of {TOL:g}), best of a warm start from "
        f"the m − 2 fit and a random start. *ALS*: alternating least squares (each factor "
        f"solved exactly in turn, the way `from_dense` fits DC products; "
        f"{budget['sweeps']} sweeps from a random start) at the theorems' bound "
        f"min(4r + 1, 2n − 1), for comparison. Errors: mean ± std over the matrices of "
        f"||A − B₁⋯B_m||_F / ||A||_F; '≤ 1e-08 (all)': every fit reached zero to "
        f"double-precision accuracy.\n\n"
        f"**Counting bound**: the fewest m with m·n − (m − 1) ≥ r·(2n − r) (dimension of the "
        f"products vs of the rank-r matrices): below it no product can approximate a generic "
        f"rank-r matrix, whatever the optimiser. The theorems are existence results for complex "
        f"factors (approximation to any ε > 0); a fit that stays above zero at or beyond a "
        f"bound shows the optimiser's limit at this budget, not a failure of the theorem, and "
        f"nothing is claimed for real factors.\n\n"
        + "\n".join(summary) + "\n\n![error vs factors](factorization.png)\n\n"
        "Dashed coloured lines: 4r + 1 (Theorem 2) per rank; dotted: the counting bound; "
        "black dashed: 2n − 1 (Theorem 1). Shading: min–max over the matrices (errors below "
        "1e-16 drawn at 1e-16).\n\n### Relative error per number of factors\n\n"
        + "\n".join(full))


PAPER = {
    "source": "Araujo, Négrevergne, Chevaleyre, Atif, 'Understanding and training deep "
              "diagonal circulant neural networks', ECAI 2020 (seed 001), §3: Theorem 1 "
              "(a reformulation of Huhtanen & Perämäki 2015) and Theorem 2",
    "dataset": "any matrix: A ∈ C^{n×n} (Theorem 1); of rank at most k, k dividing n "
               "(Theorem 2)",
    "metric": "number of alternating circulant/diagonal factors that suffice to approximate A "
              "to any ε > 0 (operator norm)",
    "budget": "none (theorems)",
    "rows": [
        {"label": "Theorem 1 (Huhtanen–Perämäki): any complex n×n matrix",
         "key": None, "params": None, "value": None, "status": "theorem",
         "source": "§3, Theorem 1", "claim": "2n − 1 factors B_1…B_{2n−1}, B_i circulant "
                                             "for odd i and diagonal otherwise"},
        {"label": "Theorem 2: complex n×n matrix of rank ≤ k (n divisible by k)",
         "key": None, "params": None, "value": None, "status": "theorem",
         "source": "§3, Theorem 2", "claim": "4k + 1 factors B_1…B_{4k+1}"},
    ],
    "text_claims": [
        {"source": "§3, after Theorem 2", "claim": "A direct consequence of Theorem 2, is "
         "that if the number of diagonal-circulant factors is set to a value K, we can "
         "represent all linear transform A whose rank is (K−1)/4."},
    ],
}

register_experiment(Experiment(
    name="factorization", title="Theorems 1–2: error of products of circulant and diagonal "
                                "factors vs their number",
    description="Relative Frobenius error of the best product of m alternating circulant and "
                "diagonal factors found for random matrices of rank r, real and complex, "
                "against the counting bound, Theorem 2's 4r + 1 and Theorem 1's 2n − 1.",
    custom=_factorization, paper=PAPER,
    budget_note=f"full: n = {FULL['n']}, ranks {', '.join(map(str, FULL['ranks']))}, "
                f"{FULL['trials']} matrices per rank and setting (real, complex), m = 1, 3, …, "
                f"2n + 1, at most {FULL['iters']} Levenberg–Marquardt steps per fit, ALS "
                f"{FULL['sweeps']} sweeps; about 5 min of one core; quick: n = {QUICK['n']}, "
                f"ranks {', '.join(map(str, QUICK['ranks']))}, one matrix, {QUICK['iters']} "
                f"steps, {QUICK['sweeps']} sweeps"))
