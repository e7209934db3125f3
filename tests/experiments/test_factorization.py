"""The factorization experiment's numerics: products of alternating circulant and diagonal
factors (dense reference vs scipy, FFT path, Jacobian), the Levenberg–Marquardt fit, the
counting bound, and a tiny run of the experiment."""

import json
import math

import numpy as np
import pytest
import scipy.linalg
import torch

import compactnn.experiments.factorization as fz
from compactnn.experiments.factorization import (
    counting_bound,
    dc_product_apply,
    dc_product_dense,
    dc_product_jacobian,
    fit_dc_product,
    fit_dc_product_als,
    random_factors,
    random_rank_matrix,
)
from compactnn.functional import project_circulant


def _scipy_product(factors):
    out = None
    for i, f in enumerate(factors):
        v = f.numpy()
        b = scipy.linalg.circulant(v) if i % 2 == 0 else np.diag(v)
        out = b if out is None else out @ b
    return torch.from_numpy(out)


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("n, m", [(1, 1), (5, 1), (5, 2), (6, 3), (7, 4), (8, 5)])
def test_dense_product_matches_scipy_and_the_fft_path(n, m, cplx):
    g = torch.Generator().manual_seed(n * 10 + m)
    f = random_factors(m, n, complex_factors=cplx, generator=g)
    p = dc_product_dense(f)
    torch.testing.assert_close(p, _scipy_product(f))
    assert p.is_complex() == cplx
    for shape in [(n,), (4, n), (2, 3, n)]:
        x = torch.randn(*shape, dtype=torch.float64, generator=g)
        torch.testing.assert_close(dc_product_apply(x, f), (x.to(p.dtype) @ p.T))


@pytest.mark.parametrize("cplx", [False, True])
def test_jacobian_is_exact(cplx):
    """The product is linear in each factor, so a unit step of one entry changes it by
    exactly that entry's Jacobian column: an oracle with no finite-difference error."""
    g = torch.Generator().manual_seed(1)
    n, m = 5, 4
    f = random_factors(m, n, complex_factors=cplx, generator=g)
    jac, p = dc_product_jacobian(f)
    assert jac.shape == (n * n, m * n) and jac.is_complex() == cplx
    torch.testing.assert_close(p, dc_product_dense(f))
    for i in range(m):
        for k in range(n):
            step = [x.clone() for x in f]
            step[i][k] += 1.0
            col = (dc_product_dense(step) - p).reshape(-1)
            torch.testing.assert_close(jac[:, i * n + k], col)


@pytest.mark.parametrize("cplx, start", [(True, "random"), (False, "near"), (True, "near")])
def test_fit_recovers_a_product_of_as_many_factors(cplx, start):
    """From a random start with complex factors; from near the truth (local convergence of
    the steps) with real ones, whose fits can stop in local minima from a random start."""
    g = torch.Generator().manual_seed(2)
    n, m = 6, 5
    truth = random_factors(m, n, complex_factors=cplx, generator=g)
    a = dc_product_dense(truth)
    init = None if start == "random" else [
        f + 0.05 * torch.randn(n, generator=g, dtype=torch.float64) for f in truth]
    factors, hist = fit_dc_product(a, m, init=init, iters=300, generator=g)
    assert hist[0] > 1e-3 and len(hist) > 2
    assert hist[-1] <= 1e-8
    assert all(b <= a_ + 1e-15 for a_, b in zip(hist, hist[1:], strict=False))  # monotone
    got = dc_product_dense(factors)
    assert torch.linalg.norm(a - got) / torch.linalg.norm(a) == pytest.approx(hist[-1], abs=1e-12)


@pytest.mark.parametrize("cplx", [False, True])
def test_one_factor_fit_is_the_nearest_circulant(cplx):
    """m = 1: the best circulant is the diagonal-average projection (closed form)."""
    g = torch.Generator().manual_seed(3)
    a = random_rank_matrix(7, 7, complex_entries=cplx, generator=g)
    _, hist = fit_dc_product(a, 1, generator=g)
    if cplx:
        c = torch.complex(project_circulant(a.real, 7), project_circulant(a.imag, 7))
    else:
        c = project_circulant(a, 7)
    best = torch.linalg.norm(a - dc_product_dense([c])) / torch.linalg.norm(a)
    assert hist[-1] == pytest.approx(best.item(), rel=1e-9)


@pytest.mark.parametrize("cplx", [False, True])
def test_als_never_increases_the_error_and_matches_the_projection(cplx):
    g = torch.Generator().manual_seed(5)
    a = random_rank_matrix(6, 6, complex_entries=cplx, generator=g)
    _, hist = fit_dc_product_als(a, 5, sweeps=40, generator=g)
    assert len(hist) == 41 and hist[-1] < hist[0]
    assert all(b <= a_ * (1 + 1e-9) for a_, b in zip(hist, hist[1:], strict=False))
    _, one = fit_dc_product_als(a, 1, sweeps=2, generator=g)
    _, lm = fit_dc_product(a, 1, generator=g)
    assert one[-1] == pytest.approx(lm[-1], rel=1e-9)  # both the nearest circulant


@pytest.mark.parametrize("cplx", [False, True])
def test_als_recovers_a_product_from_near_the_truth(cplx):
    g = torch.Generator().manual_seed(6)
    truth = random_factors(3, 5, complex_factors=cplx, generator=g)
    a = dc_product_dense(truth)
    init = [f + 0.01 * torch.randn(5, generator=g, dtype=torch.float64) for f in truth]
    factors, hist = fit_dc_product_als(a, 3, init=init, sweeps=2000)
    assert hist[0] > 1e-4 and hist[-1] <= 1e-8
    got = dc_product_dense(factors)
    assert (torch.linalg.norm(a - got) / torch.linalg.norm(a)).item() <= 1e-8


def test_rank_one_takes_three_factors():
    """circ(u)·e_k e_kᵀ·circ(v) is any rank-one matrix: C·D·C with a one-spike diagonal."""
    g = torch.Generator().manual_seed(4)
    a = random_rank_matrix(8, 1, complex_entries=False, generator=g)
    _, hist = fit_dc_product(a, 3, iters=400, generator=g)
    assert hist[-1] <= 1e-8


def test_counting_bound():
    assert [counting_bound(16, r) for r in (1, 2, 4, 16)] == [2, 4, 8, 17]
    assert counting_bound(8, 8) == 9 and counting_bound(1, 1) == 1
    for n in range(2, 20):
        for r in range(1, n + 1):
            m = counting_bound(n, r)
            assert m * n - (m - 1) >= r * (2 * n - r) > (m - 1) * n - (m - 2)


def test_bad_input_is_a_one_line_error():
    a = torch.randn(4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="square matrix"):
        fit_dc_product(torch.randn(3, 4), 3)
    with pytest.raises(ValueError, match="int >= 1"):
        fit_dc_product(a, 0)
    with pytest.raises(ValueError, match="complex factors"):
        fit_dc_product(a.to(torch.complex128), 3, complex_factors=False)
    with pytest.raises(ValueError, match="a is zero"):
        fit_dc_product(torch.zeros(4, 4), 3)
    with pytest.raises(ValueError, match="init has 2 factors"):
        fit_dc_product(a, 3, init=random_factors(2, 4, complex_factors=False))
    with pytest.raises(ValueError, match="a is zero"):
        fit_dc_product_als(torch.zeros(4, 4), 3)
    with pytest.raises(ValueError, match="factors have length 3"):
        fit_dc_product_als(a, 1, init=[torch.ones(3)])
    with pytest.raises(ValueError, match="length n = 4"):
        dc_product_dense([torch.ones(4), torch.ones(3)])
    with pytest.raises(ValueError, match="rank must be"):
        random_rank_matrix(4, 5, complex_entries=False)


def test_tiny_run_writes_monotone_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(fz, "QUICK", {"n": 4, "ranks": (1, 4), "trials": 2, "iters": 60,
                                      "sweeps": 20})
    md = fz._factorization(quick=True, out_dir=tmp_path, log=lambda *_: None)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["ms"] == [1, 3, 5, 7, 9] and (tmp_path / "factorization.png").is_file()
    for key, curves in res["curves"].items():
        assert len(curves) == 2, key
        for c in curves:  # warm starts: more factors never fit worse
            assert all(b <= a + 1e-12 for a, b in zip(c, c[1:], strict=False)), (key, c)
            assert c[0] > 0.1 and math.isfinite(c[-1])
    assert "| real | 4 | 5 | 17 | 7 |" in md and "counting bound" in md
    assert all(len(v) == 2 for v in res["als_at_bound"].values())
