"""An empty batch gives an empty output, as ``nn.Linear`` does, and zero parameter gradients
(MKL and cuFFT reject zero-size FFTs: the ops must not hand them one)."""

import pytest
import torch

from compactnn import functional as F
from compactnn.functional import circulant as circulant_module

D = torch.float64
# 11 is odd and not 7-smooth: the folded linear-convolution path
SHAPES = [(8, 8), (9, 4), (4, 9), (11, 11), (11, 5)]
EMPTY = [(0,), (2, 0), (0, 3), (0, 2, 3)]


def _params(n_in, out, n, blocks=None):
    lead = () if blocks is None else (blocks,)
    return {"c": torch.randn(*lead, n, dtype=D, requires_grad=True),
            "d_in": torch.randn(n_in, dtype=D, requires_grad=True),
            "d_out": torch.randn(out, dtype=D, requires_grad=True),
            "bias": torch.randn(out, dtype=D, requires_grad=True)}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batch", EMPTY)
@pytest.mark.parametrize("recompute", [False, True])
def test_diag_circulant_diag_empty_batch(shape, batch, recompute):
    n_in, out = shape
    p = _params(n_in, out, max(shape))
    x = torch.randn(*batch, n_in, dtype=D, requires_grad=True)
    kw = {"d_in": p["d_in"], "d_out": p["d_out"], "bias": p["bias"], "out_features": out}
    y = F.diag_circulant_diag(x, p["c"], recompute=recompute, **kw)
    assert y.shape == (*batch, out)
    y.square().sum().backward()
    assert x.grad.shape == x.shape
    for name, t in p.items():
        assert t.grad is not None and t.grad.shape == t.shape, name
        assert not t.grad.any(), name
    with torch.no_grad():
        assert F.diag_circulant_diag(x, p["c"], **kw).shape == (*batch, out)
    with torch.inference_mode():
        assert F.diag_circulant_diag(x, p["c"], **kw).shape == (*batch, out)


def test_diag_circulant_diag_empty_batch_with_blocks_and_large_batch_path(monkeypatch):
    monkeypatch.setattr(circulant_module, "KEEP_SPECTRUM_MAX_FLOATS", 0)
    p = _params(5, 4, 6, blocks=3)
    x = torch.randn(0, 3, 5, dtype=D, requires_grad=True)
    y = F.diag_circulant_diag(x, p["c"], d_in=p["d_in"], d_out=p["d_out"], bias=p["bias"],
                              out_features=4)
    assert y.shape == (0, 3, 4)
    y.sum().backward()
    assert p["c"].grad.shape == (3, 6) and not p["c"].grad.any()
    assert not p["d_out"].grad.any() and not p["bias"].grad.any()


@pytest.mark.parametrize("batch", EMPTY)
def test_toeplitz_and_dct_empty_batch(batch):
    t = torch.randn(9 + 4 - 1, dtype=D, requires_grad=True)
    x = torch.randn(*batch, 9, dtype=D, requires_grad=True)
    y = F.toeplitz_matmul(x, t, 4)
    assert y.shape == (*batch, 4)
    y.sum().backward()
    assert not t.grad.any() and x.grad.shape == x.shape
    for f in (F.dct, F.idct):
        z = torch.randn(*batch, 7, dtype=D, requires_grad=True)
        out = f(z)
        assert out.shape == z.shape
        out.sum().backward()
        assert z.grad.shape == z.shape
        assert f(z.float().detach().half()).shape == z.shape  # the float32 detour too


def test_zero_features_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 1 and at most n"):
        F.diag_circulant_diag(torch.randn(3, 0), torch.randn(4))
