"""The fast paths work in every execution mode: no_grad, inference_mode, autocast, low
precision, torch.compile, and CUDA (compared against the CPU) when a GPU is present."""

import pytest
import torch

from compactnn import DCNN
from compactnn.layers import make_linear

FFT_FAMILIES = ["dc", "circulant_projection", "circulant", "toeplitz", "dtnn", "acdc", "afdf"]


@pytest.mark.parametrize("name", FFT_FAMILIES)
def test_no_grad_inference_mode_and_autocast(name):
    layer = make_linear(name, 24, 10)
    x = torch.randn(5, 24)
    ref = layer(x)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x.bfloat16())  # a bf16 activation, as autocast produces
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, ref, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("name", FFT_FAMILIES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_model_keeps_its_dtype(name, dtype):
    layer = make_linear(name, 16, 16)
    x = torch.randn(3, 16)
    ref = layer(x)
    half = layer.to(dtype)
    y = half(x.to(dtype))
    assert y.dtype == dtype
    torch.testing.assert_close(y.float(), ref, atol=0.1, rtol=0.05)
    y.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == dtype
               for p in half.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", FFT_FAMILIES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(24, 10), (10, 24), (11, 11)])
def test_low_precision_inference_matches_float32(name, dtype, shape):
    # FFTs run in float32 (CPU FFTs have no half precision): the result is float32's rounded
    # to the dtype (plus a rounded bias addition)
    torch.manual_seed(0)
    layer = make_linear(name, *shape).to(dtype)
    ref_layer = make_linear(name, *shape)
    ref_layer.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
    x = torch.randn(5, shape[0]).to(dtype)
    with torch.no_grad():
        ref = ref_layer(x.float())
    eps = torch.finfo(dtype).eps
    tol = {"rtol": eps, "atol": eps * ref.abs().max().item()}

    def check(y):
        assert y.dtype == dtype
        torch.testing.assert_close(y.float(), ref, **tol)

    for _ in range(2):  # a second call gives the same (no state is kept between calls)
        with torch.no_grad():
            check(layer(x))
    with torch.inference_mode():
        check(layer(x))
    layer.eval()
    check(layer(x).detach())  # eval mode with autograd on
    with torch.no_grad():
        check(layer(x))


@pytest.mark.slow
def test_torch_compile_matches_eager():
    model = DCNN(32, 10, depth=2)
    x = torch.randn(4, 32)
    ref = model(x)
    compiled = torch.compile(model)
    y = compiled(x)
    torch.testing.assert_close(y, ref)
    y.sum().backward()
    assert model.net[0].c.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", FFT_FAMILIES + ["hashed", "toeplitz_like", "lowrank"])
def test_cuda_matches_cpu(name):
    torch.manual_seed(0)
    layer = make_linear(name, 40, 23)
    x = torch.randn(6, 40, requires_grad=True)
    y = layer(x)
    y.square().sum().backward()
    grads = [p.grad.clone() for p in layer.parameters() if p.requires_grad]
    gx = x.grad.clone()
    layer_gpu = layer.cuda()
    layer_gpu.zero_grad()
    xg = x.detach().cuda().requires_grad_()
    yg = layer_gpu(xg)
    yg.square().sum().backward()
    torch.testing.assert_close(yg.cpu(), y, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(xg.grad.cpu(), gx, atol=1e-4, rtol=1e-4)
    for a, p in zip(grads, [p for p in layer_gpu.parameters() if p.requires_grad], strict=True):
        torch.testing.assert_close(p.grad.cpu(), a, atol=1e-3, rtol=1e-3)
