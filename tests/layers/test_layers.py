"""Registry-driven checks: every registered family is tested by default."""

import io

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import compactnn
from compactnn.layers import (
    CirculantProjection,
    DiagonalCirculant,
    available_layers,
    get_layer_class,
    make_linear,
    register_layer,
)

SHAPES = [(8, 8), (7, 7), (12, 5), (5, 12), (1, 3), (9, 1), (11, 11), (13, 4), (4, 13)]
ALL = available_layers()


def _bias(layer):
    b = layer.dense_bias()
    return 0 if b is None else b


def test_registry_has_the_foundation_families():
    assert {"dc", "circulant_projection", "circulant", "dense"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_equals_dense_matrix(name, shape, bias):
    n_in, out = shape
    layer = make_linear(name, n_in, out, bias=bias, dtype=torch.float64)
    for batch in [(), (4,), (2, 3)]:
        x = torch.randn(*batch, n_in, dtype=torch.float64)
        y = layer(x)
        assert y.shape == (*batch, out)
        torch.testing.assert_close(y, x @ layer.to_dense().T + _bias(layer))
    assert layer.to_dense().shape == (out, n_in)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(6, 6), (7, 3), (3, 7), (11, 11), (13, 4)])
def test_gradcheck_inputs_and_parameters(name, shape):
    layer = make_linear(name, *shape, dtype=torch.float64)
    params = [p for p in layer.parameters() if p.requires_grad]
    x = torch.randn(3, shape[0], dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        saved = [p.data for p in params]
        for p, v in zip(params, ps, strict=True):
            p.data = v
        try:
            return torch.func.functional_call(
                layer, {n: v for (n, _), v in zip(
                    [(n, p) for n, p in layer.named_parameters() if p.requires_grad], ps,
                    strict=True)}, (x,))
        finally:
            for p, v in zip(params, saved, strict=True):
                p.data = v

    inputs = (x, *[p.detach().clone().requires_grad_() for p in params])
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_num_params_is_the_true_count(name, shape, bias):
    cls = get_layer_class(name)
    layer = cls(*shape, bias=bias)
    actual = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    assert cls.num_params(*shape, bias=bias) == actual
    assert f"params={actual:,}" in repr(layer)
    assert cls.param_formula


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip(name):
    a, b = make_linear(name, 10, 6), make_linear(name, 10, 6)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    x = torch.randn(4, 10)
    torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("name", ALL)
def test_bad_inputs_raise_clear_errors(name):
    layer = make_linear(name, 8, 4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        layer(torch.randn(3, 7))
    with pytest.raises(ValueError, match="floating-point"):
        layer(torch.ones(3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="Tensor"):
        layer(np.ones((3, 8)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            make_linear(name, bad, 4)
    with pytest.raises(ValueError, match="init"):
        make_linear(name, 8, 4, init="bogus")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(8, 8), (12, 5), (5, 12), (11, 11)])
@pytest.mark.parametrize("batch", [(0,), (2, 0), (0, 3), (2, 0, 3)])
def test_empty_batch_like_nn_linear(name, shape, batch):
    # nn.Linear gives an empty output and zero parameter gradients; FFTs of zero size raise
    layer = make_linear(name, *shape)
    x = torch.randn(*batch, shape[0], requires_grad=True)
    y = layer(x)
    assert y.shape == (*batch, shape[1])
    y.sum().backward()
    assert x.grad.shape == x.shape
    for n, p in layer.named_parameters():
        assert p.grad is not None and not p.grad.any(), n
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            assert layer.eval()(x).shape == (*batch, shape[1])


#: structure-defining kwargs shared by the source layer and the fit (fixed signs, hash, rank)
FIT_KWARGS = {"circulant_projection": {"sign_seed": 3}, "hashed": {"seed": 5, "buckets": 20},
              "lowrank": {"rank": 3}}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(9, 6), (6, 9), (7, 7)])
def test_from_dense_round_trip_on_own_structure(name, shape):
    cls = get_layer_class(name)
    caps = cls.capabilities()
    if not caps["from_dense"]:
        with pytest.raises(NotImplementedError, match=name):
            cls.from_dense(torch.eye(3))
        return
    kw = FIT_KWARGS.get(name, {})
    src = cls(*shape, dtype=torch.float64, **kw)
    lin = nn.Linear(*shape, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(src.to_dense())
        lin.bias.copy_(src.bias)
    fitted = cls.from_dense(lin, **kw)
    x = torch.randn(4, shape[0], dtype=torch.float64)
    torch.testing.assert_close(fitted.dense_bias(), lin.bias)
    if caps["from_dense_exact"]:
        torch.testing.assert_close(fitted.to_dense(), lin.weight, atol=1e-8, rtol=1e-6)
        torch.testing.assert_close(fitted(x), lin(x))
    else:  # a numerical fit: far closer than a fresh layer of the family
        def err(layer):
            return ((layer.to_dense() - lin.weight).norm() / lin.weight.norm()).item()
        assert err(fitted) < min(1e-2, err(cls(*shape, dtype=torch.float64, **kw)) / 100)


def test_from_dense_of_a_family_without_one_is_a_clear_error():
    from compactnn.layers.base import StructuredLinear

    class NoFit(StructuredLinear):  # not registered: a family that defines no from_dense
        registry_name = "nofit"

        def reset_parameters(self):
            pass

        def to_dense(self):
            return torch.zeros(self.out_features, self.in_features)

        @staticmethod
        def num_params(in_features, out_features, **_):
            return 0

    assert NoFit.capabilities()["from_dense"] is False
    with pytest.raises(NotImplementedError, match=r"NoFit \(nofit\) has no from_dense; "
                                                  r"families with one: .*circulant"):
        NoFit.from_dense(torch.eye(3))


def test_dc_matches_scipy_oracle_and_paper_counts():
    for n_in, out in [(8, 8), (12, 5), (5, 12)]:
        layer = DiagonalCirculant(n_in, out, dtype=torch.float64)
        c, d = layer.c.detach().numpy(), layer.d.detach().numpy()
        w = np.diag(d) @ scipy.linalg.circulant(c)[:out, :n_in]
        np.testing.assert_allclose(layer.to_dense().detach().numpy(), w)
    assert DiagonalCirculant.num_params(3072, 3072) == 9216
    assert DiagonalCirculant.num_params(3072, 10) == 3092


def test_dc_paper_init_statistics():
    layer = DiagonalCirculant(4096, 4096)
    c, d, b = layer.c.detach(), layer.d.detach(), layer.bias.detach()
    assert abs(c.var().item() * 4096 / 2 - 1) < 0.1 and abs(c.mean().item()) < 0.01
    assert set(d.unique().tolist()) == {-1.0, 1.0}
    assert b.abs().max() < 0.1


def test_circulant_projection_signs_are_fixed_buffers():
    layer = CirculantProjection(16, 8, sign_seed=7)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"r", "bias"} and "signs" in dict(layer.named_buffers())
    assert set(layer.signs.unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(layer.signs, CirculantProjection(16, 8, sign_seed=7).signs)
    w = scipy.linalg.circulant(layer.r.detach().numpy())[:8, :16] * layer.signs.numpy()
    np.testing.assert_allclose(layer.to_dense().detach().numpy(), w, rtol=1e-6)


def test_dc_from_dense_fits_better_than_circulant_projection():
    torch.manual_seed(1)
    target = DiagonalCirculant(16, 16, dtype=torch.float64).to_dense() + 0.01 * torch.randn(
        16, 16, dtype=torch.float64)
    fit = DiagonalCirculant.from_dense(target)
    plain = compactnn.Circulant.from_dense(target)
    err_dc = (fit.to_dense() - target).norm() / target.norm()
    err_c = (plain.to_dense() - target).norm() / target.norm()
    assert err_dc < 0.05 < err_c


def test_registry_rejects_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        register_layer("dc")(type("X", (nn.Module,), {}))
    with pytest.raises(ValueError, match="unknown layer"):
        make_linear("nope", 3, 3)


def test_dtype_and_device_kwargs():
    layer = make_linear("dc", 5, 3, dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 for p in layer.parameters())


#: state a layer may keep between calls, with why it cannot go stale
KEPT_STATE = {"hashed": {"_hash_cache"}}  # keyed on the seed's value and the device


@pytest.mark.parametrize("name", ALL)
def test_forward_keeps_no_state_derived_from_parameters(name):
    # the FFT layers once cached kernel spectra at inference, which edits through .data made
    # stale (tests/layers/test_parameter_changes.py); nothing may be kept now
    layer = make_linear(name, 12, 7, dtype=torch.float64).eval()
    before = set(vars(layer))
    x = torch.randn(3, 12, dtype=torch.float64)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            layer(x)
    layer(x)
    assert set(vars(layer)) - before <= KEPT_STATE.get(name, set())


def test_dc_recompute_same_results_less_kept_for_backward(monkeypatch):
    from compactnn import DiagonalCirculant
    from compactnn.functional import circulant

    monkeypatch.setattr(circulant, "KEEP_SPECTRUM_MAX_FLOATS", 0)  # the large-batch path

    torch.manual_seed(0)
    fast = DiagonalCirculant(40, 24, dtype=torch.float64)
    lean = DiagonalCirculant(40, 24, recompute=True, dtype=torch.float64)
    lean.load_state_dict(fast.state_dict())
    assert "recompute=True" in repr(lean)
    x = torch.randn(6, 40, dtype=torch.float64, requires_grad=True)
    grads = []
    for layer in (fast, lean):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t, s=saved: s.append(t) or t,
                                                      lambda t: t):
            y = layer(x)
        grads.append(torch.autograd.grad(y.square().sum(), [x, *layer.parameters()]))
        batch_sized = [t for t in saved if t.dim() == 2 and t.data_ptr() != x.data_ptr()]
        assert len(batch_sized) == (0 if layer.recompute else 1)  # u, or nothing
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_capabilities_are_declared_on_the_class():
    projections = set(available_layers(capability="from_dense"))
    assert projections == set(ALL)  # every family has one
    fitted = {n for n in ALL if not get_layer_class(n).capabilities()["from_dense_exact"]}
    assert fitted == {"acdc", "toeplitz_like", "ldr_sd", "ldr_td", "kronecker", "prodsum"}
    budgets = {n: get_layer_class(n).capabilities()["budget_kwargs"] for n in ALL}
    assert budgets["lowrank"] == {"rank": 8} and budgets["dc"] == {}
    for name, kw in budgets.items():  # a budget kwarg really changes the parameter count
        cls = get_layer_class(name)
        for key, value in kw.items():
            assert cls.num_params(64, 64, **{key: value}) != cls.num_params(
                64, 64, **{key: value * 2})


@pytest.mark.parametrize("name", ALL)
def test_from_dense_with_no_iterations_returns_the_start(name):
    # DC's from_dense(iters=0) raised UnboundLocalError (its scales were set inside the loop)
    import inspect

    cls = get_layer_class(name)
    if "iters" not in inspect.signature(cls.from_dense).parameters:
        return
    w = torch.randn(5, 7, dtype=torch.float64)
    fit = cls.from_dense(w, iters=0)
    assert fit.to_dense().shape == (5, 7) and torch.isfinite(fit.to_dense()).all()


@pytest.mark.parametrize("name", ALL)
def test_from_dense_refuses_non_finite_weights_and_takes_half_precision(name):
    cls = get_layer_class(name)
    bad = torch.randn(6, 6)
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinity"):
        cls.from_dense(bad)
    lin = torch.nn.Linear(6, 6)
    with torch.no_grad():
        lin.bias[0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinity"):
        cls.from_dense(lin)
    for dtype in (torch.float16, torch.bfloat16):  # SVD-based fits used to have no kernel
        layer = cls.from_dense(torch.randn(6, 6).to(dtype))
        assert layer.to_dense().dtype == dtype and torch.isfinite(layer.to_dense()).all()
