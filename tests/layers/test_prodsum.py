"""ProdSum operators (functional.prodsum) and the kronecker / prodsum layers: fast paths against
the torch.kron references and independent numpy/scipy oracles, the special cases the framework
must contain (2-D convolutions, dilated convolutions, average pooling, KFC layers), the nearest
Kronecker sum, initialization statistics and fits."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch
from torch import nn

from compactnn import functional as F
from compactnn.layers import Kronecker, ProdSum, make_linear
from compactnn.layers.prodsum import kronecker_shapes, prodsum_layout

D = torch.float64
BATCHES = [(), (4,), (2, 3), (0,)]


def _np(t):
    return t.detach().cpu().numpy()


def _np_kron_sum(*factors):
    """Σ_r np.kron(F_1[r], …, F_d[r]) (factors (R, m, n), or (m, n) for one term)."""
    fs = [_np(f) if f.dim() == 3 else _np(f)[None] for f in factors]
    total = 0
    for r in range(fs[0].shape[0]):
        m = fs[0][r]
        for f in fs[1:]:
            m = np.kron(m, f[r])
        total = total + m
    return total


def _np_prodsum(factors):
    w = None
    for f in factors:
        s = _np_kron_sum(*f)
        w = s if w is None else s @ w
    return w


# --- kron_matmul ------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [[(4, 4), (4, 4)], [(3, 5), (2, 7)], [(5, 3), (7, 2)],
                                    [(1, 6), (6, 1)], [(7, 7)], [(2, 3), (4, 5), (3, 2)],
                                    [(3, 9), (10, 2)], [(2, 2), (3, 1), (1, 3), (2, 5)]])
@pytest.mark.parametrize("terms", [None, 1, 3])
@pytest.mark.parametrize("batch", BATCHES)
def test_kron_matmul_equals_torch_kron_and_numpy(shapes, terms, batch):
    torch.manual_seed(0)
    fs = [torch.randn(*(() if terms is None else (terms,)), m, n, dtype=D) for m, n in shapes]
    n_in = math.prod(n for _, n in shapes)
    x = torch.randn(*batch, n_in, dtype=D)
    y = F.kron_matmul(x, *fs)
    assert y.shape == (*batch, math.prod(m for m, _ in shapes))
    torch.testing.assert_close(y, x @ F.kron_dense(*fs).T)
    np.testing.assert_allclose(_np(y), _np(x) @ _np_kron_sum(*fs).T, atol=1e-10)


def test_row_major_vec_identity():
    # (A ⊗ B) vec(X) = vec(A X Bᵀ) with vec(X) = X.reshape(-1), written out with numpy
    rng = np.random.default_rng(1)
    a, b, x = rng.standard_normal((3, 4)), rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    np.testing.assert_allclose(np.kron(a, b) @ x.reshape(-1), (a @ x @ b.T).reshape(-1))
    y = F.kron_matmul(torch.from_numpy(x.reshape(-1)), torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(_np(y), (a @ x @ b.T).reshape(-1), atol=1e-12)


def test_both_mode_orders_are_taken_and_agree():
    from compactnn.functional import prodsum as P

    torch.manual_seed(0)
    # two modes: the first mode first for A: (5, 3), B: (7, 2), the second first mirrored
    for a, b in ((torch.randn(2, 5, 3, dtype=D), torch.randn(2, 7, 2, dtype=D)),
                 (torch.randn(2, 3, 5, dtype=D), torch.randn(2, 2, 7, dtype=D))):
        x = torch.randn(4, a.shape[2] * b.shape[2], dtype=D)
        torch.testing.assert_close(F.kron_matmul(x, a, b), x @ F.kron_dense(a, b).T)
        torch.testing.assert_close(P._apply_last_first(x, [a, b]), x @ F.kron_dense(a, b).T)
    # more modes: the reversed order runs when it is cheaper
    for fs in ([torch.randn(2, 10, 2, dtype=D), torch.randn(2, 1, 1, dtype=D),
                torch.randn(2, 3, 9, dtype=D)],
               [torch.randn(2, 3, 9, dtype=D), torch.randn(2, 1, 1, dtype=D),
                torch.randn(2, 10, 2, dtype=D)]):
        assert P._flops(fs) != P._flops(fs[::-1])
        x = torch.randn(5, 18, dtype=D)
        torch.testing.assert_close(F.kron_matmul(x, *fs), x @ F.kron_dense(*fs).T)


@pytest.mark.parametrize("shapes", [[(3, 2), (2, 4)], [(2, 9), (10, 2)], [(2, 2), (3, 2), (2, 3)]])
def test_kron_matmul_gradcheck(shapes):
    torch.manual_seed(0)
    fs = [torch.randn(2, m, n, dtype=D, requires_grad=True) for m, n in shapes]
    x = torch.randn(3, math.prod(n for _, n in shapes), dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *fs: F.kron_matmul(x, *fs), (x, *fs))


def test_kron_matmul_errors_are_one_line_value_errors():
    a, b = torch.randn(2, 3), torch.randn(4, 5)
    with pytest.raises(ValueError, match="take 15 features"):
        F.kron_matmul(torch.randn(2, 14), a, b)
    with pytest.raises(ValueError, match="all be matrices .* or all stacks"):
        F.kron_matmul(torch.randn(15), a[None], b)
    with pytest.raises(ValueError, match="same R"):
        F.kron_matmul(torch.randn(15), a.expand(2, 2, 3), b.expand(3, 4, 5))
    with pytest.raises(ValueError, match="at least one"):
        F.kron_matmul(torch.randn(3))
    with pytest.raises(ValueError, match="feature dimension"):
        F.kron_matmul(torch.tensor(1.0), torch.randn(1, 1))


# --- products of sums -------------------------------------------------------------------------
def _chain(dtype=D):
    g = torch.Generator().manual_seed(3)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    # 12 = 3·4 → 10 = 2·5 → 15 = 15 → 7 = 7: the mode split changes between sums
    return [(r(2, 2, 3), r(2, 5, 4)), (r(3, 3, 2), r(3, 5, 5)), (r(1, 7, 15),)]


@pytest.mark.parametrize("batch", BATCHES)
def test_prodsum_matmul_equals_dense_and_numpy(batch):
    fs = _chain()
    x = torch.randn(*batch, 12, dtype=D)
    y = F.prodsum_matmul(x, fs)
    assert y.shape == (*batch, 7)
    torch.testing.assert_close(y, x @ F.prodsum_dense(fs).T)
    np.testing.assert_allclose(_np(y), _np(x) @ _np_prodsum(fs).T, atol=1e-10)


def test_prodsum_matmul_pads_truncates_and_adds_bias():
    fs = _chain()
    w = F.prodsum_dense(fs)
    x, b = torch.randn(4, 9, dtype=D), torch.randn(5, dtype=D)
    y = F.prodsum_matmul(x, fs, zero_pad=True, out_features=5, bias=b)
    torch.testing.assert_close(y, x @ w[:5, :9].T + b)
    with pytest.raises(ValueError, match="zero_pad=True pads"):
        F.prodsum_matmul(x, fs)
    with pytest.raises(ValueError, match="takes 12 features"):
        F.prodsum_matmul(torch.randn(2, 13, dtype=D), fs, zero_pad=True)
    with pytest.raises(ValueError, match="out_features must be an int in"):
        F.prodsum_matmul(x, fs, zero_pad=True, out_features=8)
    with pytest.raises(ValueError, match="factor 1 takes 9 features but factor 0 gives 10"):
        F.prodsum_matmul(torch.randn(12), [fs[0], (torch.randn(3, 3),) * 2])
    with pytest.raises(ValueError, match="non-empty sequence"):
        F.prodsum_matmul(torch.randn(12), [])


def test_prodsum_matmul_gradcheck():
    fs = [tuple(t.clone().requires_grad_() for t in f) for f in _chain()]
    flat = [t for f in fs for t in f]
    x = torch.randn(3, 11, dtype=D, requires_grad=True)

    def op(x, *ts):
        it = iter(ts)
        chain = [tuple(next(it) for _ in f) for f in fs]
        return F.prodsum_matmul(x, chain, zero_pad=True, out_features=6)

    assert torch.autograd.gradcheck(op, (x, *flat))


# --- fixed factors ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 5, 8])
@pytest.mark.parametrize("offset", [-3, -1, 0, 2, 9])
def test_shift_matrix_cyclic_is_np_roll_and_zero_padded_is_a_slice(n, offset):
    x = np.random.default_rng(0).standard_normal(n)
    cyc = _np(F.shift_matrix(n, n, offset, cyclic=True, dtype=D))
    np.testing.assert_array_equal(cyc @ x, np.roll(x, -offset))  # (P x)_i = x[i + offset]
    zp = _np(F.shift_matrix(n, n, offset, dtype=D))
    ref = np.array([x[i + offset] if 0 <= i + offset < n else 0.0 for i in range(n)])
    np.testing.assert_array_equal(zp @ x, ref)
    strided = _np(F.shift_matrix(3, 9, 1, stride=3, dtype=D))
    np.testing.assert_array_equal(strided @ np.arange(9.0), [1.0, 4.0, 7.0])


def test_pooling_permutation_and_dct_bands():
    x = torch.randn(2, 3, 11, dtype=D)
    for window, stride in [(2, None), (3, 2), (11, None)]:
        p = F.pooling_matrix(11, window, stride, dtype=D)
        torch.testing.assert_close(x @ p.T, nn.AvgPool1d(window, stride)(x))
    perm = [2, 0, 3, 1]
    v = torch.arange(4.0, dtype=D)
    torch.testing.assert_close(F.permutation_matrix(perm, dtype=D) @ v, v[perm])
    with pytest.raises(ValueError, match="permutation of 0"):
        F.permutation_matrix([0, 0, 1])
    for n, bands in [(8, 3), (7, 7), (5, 1)]:
        p = F.dct_bands(n, bands, dtype=D)
        torch.testing.assert_close(p.sum(0), torch.eye(n, dtype=D))
        torch.testing.assert_close(p @ p, p)  # orthogonal projectors
        # band j keeps exactly the DCT-II coefficients of its band (scipy's transform)
        y = np.random.default_rng(1).standard_normal(n)
        coef = scipy.fft.dct(_np(p[0]) @ y, norm="ortho")
        hi = n // bands
        np.testing.assert_allclose(coef[:hi], scipy.fft.dct(y, norm="ortho")[:hi], atol=1e-12)
        np.testing.assert_allclose(coef[hi:], 0, atol=1e-12)
    with pytest.raises(ValueError, match="at least 4"):
        F.dct_bands(3, 4)
    with pytest.raises(ValueError, match="exceeds the input size"):
        F.pooling_matrix(3, 4)


def test_dilated_basis_reaches_terms_to_the_depth_consecutive_offsets():
    # balanced base-J digits: K factors of J cyclic shifts by (j − J//2)·J^i reach J^K offsets
    for terms, depth, size in [(3, 3, 40), (2, 4, 40), (4, 2, 40)]:
        w = torch.eye(size, dtype=D)
        for level in range(depth):
            w = F.prodsum_basis("dilated", size, terms, level=level, dtype=D).sum(0) @ w
        assert int((w[size // 2] != 0).sum()) == terms ** depth
    assert F.prodsum_basis("identity", 4, 1).shape == (1, 4, 4)
    with pytest.raises(ValueError, match="unknown basis 'fft'"):
        F.prodsum_basis("fft", 4, 2)
    with pytest.raises(ValueError, match="one term"):
        F.prodsum_basis("identity", 4, 2)


def test_near_square_factors():
    assert [F.near_square_factors(n) for n in (1, 5, 7, 10, 13, 17, 784, 1000, 3072)] == [
        (1, 1), (2, 3), (2, 4), (2, 5), (2, 7), (3, 6), (28, 28), (25, 40), (48, 64)]
    for n in range(1, 400):
        a, b = F.near_square_factors(n)
        assert a <= b <= 4 * a and a * b >= n
        for size in range(n, a * b):  # no smaller size factors with aspect ≤ 4
            assert all(size % d or size // d > 4 * d for d in range(1, math.isqrt(size) + 1))
    with pytest.raises(ValueError, match="positive int"):
        F.near_square_factors(0)


# --- special cases: convolutions, pooling, KFC ------------------------------------------------
@pytest.mark.parametrize("conv_kw", [
    dict(in_channels=3, out_channels=4, kernel_size=3, padding=1),
    dict(in_channels=2, out_channels=5, kernel_size=(3, 2), padding=(2, 0)),
    dict(in_channels=3, out_channels=2, kernel_size=3, padding=1, stride=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="circular"),
    dict(in_channels=3, out_channels=4, kernel_size=3, padding=2, dilation=2),
    dict(in_channels=1, out_channels=3, kernel_size=(2, 3), padding=(1, 2), dilation=(2, 3)),
])
@pytest.mark.parametrize("hw", [(8, 8), (9, 7)])
def test_conv2d_is_a_sum_of_kronecker_terms(conv_kw, hw):
    torch.manual_seed(0)
    conv = nn.Conv2d(**conv_kw, dtype=D)
    x = torch.randn(5, conv_kw["in_channels"], *hw, dtype=D)
    kw = {k: conv_kw[k] for k in ("stride", "padding", "dilation", "padding_mode")
          if k in conv_kw}
    factors = F.conv2d_as_prodsum(conv.weight, *hw, **kw)
    ref = conv(x)
    bias = conv.bias.repeat_interleave(ref.shape[2] * ref.shape[3])  # b ⊗ 1
    y = F.prodsum_matmul(x.reshape(5, -1), factors, bias=bias)
    torch.testing.assert_close(y, ref.reshape(5, -1))
    # the terms Σ_pq K_pq ⊗ S_p ⊗ S_q formed explicitly
    np.testing.assert_allclose(_np(x.reshape(5, -1)) @ _np_kron_sum(*factors[0]).T + _np(bias),
                               _np(ref.reshape(5, -1)), atol=1e-10)


def test_conv2d_as_prodsum_rejects_what_conv2d_rejects():
    w = torch.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match="does not fit"):
        F.conv2d_as_prodsum(w, 3, 8)
    with pytest.raises(ValueError, match="padding_mode"):
        F.conv2d_as_prodsum(w, 8, 8, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"\(C_out, C_in, kh, kw\)"):
        F.conv2d_as_prodsum(torch.randn(2, 3, 5), 8, 8)


def test_a_linear_cnn_is_a_product_of_sums():
    # conv → 2×2 average pool → dilated conv: three Kronecker sums, applied in order
    torch.manual_seed(0)
    c1 = nn.Conv2d(2, 4, 3, padding=1, bias=False, dtype=D)
    c2 = nn.Conv2d(4, 3, 3, padding=2, dilation=2, bias=False, dtype=D)
    net = nn.Sequential(c1, nn.AvgPool2d(2), c2)
    factors = (F.conv2d_as_prodsum(c1.weight, 10, 10, padding=1)
               + F.avg_pool2d_as_prodsum(4, 10, 10, 2, dtype=D)
               + F.conv2d_as_prodsum(c2.weight, 5, 5, padding=2, dilation=2))
    x = torch.randn(3, 2, 10, 10, dtype=D)
    torch.testing.assert_close(F.prodsum_matmul(x.reshape(3, -1), factors),
                               net(x).reshape(3, -1))
    torch.testing.assert_close(F.prodsum_dense(factors) @ x.reshape(3, -1).T,
                               net(x).reshape(3, -1).T)


def test_prodsum_layer_with_shift_basis_is_a_circular_conv1d_stack():
    # Σ_j T_j ⊗ S_j with (S_j x)_i = x[i + j − J//2] (cyclic) is nn.Conv1d with kernel
    # T_0 … T_{J−1} and circular padding J//2; the layer reads x as (channels, positions)
    layer = ProdSum(48, 40, depth=3, terms=3, basis="shift", block=8, width=5, bias=False,
                    dtype=D)
    convs = []
    for t in (layer.t0, layer.t1, layer.t2):
        conv = nn.Conv1d(t.shape[2], t.shape[1], 3, padding=1, padding_mode="circular",
                         bias=False, dtype=D)
        with torch.no_grad():
            conv.weight.copy_(t.permute(1, 2, 0))
        convs.append(conv)
    x = torch.randn(4, 48, dtype=D)
    ref = nn.Sequential(*convs)(x.reshape(4, 6, 8)).reshape(4, -1)
    torch.testing.assert_close(layer(x), ref)


@pytest.mark.parametrize("shape", [(12, 12), (7, 7), (10, 6), (6, 10), (13, 4), (784, 10)])
@pytest.mark.parametrize("rank", [1, 3])
def test_kfc_layer_equals_the_explicit_kronecker_sum(shape, rank):
    layer = Kronecker(*shape, rank=rank, dtype=D)
    w = _np_kron_sum(layer.a, layer.b)[:shape[1], :shape[0]]  # top-left block (padding)
    np.testing.assert_allclose(_np(layer.to_dense()), w, atol=1e-12)
    for batch in [(), (3,), (2, 2)]:
        x = torch.randn(*batch, shape[0], dtype=D)
        np.testing.assert_allclose(_np(layer(x)), _np(x) @ w.T + _np(layer.bias), atol=1e-10)


# --- the kronecker layer ----------------------------------------------------------------------
def test_kronecker_shapes_and_counts():
    assert kronecker_shapes(784, 784) == ((28, 28), (28, 28))
    assert kronecker_shapes(784, 10) == ((2, 28), (5, 28))
    assert kronecker_shapes(7, 7) == ((2, 4), (4, 2))  # padded to 8 × 8
    assert Kronecker.num_params(784, 784) == 2 * (784 + 784) + 784
    assert Kronecker.num_params(784, 10, rank=3, bias=False) == 3 * (56 + 140)
    assert Kronecker.num_params(30, 20, shapes=((4, 5), (5, 6))) == 2 * (20 + 30) + 20
    layer = Kronecker(7, 7)
    assert layer.padded and "padded to 8x8" in repr(layer) and not Kronecker(8, 8).padded
    with pytest.raises(ValueError, match="smaller than 20x30"):
        Kronecker(30, 20, shapes=((4, 5), (4, 5)))
    with pytest.raises(ValueError, match=r"\(\(m1, n1\), \(m2, n2\)\)"):
        Kronecker(30, 20, shapes=(4, 5))
    with pytest.raises(ValueError, match="rank must be a positive int"):
        Kronecker(30, 20, rank=0)


def _np_rearrange(w, m1, n1, m2, n2):
    """Van Loan–Pitsianis by loops: row (i1, j1) is the block W[i1 m2:(i1+1) m2, j1 n2:…]."""
    return np.stack([w[i1 * m2:(i1 + 1) * m2, j1 * n2:(j1 + 1) * n2].reshape(-1)
                     for i1 in range(m1) for j1 in range(n1)])


@pytest.mark.parametrize("shapes", [((3, 4), (5, 2)), ((2, 2), (2, 2)), ((4, 1), (1, 6))])
def test_from_dense_recovers_kronecker_sums_and_is_the_optimal_rank_r_fit(shapes):
    (m1, n1), (m2, n2) = shapes
    torch.manual_seed(0)
    a, b = torch.randn(3, m1, n1, dtype=D), torch.randn(3, m2, n2, dtype=D)
    w = F.kron_dense(a, b)
    fit = Kronecker.from_dense(w, rank=3, shapes=shapes, bias=False)
    torch.testing.assert_close(fit.to_dense(), w)
    r = F.kron_rearrange(w, m1, n1, m2, n2)
    np.testing.assert_allclose(_np(r), _np_rearrange(_np(w), m1, n1, m2, n2))
    torch.testing.assert_close(F.kron_unrearrange(r, m1, n1, m2, n2), w)
    g = torch.randn(m1 * m2, n1 * n2, dtype=D)  # a general matrix: the SVD tail is the error
    s = np.linalg.svd(_np_rearrange(_np(g), m1, n1, m2, n2), compute_uv=False)
    for rank in (1, 2):
        fit = Kronecker.from_dense(g, rank=rank, shapes=shapes, bias=False)
        err = float((fit.to_dense() - g).norm().detach())
        assert err == pytest.approx(math.sqrt((s[rank:] ** 2).sum()), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shape", [(7, 7), (5, 13), (13, 5), (11, 17), (23, 3)])
@pytest.mark.parametrize("rank", [1, 2, 4])
def test_from_dense_recovers_padded_kronecker_matrices(shape, rank):
    torch.manual_seed(rank)
    src = Kronecker(*shape, rank=rank, dtype=D)
    assert src.padded
    lin = nn.Linear(*shape, dtype=D)
    with torch.no_grad():
        lin.weight.copy_(src.to_dense())
    fit = Kronecker.from_dense(lin, rank=rank)
    torch.testing.assert_close(fit.to_dense(), src.to_dense(), atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(fit.bias, lin.bias)


def test_kronecker_identity_init_and_half_precision_fit():
    layer = Kronecker(16, 16, init="identity")
    assert layer.shapes == ((4, 4), (4, 4))
    torch.testing.assert_close(layer.to_dense(), torch.eye(16), atol=0.1, rtol=0)
    fit = Kronecker.from_dense(torch.randn(10, 14).to(torch.bfloat16), rank=2)
    assert fit.a.dtype == torch.bfloat16 and torch.isfinite(fit.to_dense()).all()


# --- the prodsum layer ------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, dict(basis="shift", depth=3), dict(basis="dct", terms=2),
                                dict(basis="identity", terms=1), dict(depth=1),
                                dict(block=5, width=3, terms=4)])
@pytest.mark.parametrize("shape", [(16, 16), (9, 9), (12, 5), (5, 12), (13, 7)])
def test_prodsum_layer_equals_numpy_product_of_kron_sums(kw, shape):
    torch.manual_seed(0)
    layer = ProdSum(*shape, dtype=D, **kw)
    with torch.no_grad():
        layer.bias.normal_()
    w = _np_prodsum(layer.factors())[:shape[1], :shape[0]]
    np.testing.assert_allclose(_np(layer.to_dense()), w, atol=1e-12)
    for batch in [(), (3,), (2, 2), (0,)]:
        x = torch.randn(*batch, shape[0], dtype=D)
        np.testing.assert_allclose(_np(layer(x)), _np(x) @ w.T + _np(layer.bias), atol=1e-10)


def test_prodsum_layout_counts_and_buffers():
    assert prodsum_layout(784, 784) == (28, [28, 28, 28])
    assert prodsum_layout(784, 10, depth=3) == (28, [28, 28, 28, 1])
    assert prodsum_layout(10, 784, width=8) == (28, [1, 8, 28])
    assert ProdSum.num_params(784, 784) == 3 * 2 * 28 * 28 + 784
    assert ProdSum.num_params(784, 10, depth=3, terms=2, bias=False) == 2 * (2 * 784 + 28)
    layer = ProdSum(100, 60, depth=3, terms=4, block=10, width=7)
    trainable = {n: p.numel() for n, p in layer.named_parameters()}
    assert trainable == {"t0": 4 * 7 * 10, "t1": 4 * 7 * 7, "t2": 4 * 6 * 7, "bias": 60}
    assert ProdSum.num_params(100, 60, depth=3, terms=4, block=10, width=7) == sum(
        trainable.values())
    assert dict(layer.named_buffers())["p"].shape == (3, 4, 10, 10)  # fixed: not counted
    assert "p" in layer.state_dict() and "basis='dilated'" in repr(layer)
    # the parameter count moves with every structure keyword
    counts = {ProdSum.num_params(784, 784, **kw) for kw in (
        {}, dict(terms=4), dict(depth=3), dict(width=20), dict(block=16))}
    assert len(counts) == 5


@pytest.mark.parametrize("kw, match", [
    (dict(basis="fft"), "unknown basis 'fft'"), (dict(basis="identity"), "one term"),
    (dict(basis="dct", terms=9, block=8), "at most 8 bands"), (dict(depth=0), "depth"),
    (dict(terms=1.5), "terms"), (dict(block=0), "block"), (dict(width=True), "width"),
    (dict(init="he"), "init")])
def test_prodsum_bad_arguments_are_value_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        ProdSum(64, 64, **kw)


@pytest.mark.parametrize("kw", [dict(depth=1), dict(depth=2), dict(depth=4),
                                dict(basis="shift", depth=3), dict(basis="dct", terms=4),
                                dict(basis="identity", terms=1, depth=3)])
@pytest.mark.parametrize("shape", [(144, 144), (120, 70)])
def test_prodsum_init_keeps_the_output_variance_at_the_gain_at_any_depth(kw, shape):
    # for inputs of unit variance E‖W x‖²/out = ‖W‖_F²/out, which the init makes the scheme's
    # gain in expectation: 2 (paper), 1 (lecun), 1/3 (uniform), whatever the depth; checked to
    # 4 standard errors of the mean over 48 layers (0.05–0.3 here; a gain applied per factor
    # would be off by 2^depth)
    torch.manual_seed(0)
    for init, gain in (("paper", 2.0), ("lecun", 1.0), ("uniform", 1 / 3)):
        ratios = np.array([ProdSum(*shape, init=init, bias=False, **kw).to_dense().square().sum()
                           .item() / shape[1] / gain for _ in range(48)])
        se = ratios.std() / math.sqrt(len(ratios))
        assert abs(ratios.mean() - 1) < max(0.05, 4 * se) and se < 0.08, (init, ratios)
    layer = ProdSum(*shape, bias=False, **kw)  # and the forward pass agrees on data
    x = torch.randn(4096, shape[0])
    with torch.no_grad():
        y = layer(x)
    expected = layer.to_dense().square().sum().item() / shape[1]
    assert y.square().mean().item() == pytest.approx(expected, rel=0.1)


def test_kronecker_init_variance_and_prodsum_identity_init():
    torch.manual_seed(0)
    for init, gain in (("paper", 2.0), ("lecun", 1.0), ("uniform", 1 / 3)):
        w = torch.stack([Kronecker(400, 300, init=init, rank=3).to_dense() for _ in range(8)])
        assert w.var().item() * 400 / gain == pytest.approx(1.0, abs=0.1)
    for kw in ({}, dict(basis="dct", terms=3), dict(basis="shift", depth=3)):
        layer = ProdSum(50, 30, init="identity", **kw)
        torch.testing.assert_close(layer.to_dense(), torch.eye(30, 50), atol=0.1, rtol=0)


def test_prodsum_from_dense():
    torch.manual_seed(0)
    # one factor: linear in T, the least-squares projection is exact on the structure
    src = ProdSum(20, 14, depth=1, terms=3, dtype=D)
    torch.testing.assert_close(ProdSum.from_dense(src.to_dense(), depth=1).to_dense(),
                               src.to_dense())
    # products: a numerical fit (L-BFGS from that start) that recovers most matrices of the
    # structure — a local method: 58 of 60 in a wider trial — and improves on its start
    for shape in [(16, 16), (13, 5), (30, 20)]:
        recovered = 0
        for seed in range(6):
            torch.manual_seed(seed)
            src = ProdSum(*shape, dtype=D)
            fit = ProdSum.from_dense(src.to_dense().detach(), bias=False)
            with torch.no_grad():
                recovered += float((fit.to_dense() - src.to_dense()).norm()
                                   / src.to_dense().norm()) < 1e-5
        assert recovered >= 5, shape
    g = torch.randn(24, 24, dtype=D)

    def err(layer):
        return float((layer.to_dense().detach() - g).norm() / g.norm())

    start, fit = ProdSum.from_dense(g, iters=0), ProdSum.from_dense(g, iters=50)
    assert err(fit) < err(start) < 1.0


def test_prodsum_trains_from_scratch_to_a_teacher_of_its_family():
    torch.manual_seed(0)
    teacher, student = ProdSum(64, 48), ProdSum(64, 48)
    x = torch.randn(256, 64)
    with torch.no_grad():
        y = teacher(x)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)

    def loss():
        return (student(x) - y).square().mean()

    first = loss().item()
    for _ in range(200):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < first / 100


def test_registered_and_exported():
    import compactnn

    assert type(make_linear("kronecker", 12, 8)) is Kronecker is compactnn.Kronecker
    assert type(make_linear("prodsum", 12, 8)) is ProdSum is compactnn.ProdSum
    assert {"kron_matmul", "prodsum_matmul", "conv2d_as_prodsum"} <= set(F.__all__)


# --- the benchmark's quick mode ---------------------------------------------------------------
def test_bench_prodsum_quick_writes_only_where_told(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_prodsum",
                                                  root / "benchmarks" / "bench_prodsum.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.chdir(tmp_path)
    bench.main(["--quick"])  # no --out: a temporary folder, never results/
    assert not (tmp_path / "results").exists()
    bench.main(["--quick", "--out", str(tmp_path / "q")])
    rows = json.loads((tmp_path / "q" / "prodsum.json").read_text())["rows"]
    assert {"kronecker", "prodsum", "nn.Linear", "prodsum-conv", "nn.Conv2d"} <= {
        r["module"] for r in rows}
    assert all(r["fwdbwd_ms"] > 0 for r in rows)
    assert "| kronecker |" in (tmp_path / "q" / "prodsum.md").read_text()
