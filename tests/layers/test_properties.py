"""Property-based checks over the whole layer registry (hypothesis): a new family is covered by
default. Each drawn case either matches the float64 dense oracle ``x @ W.T + b`` (``W``,
``b`` from the layer converted to float64) or raises a clear ``ValueError``/``TypeError`` at
the API boundary — never an internal error and never a silently wrong result.

Draws: shapes with 1, small primes and both rectangular orientations (≤ 64); dtypes float16,
bfloat16, float32, float64; input ranks 1–4, empty batches included; execution modes (grad,
no_grad, inference_mode, eval, train); changes of the parameters between calls; from_dense
round trips; gradient flow. ``derandomize=True`` keeps CI deterministic.
"""

import contextlib
import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from compactnn.layers import get_layer_class, make_linear
from compactnn.registry import available

FAMILIES = available("linear")
SIZES = [1, 2, 3, 4, 5, 7, 8, 11, 13, 16, 17, 31, 64]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
MODES = ["grad", "no_grad", "inference_mode", "eval", "train"]
#: structure-defining kwargs a fit must share with its source (fixed signs, hash, rank)
FIT_KWARGS = {"circulant_projection": {"sign_seed": 3}, "hashed": {"seed": 5}}

SETTINGS = {"deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

families = st.sampled_from(FAMILIES)
sizes = st.sampled_from(SIZES)
batches = st.lists(st.sampled_from([0, 1, 2, 3]), min_size=0, max_size=3).map(tuple)


def _eps(dtype):
    return torch.finfo(dtype).eps


def _assert_matches_oracle(layer, x, y):
    """``y`` against ``x @ W.T + b`` in float64, within a rounding bound of the dtypes."""
    ref_layer = copy.deepcopy(layer).to(torch.float64)
    with torch.no_grad():
        w = ref_layer.to_dense().detach()
        b = ref_layer.dense_bias()
        xd = x.detach().double()
        ref = xd @ w.T + (0 if b is None else b.detach())
        scale = xd.abs() @ w.abs().T + (0 if b is None else b.detach().abs())
    assert y.shape == (*x.shape[:-1], layer.out_features)
    assert y.dtype == x.dtype
    # rounding: the inputs' dtype, and float32 at least (FFTs of half tensors run in float32)
    eps = max(_eps(x.dtype), _eps(torch.float32)) if x.dtype != torch.float64 else 1e-13
    k = 64 if x.dtype in (torch.float16, torch.bfloat16) else 256
    top = scale.max().item() if scale.numel() else 0.0
    tol = k * eps * (scale + top * 1e-2 + 1e-30)
    err = (y.detach().double() - ref).abs()
    assert bool((err <= tol).all()), (
        f"max error {err.max().item():.3g} (tolerance ~{k * eps * top:.3g})")


def _mode_context(layer, mode):
    layer.train(mode in ("grad", "train"))
    if mode == "no_grad":
        return torch.no_grad()
    if mode == "inference_mode":
        layer.eval()
        return torch.inference_mode()
    if mode == "eval":
        layer.eval()
    return contextlib.nullcontext()


def _build(name, n_in, out, **kw):
    """The layer, or ``None`` when the family rejects these arguments with a clear error."""
    try:
        return make_linear(name, n_in, out, **kw)
    except (ValueError, TypeError) as e:
        assert str(e), "a rejection must say why"
        event(f"construction rejected: {type(e).__name__}")
        return None


@settings(max_examples=1000, **SETTINGS)
@given(name=families, n_in=sizes, out=sizes, dtype=st.sampled_from(DTYPES), batch=batches,
       mode=st.sampled_from(MODES), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_forward_matches_the_dense_oracle_or_raises_clearly(name, n_in, out, dtype, batch,
                                                             mode, bias, seed):
    torch.manual_seed(seed)
    layer = _build(name, n_in, out, bias=bias, dtype=dtype)
    if layer is None:
        return
    x = torch.randn(*batch, n_in).to(dtype)
    if mode == "grad":
        x.requires_grad_()
    with _mode_context(layer, mode):
        try:
            y = layer(x)
        except (ValueError, TypeError) as e:
            assert str(e)
            event(f"rejected: {type(e).__name__}")
            return
    event(f"computed: {dtype}")
    _assert_matches_oracle(layer, x, y)
    if y.requires_grad:  # gradient flow: finite gradients of the right shapes
        y.float().square().sum().backward()
        if mode == "grad":
            assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == dtype
            assert torch.isfinite(x.grad).all()
        unused = _unused_parameters(layer)
        for n, p in layer.named_parameters():
            if n in unused:  # e.g. LDR operators at n = 1 (no power of A is taken): as torch
                assert p.grad is None or not p.grad.any(), n  # leaves them, None
                continue
            assert p.grad is not None, n
            assert p.grad.shape == p.shape and p.grad.dtype == p.dtype, n
            assert torch.isfinite(p.grad).all(), n
            if x.numel() == 0:
                assert not p.grad.any(), n


def _unused_parameters(layer) -> set[str]:
    """Names of the parameters the layer's matrix and bias do not depend on at all."""
    ref = copy.deepcopy(layer).to(torch.float64)
    names, params = zip(*ref.named_parameters(), strict=True)
    b = ref.dense_bias()
    total = ref.to_dense().sum() + (0 if b is None else b.sum())
    grads = torch.autograd.grad(total, params, allow_unused=True)
    return {n for n, g in zip(names, grads, strict=True) if g is None}


class _Double(nn.Module):
    def forward(self, w):
        return 2 * w


def _float_tensors(layer):
    return [t for t in (*layer.parameters(), *layer.buffers()) if torch.is_floating_point(t)]


def _change(layer, how, x):
    """Change the layer's parameters ``how``; returns the input to use next."""
    if how == "data_mul":
        for t in _float_tensors(layer):
            t.data.mul_(-1.5)
    elif how == "data_copy":
        for t in _float_tensors(layer):
            t.data.copy_(0.5 * torch.randn_like(t))
    elif how == "data_assign":
        for t in _float_tensors(layer):
            t.data = 0.5 * torch.randn_like(t)
    elif how == "in_place":
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(0.3 * torch.randn_like(p))
    elif how == "optimizer_step":
        layer.train()
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(x).square().sum().backward()
        opt.step()
    elif how == "load_state_dict":
        other = copy.deepcopy(layer)
        with torch.no_grad():
            for t in _float_tensors(other):
                t.copy_(0.5 * torch.randn_like(t))
        layer.load_state_dict(other.state_dict())
    elif how == "to_float64":
        layer.to(torch.float64)
        return x.double()
    elif how == "parametrize":
        for n in [n for n, _ in layer.named_parameters() if "." not in n]:
            parametrize.register_parametrization(layer, n, _Double())
    return x


CHANGES = ["data_mul", "data_copy", "data_assign", "in_place", "optimizer_step",
           "load_state_dict", "to_float64", "parametrize"]


@settings(max_examples=500, **SETTINGS)
@given(name=families, n_in=sizes, out=sizes, batch=batches, how=st.sampled_from(CHANGES),
       first=st.sampled_from(MODES), then=st.sampled_from(MODES), seed=st.integers(0, 2**16))
def test_parameter_changes_between_calls_are_seen(name, n_in, out, batch, how, first, then,
                                                  seed):
    torch.manual_seed(seed)
    layer = make_linear(name, n_in, out)
    x = torch.randn(*batch, n_in)
    with _mode_context(layer, first):
        layer(x)
    x = _change(layer, how, x)
    for _ in range(2):
        with _mode_context(layer, then):
            y = layer(x)
        _assert_matches_oracle(layer, x, y)


@settings(max_examples=300, **SETTINGS)
@given(name=families, n_in=st.sampled_from([1, 2, 3, 5, 7, 8, 13]),
       out=st.sampled_from([1, 2, 3, 5, 7, 8, 13]), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_from_dense_round_trip(name, n_in, out, bias, seed):
    torch.manual_seed(seed)
    cls = get_layer_class(name)
    caps = cls.capabilities()
    kw = dict(FIT_KWARGS.get(name, {}))
    if name == "lowrank":  # enough rank to be exact
        kw["rank"] = min(n_in, out)
    src = cls(n_in, out, bias=bias, dtype=torch.float64, **kw)
    w = src.to_dense().detach()
    if not caps["from_dense"]:
        with pytest.raises(NotImplementedError, match=name):
            cls.from_dense(w)
        return
    lin = nn.Linear(n_in, out, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(w)
        if bias:
            lin.bias.copy_(src.dense_bias())
    fit = cls.from_dense(lin, **kw)
    assert fit.to_dense().shape == (out, n_in)
    err = ((fit.to_dense() - w).norm() / w.norm().clamp_min(1e-300)).item()
    if caps["from_dense_exact"]:
        assert err < 1e-7, err
    else:  # a numerical fit: never worse than a fresh layer of the family
        fresh = cls(n_in, out, bias=bias, dtype=torch.float64, **kw)
        assert err <= 1e-7 or err < ((fresh.to_dense() - w).norm() / w.norm()).item(), err
    x = torch.randn(3, n_in, dtype=torch.float64)
    with torch.no_grad():
        y = fit(x)
    assert y.shape == (3, out)
    if bias:
        torch.testing.assert_close(fit.dense_bias(), lin.bias)


@settings(max_examples=150, **SETTINGS)
@given(name=families, n_in=sizes, out=sizes, wrong=st.integers(1, 70),
       int_dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.bool]))
def test_bad_inputs_raise_value_error(name, n_in, out, wrong, int_dtype):
    layer = make_linear(name, n_in, out)
    if wrong != n_in:
        with pytest.raises(ValueError, match=rf"\(\.\.\., {n_in}\)"):
            layer(torch.randn(2, wrong))
    with pytest.raises(ValueError, match="floating-point"):
        layer(torch.ones(2, n_in, dtype=int_dtype))
    for bad in (np.ones((2, n_in)), [[1.0] * n_in], 3.0, None):
        with pytest.raises(ValueError, match="Tensor"):
            layer(bad)
    with pytest.raises(ValueError, match=r"\(\.\.\., "):
        layer(torch.tensor(1.0))  # a scalar has no feature dimension


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (0, 0), (-3, 4), (4, 2.0)])
def test_non_positive_features_are_rejected_at_construction(name, shape):
    with pytest.raises(ValueError, match="positive int"):
        make_linear(name, *shape)


@settings(max_examples=80, **SETTINGS)
@given(name=families, n_in=sizes, out=sizes, layer_dtype=st.sampled_from(DTYPES),
       x_dtype=st.sampled_from(DTYPES), batch=batches)
def test_mixed_dtypes_raise_unless_autocast(name, n_in, out, layer_dtype, x_dtype, batch):
    # nn.Linear refuses a mismatch too; the FFT families once followed whichever dtype won
    layer = make_linear(name, n_in, out, dtype=layer_dtype)
    x = torch.randn(*batch, n_in).to(x_dtype)
    if x_dtype == layer_dtype:
        _assert_matches_oracle(layer, x, layer(x))
        return
    with pytest.raises(ValueError, match="parameters but got"):
        layer(x)
    if layer_dtype == torch.float32 and x_dtype == torch.bfloat16:
        with torch.autocast("cpu", dtype=torch.bfloat16):  # mixes dtypes by design
            y = layer(x)
        assert y.shape == (*batch, out) and torch.isfinite(y.float()).all()
