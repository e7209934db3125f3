import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from compactnn import functional as F
from compactnn.functional import circulant as circulant_module

# 11 and 13 are odd and not 7-smooth: they exercise the folded linear-convolution path (both
# of its branches); 22 and 26 are even and 13-smooth: direct FFTs of length n
SHAPES = [(8, 8), (7, 7), (9, 4), (4, 9), (1, 5), (6, 1), (16, 16), (11, 11), (13, 5), (5, 13),
          (1, 11), (11, 1), (22, 22), (26, 9), (9, 26)]
BATCHES = [(), (3,), (2, 3)]


def test_circulant_dense_matches_scipy():
    for n in (1, 2, 5, 8, 13):
        c = torch.randn(n, dtype=torch.float64)
        np.testing.assert_allclose(F.circulant_dense(c).numpy(), scipy.linalg.circulant(c.numpy()))


def _oracle(x, c, d_in, d_out, bias, out):
    """Independent numpy reference built from scipy.linalg.circulant."""
    n_in = x.shape[-1]
    w = scipy.linalg.circulant(c.numpy())[:out, :n_in]
    if d_in is not None:
        w = w * d_in.numpy()[None, :]
    if d_out is not None:
        w = d_out.numpy()[:, None] * w
    y = x.numpy() @ w.T
    return y + (0 if bias is None else bias.numpy())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_diag_circulant_diag_matches_dense_and_scipy(shape, batch, dtype):
    n_in, out = shape
    n = max(shape)
    x = torch.randn(*batch, n_in, dtype=dtype)
    c = torch.randn(n, dtype=dtype)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for use_din, use_dout, use_b in itertools.product([False, True], repeat=3):
        d_in = torch.randn(n_in, dtype=dtype) if use_din else None
        d_out = torch.randn(out, dtype=dtype) if use_dout else None
        b = torch.randn(out, dtype=dtype) if use_b else None
        y = F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b, out_features=out)
        assert y.shape == (*batch, out) and y.dtype == dtype
        w = F.diag_circulant_diag_dense(c, n_in, out, d_in=d_in, d_out=d_out)
        ref = x @ w.T + (0 if b is None else b)
        torch.testing.assert_close(y, ref, **tol)
        oracle = _oracle(x.double(), c.double(), None if d_in is None else d_in.double(),
                         None if d_out is None else d_out.double(),
                         None if b is None else b.double(), out)
        np.testing.assert_allclose(y.double().numpy(), oracle, rtol=1e-4, atol=1e-4)


@pytest.fixture(params=["keep", "recompute"])
def spectrum_policy(request, monkeypatch):
    """Both backward paths: the input spectrum kept from forward (small tensors) or
    recomputed (the path of large tensors, forced here by a zero threshold)."""
    if request.param == "recompute":
        monkeypatch.setattr(circulant_module, "KEEP_SPECTRUM_MAX_FLOATS", 0)
    return request.param


@pytest.mark.parametrize("shape", [(8, 8), (7, 7), (9, 4), (4, 9), (5, 1), (11, 11), (13, 4),
                                   (4, 13), (22, 22), (26, 9)])
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_gradcheck_all_arguments(shape, batch, spectrum_policy):
    n_in, out = shape
    n = max(shape)
    opts = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(*batch, n_in, **opts)
    c = torch.randn(n, **opts)
    d_in, d_out, b = torch.randn(n_in, **opts), torch.randn(out, **opts), torch.randn(out, **opts)

    def f(x, c, d_in, d_out, b):
        return F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b, out_features=out)

    assert torch.autograd.gradcheck(f, (x, c, d_in, d_out, b))
    assert torch.autograd.gradgradcheck(lambda x, c: F.diag_circulant_diag(x, c), (
        torch.randn(*batch, n, **opts), torch.randn(n, **opts)))


@pytest.mark.parametrize("shape", [(16, 16), (11, 11), (13, 5), (5, 13)])
def test_backward_scratch_reuse_does_not_touch_saved_tensors(shape, spectrum_policy):
    # backward writes intermediate results over one scratch tensor: a second backward through
    # the same graph (retain_graph) must give the same gradients, and the returned ∂x must not
    # alias anything backward still reads
    n_in, out = shape
    n = max(shape)
    x = torch.randn(4, n_in, requires_grad=True)
    params = [torch.randn(n, requires_grad=True), torch.randn(n_in, requires_grad=True),
              torch.randn(out, requires_grad=True), torch.randn(out, requires_grad=True)]
    y = F.diag_circulant_diag(x, params[0], d_in=params[1], d_out=params[2], bias=params[3],
                              out_features=out)
    g = torch.randn_like(y)
    first = torch.autograd.grad(y, [x, *params], g, retain_graph=True)
    for t in first:
        t.add_(1.0)  # scribble over the returned gradients
    second = torch.autograd.grad(y, [x, *params], g)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a - 1.0, b)


def test_fast_gradients_equal_dense_reference_gradients():
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    c = torch.randn(10, dtype=torch.float64, requires_grad=True)
    d = torch.randn(10, dtype=torch.float64, requires_grad=True)
    g = torch.randn(5, 10, dtype=torch.float64)
    (F.diag_circulant_diag(x, c, d_out=d) * g).sum().backward()
    fast = [t.grad.clone() for t in (x, c, d)]
    for t in (x, c, d):
        t.grad = None
    (x @ F.diag_circulant_diag_dense(c, 6, 10, d_out=d).T * g).sum().backward()
    for a, b in zip(fast, (x.grad, c.grad, d.grad), strict=True):
        torch.testing.assert_close(a, b)


def test_only_needed_gradients_are_computed():
    x = torch.randn(4, 8)
    c = torch.randn(8, requires_grad=True)
    d = torch.randn(8)  # fixed
    F.diag_circulant_diag(x, c, d_out=d).sum().backward()
    assert c.grad is not None and x.grad is None and d.grad is None


def test_circulant_matmul_and_errors():
    c, x = torch.randn(6, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    np.testing.assert_allclose(F.circulant_matmul(c, x).numpy(),
                               x.numpy() @ scipy.linalg.circulant(c.numpy()).T)
    with pytest.raises(ValueError, match="does not match"):
        F.circulant_matmul(c, torch.randn(2, 5))
    with pytest.raises(ValueError, match="at most n"):
        F.diag_circulant_diag(torch.randn(3, 9), torch.randn(8))
    with pytest.raises(ValueError, match="out_features"):
        F.diag_circulant_diag(torch.randn(3, 8), torch.randn(8), out_features=9)
    with pytest.raises(ValueError, match="floating-point"):
        F.diag_circulant_diag(torch.ones(3, 8, dtype=torch.long), torch.randn(8))
    with pytest.raises(ValueError, match="d_out must have shape"):
        F.diag_circulant_diag(torch.randn(3, 8), torch.randn(8), d_out=torch.randn(7))


@pytest.mark.parametrize("shape", [(8, 8), (5, 9), (9, 5)])
def test_project_circulant_is_exact_on_circulants_and_orthogonal(shape):
    out, n_in = shape
    n = max(shape)
    c = torch.randn(n, dtype=torch.float64)
    w = F.diag_circulant_diag_dense(c, n_in, out)
    # Exact recovery needs every diagonal to be represented: always true for n = max(shape).
    torch.testing.assert_close(F.project_circulant(w, n), c)
    # Nearest circulant: the residual is orthogonal to every circulant basis matrix.
    a = torch.randn(out, n_in, dtype=torch.float64)
    r = a - F.diag_circulant_diag_dense(F.project_circulant(a, n), n_in, out)
    for k in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[k] = 1
        basis = F.diag_circulant_diag_dense(e, n_in, out)
        assert abs((r * basis).sum().item()) < 1e-10


def test_fft_size_choice():
    assert F.circulant_fft_size(4096, 4096, 4096) == 4096
    assert F.circulant_fft_size(3072, 3072, 10) == 3072
    assert F.circulant_fft_size(784, 784, 784) == 784
    size = F.circulant_fft_size(4099, 4099, 4099)  # prime: linear convolution, folded
    assert size >= 2 * 4099 - 1 and F.fast_fft_size(size, (2, 3, 5, 7)) == size
    assert F.circulant_fft_size(11, 3, 11) == F.fast_fft_size(11 + 11 - 1, (2, 3, 5, 7))
    assert F.circulant_fft_size(2816, 2816, 2816) == 2816  # even, 2^8 * 11: direct
    assert F.circulant_fft_size(8190, 8190, 8190) == 8190  # even, 2 * 3^2 * 5 * 7 * 13
    assert F.circulant_fft_size(1001, 1001, 1001) == 2016  # odd 7 * 11 * 13: folded
    assert F.circulant_fft_size(2 * 17, 34, 34) == F.fast_fft_size(67, (2, 3, 5, 7))
    with pytest.raises(ValueError, match="c_spectrum"):
        F.diag_circulant_diag(torch.randn(2, 11), torch.randn(11), c_spectrum=torch.randn(6))


def _saved(fn):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn()
    return saved


@pytest.mark.parametrize("batch", [4, 512])
def test_backward_keeps_a_batch_spectrum_only_while_it_is_small(batch):
    n = 1024
    x = torch.randn(batch, n, requires_grad=True)
    c, d, b = (torch.randn(n, requires_grad=True) for _ in range(3))
    saved = _saved(lambda: F.diag_circulant_diag(x, c, d_out=d, bias=b))
    spectra = [t for t in saved if t.is_complex() and t.dim() == 2]  # batch-sized spectra
    floats = batch * (n // 2 + 1) * 2
    if floats <= circulant_module.KEEP_SPECTRUM_MAX_FLOATS:
        assert len(spectra) == 1 and spectra[0].shape == (batch, n // 2 + 1)
    else:
        assert spectra == []
    real_acts = [t for t in saved if not t.is_complex() and t.dim() == 2]
    # x itself (the caller's tensor) and the pre-diagonal activation u, nothing else
    assert len(real_acts) == 2 and x.data_ptr() in {t.data_ptr() for t in real_acts}


@pytest.mark.parametrize("shape", [(8, 8), (11, 11), (9, 4), (4, 9)])
def test_recompute_keeps_only_the_input_and_gives_the_same_gradients(shape):
    n_in, out = shape
    n = max(shape)
    opts = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(3, n_in, **opts)
    args = (torch.randn(n, **opts), torch.randn(n_in, **opts), torch.randn(out, **opts),
            torch.randn(out, **opts))

    def f(x, c, d_in, d_out, b, recompute=True):
        return F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b, out_features=out,
                                     recompute=recompute)

    assert torch.autograd.gradcheck(f, (x, *args))
    assert torch.autograd.gradgradcheck(f, (x, *args))
    g = torch.randn(3, out, dtype=torch.float64)
    fast = torch.autograd.grad(f(x, *args, recompute=False), [x, *args], g)
    lean = torch.autograd.grad(f(x, *args), [x, *args], g)
    for a, b in zip(fast, lean, strict=True):
        torch.testing.assert_close(a, b)
    saved = _saved(lambda: f(x, *args))
    assert [t.data_ptr() for t in saved if t.dim() == 2] == [x.data_ptr()]


# --- spectra and dtype policy ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 8), (11, 11), (9, 4), (4, 13), (13, 13), (26, 9)])
@pytest.mark.parametrize("blocks", [(), (3,)])
def test_circulant_spectrum_is_the_rfft_at_the_ops_size(shape, blocks):
    n_in, out = shape
    n = max(shape)
    c = torch.randn(*blocks, n, dtype=torch.float64)
    size = F.circulant_fft_size(n, n_in, out)
    torch.testing.assert_close(F.circulant_spectrum(c, n_in, out), torch.fft.rfft(c, n=size))
    x = torch.randn(2, *blocks, n_in, dtype=torch.float64)
    spec = F.circulant_spectrum(c, n_in, out)
    torch.testing.assert_close(F.diag_circulant_diag(x, c, out_features=out, c_spectrum=spec),
                               F.diag_circulant_diag(x, c, out_features=out))
    for low in (torch.float16, torch.bfloat16):  # computed in float32, like the op
        s = F.circulant_spectrum(c.to(low), n_in, out)
        assert s.dtype == torch.complex64 and F.fft_dtype(low) == torch.float32
        torch.testing.assert_close(s, torch.fft.rfft(c.to(low).float(), n=size))
    assert F.fft_dtype(torch.float64) == torch.float64


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("blocks", [(), (2,)])
def test_low_precision_op_uses_the_callers_float32_spectrum(low, blocks):
    # the spectrum of another vector c2 is passed on purpose: the result must follow it,
    # which shows that the low-precision branch does not drop c_spectrum
    n = 11
    x, c, c2 = torch.randn(4, *blocks, n), torch.randn(*blocks, n), torch.randn(*blocks, n)
    spec = F.circulant_spectrum(c2.to(low), n, n)
    with torch.no_grad():
        y = F.diag_circulant_diag(x.to(low), c.to(low), c_spectrum=spec)
    assert y.dtype == low
    ref = F.diag_circulant_diag(x.to(low).float(), c2.to(low).float())
    eps = torch.finfo(low).eps
    torch.testing.assert_close(y.float(), ref, rtol=eps, atol=eps * ref.abs().max().item())


def test_wrong_spectrum_or_block_shapes_are_clear_errors():
    x, c = torch.randn(2, 3, 8), torch.randn(3, 8)
    with pytest.raises(ValueError, match=r"c_spectrum must have shape \(3, 5\)"):
        F.diag_circulant_diag(x, c, c_spectrum=torch.randn(5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"c_spectrum must have shape \(5,\)"):
        F.diag_circulant_diag(x.bfloat16()[:, 0], c[0].bfloat16(),
                              c_spectrum=torch.randn(3, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, in\)"):
        F.diag_circulant_diag(torch.randn(2, 4, 8), c)
    with pytest.raises(ValueError, match=r"d_in must have shape \(8,\) or \(3, 8\)"):
        F.diag_circulant_diag(x, c, d_in=torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"\(n,\) or \(blocks, n\)"):
        F.diag_circulant_diag(x, torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match=r"\(n,\) or \(blocks, n\)"):
        F.circulant_spectrum(torch.randn(1, 3, 8), 8, 8)
    with pytest.raises(ValueError, match="must be in"):
        F.circulant_spectrum(torch.randn(8), 9, 8)


# --- blocks: c of shape (B, n) --------------------------------------------------------------
def test_batched_circulant_dense_matches_scipy_per_block():
    for n in (1, 2, 5, 8, 13):
        c = torch.randn(3, n, dtype=torch.float64)
        w = F.circulant_dense(c)
        assert w.shape == (3, n, n)
        for k in range(3):
            np.testing.assert_allclose(w[k].numpy(), scipy.linalg.circulant(c[k].numpy()))


@pytest.mark.parametrize("shape", [(8, 8), (7, 7), (9, 4), (4, 9), (11, 11), (13, 5), (5, 13),
                                   (1, 6), (6, 1), (22, 22)])
@pytest.mark.parametrize("batch", BATCHES)
def test_batched_op_matches_loop_dense_and_scipy(shape, batch):
    n_in, out = shape
    n, blocks = max(shape), 3
    d = torch.float64
    x = torch.randn(*batch, blocks, n_in, dtype=d)
    c = torch.randn(blocks, n, dtype=d)
    # None / shared over blocks / per block, for each of d_in, d_out, bias
    forms = [None, "shared", "block"]
    for f_in, f_out, f_b in itertools.product(forms, repeat=3):
        def make(form, size):
            return None if form is None else torch.randn(
                *(() if form == "shared" else (blocks,)), size, dtype=d)
        d_in, d_out, b = make(f_in, n_in), make(f_out, out), make(f_b, out)
        y = F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b, out_features=out)
        assert y.shape == (*batch, blocks, out)

        def block(t, k):
            return t if t is None or t.dim() == 1 else t[k]

        loop = torch.stack([F.diag_circulant_diag(
            x[..., k, :], c[k], d_in=block(d_in, k), d_out=block(d_out, k), bias=block(b, k),
            out_features=out) for k in range(blocks)], dim=-2)
        torch.testing.assert_close(y, loop)
        w = F.diag_circulant_diag_dense(c, n_in, out, d_in=d_in, d_out=d_out)
        assert w.shape == (blocks, out, n_in)
        ref = torch.einsum("...bi,boi->...bo", x, w) + (0 if b is None else b)
        torch.testing.assert_close(y, ref)
        for k in range(blocks):
            oracle = _oracle(x[..., k, :], c[k], block(d_in, k), block(d_out, k),
                             block(b, k), out)
            np.testing.assert_allclose(y[..., k, :].numpy(), oracle, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(8, 8), (7, 7), (9, 4), (4, 9), (11, 11), (13, 4),
                                   (26, 9)])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_batched_gradcheck_all_arguments(shape, batch, spectrum_policy):
    n_in, out = shape
    n, blocks = max(shape), 2
    opts = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(*batch, blocks, n_in, **opts)
    c = torch.randn(blocks, n, **opts)
    for per_block in (True, False):
        lead = (blocks,) if per_block else ()
        d_in, d_out, b = (torch.randn(*lead, k, **opts) for k in (n_in, out, out))

        def f(x, c, d_in, d_out, b):
            return F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b,
                                         out_features=out)

        assert torch.autograd.gradcheck(f, (x, c, d_in, d_out, b))
        grads = torch.autograd.grad(f(x, c, d_in, d_out, b).sum(), [x, c, d_in, d_out, b])
        assert [g.shape for g in grads] == [t.shape for t in (x, c, d_in, d_out, b)]
    assert torch.autograd.gradgradcheck(
        lambda x, c, d: F.diag_circulant_diag(x, c, d_out=d, out_features=out),
        (x, c, torch.randn(blocks, out, **opts)))


def test_batched_recompute_keeps_only_the_input_and_gives_the_same_gradients():
    opts = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(3, 2, 9, **opts)
    args = (torch.randn(2, 11, **opts), torch.randn(2, 9, **opts), torch.randn(5, **opts),
            torch.randn(2, 5, **opts))

    def f(x, c, d_in, d_out, b, recompute=True):
        return F.diag_circulant_diag(x, c, d_in=d_in, d_out=d_out, bias=b, out_features=5,
                                     recompute=recompute)

    assert torch.autograd.gradcheck(f, (x, *args))
    assert torch.autograd.gradgradcheck(f, (x, *args))
    g = torch.randn(3, 2, 5, dtype=torch.float64)
    fast = torch.autograd.grad(f(x, *args, recompute=False), [x, *args], g)
    lean = torch.autograd.grad(f(x, *args), [x, *args], g)
    for a, b in zip(fast, lean, strict=True):
        torch.testing.assert_close(a, b)
    saved = _saved(lambda: f(x, *args))
    assert [t.data_ptr() for t in saved if t.dim() == 3] == [x.data_ptr()]


@pytest.mark.parametrize("batch", [4, 256])
def test_batched_backward_keeps_a_spectrum_only_while_it_is_small(batch):
    n, blocks = 512, 2
    x = torch.randn(batch, blocks, n, requires_grad=True)
    c, d, b = (torch.randn(blocks, n, requires_grad=True) for _ in range(3))
    saved = _saved(lambda: F.diag_circulant_diag(x, c, d_out=d, bias=b))
    spectra = [t for t in saved if t.is_complex() and t.dim() == 3]  # batch-sized spectra
    if batch * blocks * (n // 2 + 1) * 2 <= circulant_module.KEEP_SPECTRUM_MAX_FLOATS:
        assert len(spectra) == 1 and spectra[0].shape == (batch, blocks, n // 2 + 1)
    else:
        assert spectra == []
    real_acts = [t for t in saved if not t.is_complex() and t.dim() == 3]
    assert len(real_acts) == 2 and x.data_ptr() in {t.data_ptr() for t in real_acts}
