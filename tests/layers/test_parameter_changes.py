"""No stale results: whatever way a parameter changes between calls, and in whatever execution
mode the calls run, the next output is ``x @ W.T + b`` for the layer's *current* weights.

(The layers once cached kernel spectra keyed on a parameter's storage and version counter;
edits through ``.data`` bypass that counter and outputs came from the old weights.)
"""

import contextlib

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from compactnn.layers import available_layers, make_linear

ALL = available_layers()
SHAPE = (10, 7)


def _oracle(layer, x):
    w = layer.to_dense().detach().double()
    y = x.double() @ w.T
    b = layer.dense_bias()
    return y if b is None else y + b.detach().double()


def _check(layer, x):
    y = layer(x)
    assert y.dtype == x.dtype
    ref = _oracle(layer, x)
    torch.testing.assert_close(y.detach().double(), ref, rtol=1e-4,
                               atol=1e-4 * ref.abs().max().item())


def _tensors(layer):
    """Every floating-point parameter and buffer: what a change may touch."""
    return [t for t in (*layer.parameters(), *layer.buffers()) if torch.is_floating_point(t)]


class _Double(nn.Module):
    def forward(self, w):
        return 2 * w


def _data_mul(layer, x):
    for t in _tensors(layer):
        t.data.mul_(-1.5)
    return x


def _data_copy(layer, x):
    for t in _tensors(layer):
        t.data.copy_(0.5 * torch.randn_like(t))
    return x


def _data_assign(layer, x):
    for t in _tensors(layer):
        t.data = 0.5 * torch.randn_like(t)
    return x


def _in_place_no_grad(layer, x):
    with torch.no_grad():
        for p in layer.parameters():
            p.mul_(-1.5)
    return x


def _optimizer_step(layer, x):
    mode = layer.training
    layer.train()
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    layer(x).square().sum().backward()
    opt.step()
    layer.train(mode)
    return x


def _load_state_dict(layer, x):
    other = make_linear(layer.registry_name, *SHAPE)
    with torch.no_grad():
        for t in _tensors(other):
            t.copy_(0.5 * torch.randn_like(t))
    layer.load_state_dict(other.state_dict())
    return x


def _to_float64(layer, x):
    layer.to(torch.float64)
    return x.double()


def _parametrize(layer, x):
    for name in [n for n, p in layer.named_parameters() if "." not in n]:
        parametrize.register_parametrization(layer, name, _Double())
    return x


CHANGES = {f.__name__.lstrip("_"): f for f in (
    _data_mul, _data_copy, _data_assign, _in_place_no_grad, _optimizer_step, _load_state_dict,
    _to_float64, _parametrize)}

MODES = {
    "no_grad": (False, torch.no_grad),
    "eval_no_grad": (True, torch.no_grad),
    "inference_mode": (True, torch.inference_mode),
    "eval": (True, contextlib.nullcontext),
}  # (train mode with autograd: each case ends with a training step)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("name", ALL)
def test_output_follows_every_parameter_change(name, change, mode):
    torch.manual_seed(0)
    layer = make_linear(name, *SHAPE)
    x = torch.randn(3, SHAPE[0])
    evaluate, ctx = MODES[mode]
    layer.train(not evaluate)
    with ctx():
        _check(layer, x)  # a first call (anything it might keep, it keeps now)
    before = layer.to_dense().detach().double().clone()
    x = CHANGES[change](layer, x)
    if change != "to_float64":  # it did change (.to() changes the dtype only)
        assert not torch.allclose(layer.to_dense().detach().double(), before)
    for _ in range(2):
        with ctx():
            _check(layer, x)
    layer.train()  # and training still works afterwards (nothing kept from inference_mode)
    _check(layer, x)
    layer(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.isfinite().all()
               for p in layer.parameters() if p.requires_grad)


def test_dc_repro_from_the_issue():
    layer = make_linear("dc", 64, 64).eval()
    x = torch.randn(2, 64)
    with torch.no_grad():
        layer(x)
    layer.c.data.mul_(2)
    with torch.no_grad():
        y = layer(x)
    torch.testing.assert_close(y, x @ layer.to_dense().T + layer.dense_bias())
