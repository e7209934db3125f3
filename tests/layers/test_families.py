"""Per-family oracles: scipy toeplitz / dct, explicit Krylov products, explicit hash tables."""

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import torch

from compactnn import functional as F
from compactnn.layers import (
    ACDC,
    AFDF,
    DiagonalToeplitz,
    HashedLinear,
    LDRSubdiagonal,
    LDRTridiagonal,
    LowRank,
    Toeplitz,
    ToeplitzLike,
)
from compactnn.models import StructuredMLP

D = torch.float64


# --- Toeplitz -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7), (1, 4), (64, 100)])
def test_toeplitz_matches_scipy(shape):
    n_in, out = shape
    layer = Toeplitz(n_in, out, dtype=D)
    t = layer.t.detach().numpy()
    ref = scipy.linalg.toeplitz(t[n_in - 1:], t[n_in - 1::-1])
    np.testing.assert_allclose(layer.to_dense().detach().numpy(), ref)
    x = torch.randn(3, n_in, dtype=D)
    np.testing.assert_allclose(layer(x).detach().numpy(),
                               x.numpy() @ ref.T + layer.bias.detach().numpy(), atol=1e-10)
    dt = DiagonalToeplitz(n_in, out, dtype=D)
    t, d = dt.t.detach().numpy(), dt.d.detach().numpy()
    ref = d[:, None] * scipy.linalg.toeplitz(t[n_in - 1:], t[n_in - 1::-1])
    np.testing.assert_allclose(dt.to_dense().detach().numpy(), ref)


def test_toeplitz_counts_and_fft_sizes():
    assert Toeplitz.num_params(3072, 3072, bias=False) == 2 * 3072 - 1
    assert DiagonalToeplitz.num_params(3072, 3072) == 2 * 3072 - 1 + 2 * 3072
    assert [F.fast_fft_size(n) for n in (1, 7, 11, 97, 6143)] == [1, 8, 12, 100, 6144]
    with pytest.raises(ValueError, match="embedding size"):
        F.toeplitz_embedding(torch.randn(9), 5, 5, size=8)
    with pytest.raises(ValueError, match="needs a vector of 9"):
        F.toeplitz_dense(torch.randn(8), 5, 5)
    assert [F.toeplitz_fft_size(i, o) for i, o in ((5, 5), (7, 3), (64, 100))] == [9, 9, 180]
    assert "fft_size=180" in repr(Toeplitz(64, 100))


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7), (1, 4), (64, 100)])
def test_toeplitz_spectrum_is_the_rfft_of_the_embedding(shape):
    n_in, out = shape
    t = torch.randn(n_in + out - 1, dtype=D)
    size = F.toeplitz_fft_size(n_in, out)
    assert size >= n_in + out - 1 and F.circulant_fft_size(size, n_in, out) == size
    spec = F.toeplitz_spectrum(t, n_in, out)
    torch.testing.assert_close(spec, torch.fft.rfft(F.toeplitz_embedding(t, n_in, out), n=size))
    x = torch.randn(3, n_in, dtype=D)
    torch.testing.assert_close(F.toeplitz_matmul(x, t, out, c_spectrum=spec),
                               x @ F.toeplitz_dense(t, n_in, out).T)
    for low in (torch.float16, torch.bfloat16):
        s = F.toeplitz_spectrum(t.to(low), n_in, out)
        assert s.dtype == torch.complex64
        torch.testing.assert_close(s, torch.fft.rfft(
            F.toeplitz_embedding(t.to(low).float(), n_in, out), n=size))
        with torch.no_grad():  # a float32 spectrum with low-precision x and t
            y = F.toeplitz_matmul(x.to(low), t.to(low), out, c_spectrum=s)
        assert y.dtype == low
    with pytest.raises(ValueError, match="c_spectrum must have shape"):
        F.toeplitz_matmul(x, t, out, c_spectrum=spec[:-1])


# --- ACDC / AFDF ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 8, 15, 64])
def test_dct_matches_scipy_and_is_orthonormal(n):
    x = torch.randn(4, 2, n, dtype=D)
    np.testing.assert_allclose(F.dct(x).numpy(), scipy.fft.dct(x.numpy(), norm="ortho"),
                               atol=1e-12)
    np.testing.assert_allclose(F.idct(x).numpy(), scipy.fft.idct(x.numpy(), norm="ortho"),
                               atol=1e-12)
    c = F.dct_matrix(n)
    torch.testing.assert_close(c @ c.T, torch.eye(n, dtype=D))
    assert torch.autograd.gradcheck(F.dct, (torch.randn(2, n, dtype=D, requires_grad=True),))
    assert torch.autograd.gradcheck(F.idct, (torch.randn(2, n, dtype=D, requires_grad=True),))


def test_dct_keeps_nothing_for_backward_and_has_second_derivatives():
    saved = []
    x = torch.randn(3, 10, dtype=D, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        F.idct(F.dct(x))
    assert saved == []  # orthogonal: backward is the other transform, nothing is stored
    for f in (F.dct, F.idct):
        assert torch.autograd.gradgradcheck(f, (torch.randn(2, 7, dtype=D, requires_grad=True),))
    with pytest.raises(ValueError, match="floating-point"):
        F.dct(torch.arange(4))


def test_acdc_saves_only_real_activations():
    layer = ACDC(64, 64)
    x = torch.randn(8, 64, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(x)
    assert not any(t.is_complex() for t in saved)
    big = {t.untyped_storage().data_ptr() for t in saved if t.numel() >= 8 * 64}
    assert len(big - {x.untyped_storage().data_ptr()}) <= 1  # the input of the d-multiply


@pytest.mark.parametrize("shape", [(8, 8), (6, 10), (10, 6)])
def test_acdc_matches_explicit_product(shape):
    n_in, out = shape
    n = max(shape)
    layer = ACDC(n_in, out, dtype=D, init="paper")
    with torch.no_grad():
        layer.a_bias.normal_()
        layer.bias.normal_()
    a, ab, d, db = (p.detach().numpy() for p in (layer.a, layer.a_bias, layer.d, layer.bias))
    c = scipy.fft.dct(np.eye(n), norm="ortho", axis=0)  # orthonormal DCT-II matrix
    x = np.random.default_rng(0).standard_normal((3, n_in))
    h = np.zeros((3, n))
    h[:, :n_in] = a * x
    ref = ((h + ab) @ (c.T @ np.diag(d) @ c).T)[:, :out] + db
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), ref, atol=1e-10)


def test_acdc_square_has_4n_parameters_and_near_identity_init():
    layer = ACDC(64, 64)
    assert ACDC.num_params(64, 64) == 4 * 64 == sum(p.numel() for p in layer.parameters())
    torch.testing.assert_close(layer.to_dense(), torch.eye(64), atol=0.1, rtol=0)
    assert AFDF.num_params(64, 64) == 4 * 64


def test_acdc_permutation_is_fixed_and_per_layer():
    layer = ACDC(16, 16, permute=True, perm_seed=1, dtype=D)
    assert "perm" in dict(layer.named_buffers())
    assert sorted(layer.perm.tolist()) == list(range(16))
    x = torch.randn(5, 16, dtype=D)
    torch.testing.assert_close(layer(x), x @ layer.to_dense().T + layer.dense_bias())
    model = StructuredMLP(16, 4, layer="acdc", depth=3, layer_kwargs={"permute": True})
    perms = [m.perm for m in model.net if isinstance(m, ACDC) and m.perm is not None]
    assert len(perms) == 4 and not torch.equal(perms[0], perms[1])


@pytest.mark.parametrize("n", [7, 8])
def test_afdf_is_inverse_dft_diag_dft_and_a_circulant(n):
    layer = AFDF(n, n, dtype=D, init="paper", bias=False)
    f_real, f_imag = layer.f_real.detach().numpy(), layer.f_imag.detach().numpy()
    spec = np.zeros(n, dtype=complex)
    spec[: n // 2 + 1] = f_real
    spec[1: (n - 1) // 2 + 1] += 1j * f_imag
    for k in range(1, n // 2 + (n % 2)):  # Hermitian symmetry
        spec[n - k] = np.conj(spec[k])
    fm = np.fft.fft(np.eye(n), axis=0)
    core = np.linalg.inv(fm) @ np.diag(spec) @ fm
    assert np.abs(core.imag).max() < 1e-12
    ref = core.real @ np.diag(layer.a.detach().numpy())
    np.testing.assert_allclose(layer.to_dense().detach().numpy(), ref, atol=1e-12)
    c = layer.circulant_vector().detach().numpy()
    np.testing.assert_allclose(core.real, scipy.linalg.circulant(c), atol=1e-12)


# --- LDR --------------------------------------------------------------------------------------
def _z(n, f):
    a = np.zeros((n, n))
    a[1:, :-1] = np.eye(n - 1)
    a[0, -1] = f
    return a


def _krylov(a, v):
    cols = [v]
    for _ in range(len(v) - 1):
        cols.append(a @ cols[-1])
    return np.stack(cols, 1)


def _explicit_ldr(a, b, g, h):
    return sum(_krylov(a, gi) @ _krylov(b, hi).T for gi, hi in zip(g, h, strict=True))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_toeplitz_like_explicit_krylov_and_displacement_rank(rank):
    n = 9
    layer = ToeplitzLike(n, n, rank=rank, dtype=D)
    g, h = layer.g.detach().numpy(), layer.h.detach().numpy()
    m = _explicit_ldr(_z(n, 1), _z(n, -1), g, h)
    np.testing.assert_allclose(layer.to_dense().detach().numpy(), m, atol=1e-12)
    disp = _z(n, 1) @ m - m @ _z(n, -1)
    assert np.linalg.matrix_rank(disp, tol=1e-9) == rank
    # a Toeplitz matrix has displacement rank 2 under the same operators
    t = scipy.linalg.toeplitz(np.random.randn(n), np.random.randn(n))
    assert np.linalg.matrix_rank(_z(n, 1) @ t - t @ _z(n, -1), tol=1e-9) == 2
    assert ToeplitzLike.num_params(n, n, rank=rank) == 2 * rank * n + n


def test_ldr_sd_and_td_explicit_operators():
    n, r = 7, 2
    sd = LDRSubdiagonal(n, n, rank=r, dtype=D)
    with torch.no_grad():
        sd.sub_a.normal_()
        sd.sub_b.normal_()
    a = np.diag(sd.sub_a.detach().numpy(), -1)
    b = np.diag(sd.sub_b.detach().numpy(), -1)
    m = _explicit_ldr(a, b, sd.g.detach().numpy(), sd.h.detach().numpy())
    np.testing.assert_allclose(sd.to_dense().detach().numpy(), m, atol=1e-12)
    assert np.linalg.matrix_rank(m - a @ m @ b.T, tol=1e-9) == r  # Stein displacement rank
    td = LDRTridiagonal(n, n, rank=r, dtype=D)
    with torch.no_grad():
        for p in (td.sub_a, td.diag_a, td.sup_a, td.sub_b, td.diag_b, td.sup_b):
            p.normal_(0, 0.5)
    ops = []
    for side in "ab":
        sub, dg, sup = (getattr(td, f"{k}_{side}").detach().numpy() for k in ("sub", "diag", "sup"))
        ops.append(np.diag(sub, -1) + np.diag(dg) + np.diag(sup, 1))
    m = _explicit_ldr(*ops, td.g.detach().numpy(), td.h.detach().numpy())
    np.testing.assert_allclose(td.to_dense().detach().numpy(), m, atol=1e-10)
    # M - A M B^T = Σ g h^T - A^n g (B^n h)^T: rank ≤ 2r (= r when A, B are nilpotent, as SD)
    assert np.linalg.matrix_rank(m - ops[0] @ m @ ops[1].T, tol=1e-9) <= 2 * r
    assert LDRSubdiagonal.num_params(n, n, rank=r) == 2 * r * n + 2 * (n - 1) + n
    assert LDRTridiagonal.num_params(n, n, rank=r) == 2 * r * n + 2 * (3 * n - 2) + n


# --- HashNet ----------------------------------------------------------------------------------
def _fmix32(h):
    h &= 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def test_hash_tables_match_explicit_python_hash():
    out, n_in, k, seed = 5, 7, 11, 1234
    idx, sign = F.hash_indices(out, n_in, k, seed)
    for i in range(out):
        for j in range(n_in):
            pos = i * n_in + j
            assert idx[i, j] == _fmix32(pos ^ _fmix32(seed)) % k
            assert sign[i, j] == 1 - 2 * (_fmix32(pos ^ _fmix32(seed ^ 0x9E3779B9)) & 1)
    layer = HashedLinear(n_in, out, buckets=k, seed=seed, dtype=D)
    w = layer.weight.detach().numpy()
    np.testing.assert_allclose(layer.to_dense().detach().numpy(),
                               w[idx.numpy()] * sign.numpy())


def test_hashing_statistics_and_determinism():
    idx, sign = F.hash_indices(300, 400, 1000, seed=7)
    counts = torch.bincount(idx.reshape(-1), minlength=1000).double()
    assert counts.min() > 0 and counts.std() / counts.mean() < 0.1  # ~Poisson(120)
    assert abs(sign.double().mean().item()) < 0.01
    idx2, sign2 = F.hash_indices(300, 400, 1000, seed=7)
    assert torch.equal(idx, idx2) and torch.equal(sign, sign2)
    assert not torch.equal(idx, F.hash_indices(300, 400, 1000, seed=8)[0])


def test_hashed_layer_compression_and_seed_in_state_dict():
    layer = HashedLinear(1000, 1000, compression=1 / 64)
    assert layer.buckets == 15625 and HashedLinear.num_params(1000, 1000, compression=1 / 64) \
        == 15625 + 1000
    other = HashedLinear(1000, 1000, compression=1 / 64, seed=int(layer.hash_seed) + 1)
    other.load_state_dict(layer.state_dict())
    x = torch.randn(2, 1000)
    torch.testing.assert_close(other(x), layer(x))
    with pytest.raises(ValueError, match="compression"):
        HashedLinear(10, 10, compression=0.0)


# --- Low rank ---------------------------------------------------------------------------------
def test_lowrank_from_dense_is_the_optimal_truncated_svd():
    w = torch.randn(20, 30, dtype=D)
    fit = LowRank.from_dense(w, rank=5, bias=False)
    s = torch.linalg.svdvals(w)
    err = (fit.to_dense() - w).norm()
    torch.testing.assert_close(err, s[5:].square().sum().sqrt())
    assert LowRank.num_params(30, 20, rank=5) == 5 * 50 + 20


@pytest.mark.parametrize("n", [1, 2, 7])
def test_closed_form_krylov_equals_repeated_application(n):
    from compactnn.functional.ldr import _Operator

    v = torch.randn(3, n, dtype=D, requires_grad=True)
    sub = torch.randn(max(n - 1, 0), dtype=D)
    if n > 2:
        sub[1] = 0.0  # zeros in the operator must not break the cumulative products
    sub.requires_grad_()
    for op in (F.shift_op(1.0), F.shift_op(-1.0), F.shift_op(0.3), F.subdiagonal_op(sub)):
        torch.testing.assert_close(F.krylov(op, v), _Operator.krylov(op, v))
    assert torch.autograd.gradcheck(lambda s, v: F.krylov(F.subdiagonal_op(s), v), (sub, v))


@pytest.mark.parametrize("n", [1, 2, 7, 8])
def test_ldr_products_equal_the_explicit_krylov_products(n):
    """Shift operators Z_{±1} go through FFTs, others through Krylov matrices: both equal
    Σ_i K(A, g_i) K(B, h_i)^T x with K built by repeated application."""
    from compactnn.functional.ldr import _Operator

    g, h = torch.randn(3, n, dtype=D), torch.randn(3, n, dtype=D)
    x = torch.randn(2, 4, n, dtype=D)  # leading batch dimensions
    sub = torch.rand(max(n - 1, 0), dtype=D) + 0.5  # products of O(1): no cancellation
    ops = [F.shift_op(1.0), F.shift_op(-1.0), F.shift_op(0.3), F.subdiagonal_op(sub)]
    for op_a in ops:
        for op_b in ops:
            m = torch.einsum("rkj,rlj->kl", _Operator.krylov(op_a, g), _Operator.krylov(op_b, h))
            torch.testing.assert_close(F.ldr_matmul(x, op_a, op_b, g, h), x @ m.T)
    fast = (F.shift_op(1.0), F.shift_op(-1.0))
    y32 = F.ldr_matmul(x.float(), *fast, g.float(), h.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32, F.ldr_matmul(x, *fast, g, h).float(), rtol=1e-4, atol=1e-4)
    args = (x[0, :2].clone().requires_grad_(), g.clone().requires_grad_(),
            h.clone().requires_grad_())
    for pair in ((F.shift_op(-1.0), F.shift_op(1.0)), (F.shift_op(1.0), F.shift_op(-1.0))):
        assert torch.autograd.gradcheck(lambda x, g, h, p=pair: F.ldr_matmul(x, *p, g, h), args)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dct_of_half_precision_runs_in_float32(dtype):
    x = torch.randn(3, 12)
    for f in (F.dct, F.idct):
        y = f(x.to(dtype))
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), f(x.to(dtype).float()).to(dtype).float())
    g = torch.randn(3, 12, dtype=dtype, requires_grad=True)
    F.dct(g).float().sum().backward()
    assert g.grad.dtype == dtype


# --- from_dense of the fitted families ---------------------------------------------------------
@pytest.mark.parametrize("cls", [ToeplitzLike, LDRSubdiagonal, LDRTridiagonal])
def test_ldr_projection_recovers_square_matrices_of_low_displacement_rank(cls):
    n = 9
    t = Toeplitz(n, n, dtype=D).to_dense().detach()  # displacement rank ≤ 2 for all three
    fit = cls.from_dense(t, rank=2, bias=False, iters=0)  # the projection alone
    torch.testing.assert_close(fit.to_dense(), t, atol=1e-10, rtol=1e-8)
    src = cls(n, n, rank=3, dtype=D)
    fit = cls.from_dense(src.to_dense().detach(), rank=3, iters=0)
    torch.testing.assert_close(fit.to_dense(), src.to_dense(), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", ["acdc", "afdf", "toeplitz_like", "ldr_sd", "ldr_td"])
@pytest.mark.parametrize("shape", [(8, 8), (9, 5), (5, 9)])
def test_fit_of_a_general_matrix_beats_a_fresh_layer(name, shape):
    from compactnn.layers import get_layer_class

    torch.manual_seed(0)
    cls = get_layer_class(name)
    w = torch.randn(shape[1], shape[0], dtype=D)

    def err(layer):
        return ((layer.to_dense() - w).norm() / w.norm()).item()

    fit = cls.from_dense(w, bias=False)
    assert err(fit) < 1.0 and err(fit) < err(cls(*shape, dtype=D, bias=False))
    if name != "afdf":  # the L-BFGS refinement never ends above its start
        assert err(fit) <= err(cls.from_dense(w, bias=False, iters=0)) + 1e-12
