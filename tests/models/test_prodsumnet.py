import math

import pytest
import torch
from torch.nn import functional as F

from compactnn.functional import dct, prodsum_dense, prodsum_matmul
from compactnn.models import LeNet, make_model
from compactnn.models.prodsumnet import (
    PRESETS,
    ProdSumBlock,
    ProdSumNet,
    SpectralLayer,
    SpectralTransform,
    TransformNet,
    prodsumnet_presets,
)
from compactnn.registry import available

F64 = torch.float64


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- transforms ---------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w", [(8, 8), (7, 10), (28, 28)])
def test_dct_transform_is_the_orthonormal_2d_dct_and_inverts(h, w):
    t = SpectralTransform(h, w, transform="dct", dtype=F64)
    eye = torch.eye(h, dtype=F64)
    torch.testing.assert_close(t.c_h @ t.c_h.T, eye)
    torch.testing.assert_close(t.c_h.T @ t.c_h, eye)
    x = torch.randn(3, 2, h, w, dtype=F64)
    z = t(x)
    assert z.shape == (3, 1, 2, h, w)
    # the FFT-based DCT of the functional module along W then H is the same transform
    ref = dct(dct(x).transpose(-1, -2)).transpose(-1, -2)
    torch.testing.assert_close(z[:, 0], ref)
    torch.testing.assert_close(z.square().sum(), x.square().sum())  # orthonormal: Parseval
    torch.testing.assert_close(t.inverse(z), x)


@pytest.mark.parametrize("h,w", [(8, 8), (7, 10), (9, 5)])
def test_dft_transform_layout_parseval_and_inverse(h, w):
    t = SpectralTransform(h, w, transform="dft")
    x = torch.randn(3, 2, h, w, dtype=F64)
    z = t(x)
    assert z.shape == (3, 2, 2, h, w // 2 + 1)
    spec = torch.fft.rfft2(x, norm="ortho")
    torch.testing.assert_close(z[:, 0], spec.real)
    torch.testing.assert_close(z[:, 1], spec.imag)
    # the unitary DFT keeps the norm: columns other than 0 (and W/2 for even W) stand for
    # themselves and their conjugates in the half spectrum
    weight = torch.full((w // 2 + 1,), 2.0, dtype=F64)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    torch.testing.assert_close((z.square().sum((1,)) * weight).sum(), x.square().sum())
    torch.testing.assert_close(torch.fft.fft2(x, norm="ortho").abs().square().sum(),
                               x.square().sum())
    torch.testing.assert_close(t.inverse(z), x)
    chans = SpectralTransform.as_channels(z)  # [Re X_0, Re X_1, Im X_0, Im X_1]
    assert chans.shape == (3, 4, h, w // 2 + 1)
    torch.testing.assert_close(chans[:, 1], spec[:, 1].real)
    torch.testing.assert_close(chans[:, 2], spec[:, 0].imag)


@pytest.mark.parametrize("transform", ["dct", "dft"])
@pytest.mark.parametrize("h,w,keep", [(8, 8, 4), (9, 7, 5), (28, 28, 8), (6, 6, 6),
                                      (5, 8, 5)])
def test_truncation_keeps_the_low_frequencies_and_is_a_projection(transform, h, w, keep):
    t = SpectralTransform(h, w, transform=transform, keep=keep, dtype=F64)
    full = SpectralTransform(h, w, transform=transform, dtype=F64)
    x = torch.randn(2, 1, h, w, dtype=F64)
    z, zf = t(x), full(x)
    if transform == "dct":
        assert z.shape[-2:] == (keep, keep)
        torch.testing.assert_close(z, zf[..., :keep, :keep])
    else:
        rows = sorted({f % h for f in range(-(keep // 2), keep // 2 + 1)})  # |f| <= keep/2
        assert z.shape[-2:] == (len(rows), keep // 2 + 1)
        assert sorted(t.rows.tolist()) == rows
        torch.testing.assert_close(z, zf[..., t.rows, :keep // 2 + 1])
    low = t.inverse(z)  # zero-filled: a low-pass image
    torch.testing.assert_close(t(low), z)  # transforming it back loses nothing more
    torch.testing.assert_close(t.inverse(t(low)), low)
    if t.truncated:
        assert low.square().sum() < x.square().sum()
    else:  # keep covers the whole spectrum
        torch.testing.assert_close(low, x)


def _circular_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``y[n] = Σ_m k[m] x[n − m]`` (indices mod H, W), channel by channel, by rolls."""
    y = torch.zeros_like(x)
    for a in range(k.shape[-2]):
        for b in range(k.shape[-1]):
            y = y + k[..., a, b, None, None] * torch.roll(x, shifts=(a, b), dims=(-2, -1))
    return y


@pytest.mark.parametrize("h,w", [(8, 8), (7, 6)])
def test_dft_multiplier_is_a_circular_full_size_depthwise_convolution(h, w):
    """With transform='dft' and no truncation, m_o = rfft2(k_o) (unnormalised) makes the layer
    exactly x'_o = k_o ⊛ Σ_i A_oi x_i: a 1×1 conv, then a periodic H×W depthwise conv."""
    torch.manual_seed(0)
    net = TransformNet(2 * h * w, 3, input_shape=(2, h, w), transform="dft", channels=(3,),
                       nonlinearity="none", bias=False).double()
    layer = net.layers[0]
    kernel = torch.randn(3, h, w, dtype=F64)
    spec = torch.fft.rfft2(kernel)
    with torch.no_grad():
        layer.m.copy_(torch.stack([spec.real, spec.imag]))
    x = torch.randn(4, 2, h, w, dtype=F64)
    out = net.transform.inverse(layer(net.transform(x)))
    mixed = torch.einsum("oi,nihw->nohw", layer.mix.to_dense(), x)
    torch.testing.assert_close(out, _circular_conv(mixed, kernel))
    # the same map as one nn.functional.conv2d: kernel A_oi·k_o, circular padding, flipped
    full = torch.einsum("oi,ohw->oihw", layer.mix.to_dense(), kernel).flip(-1, -2)
    xp = F.pad(x, (w - 1, 0, h - 1, 0), mode="circular")
    torch.testing.assert_close(out, F.conv2d(xp, full))
    # and the network's features are that convolution's output in the transform domain
    torch.testing.assert_close(net.features(x), net.transform(_circular_conv(mixed, kernel)))


def test_spatial_nonlinearity_is_the_activation_between_two_transforms():
    torch.manual_seed(0)
    kw = dict(input_shape=(1, 6, 6), transform="dft", channels=(2, 2))
    spatial = TransformNet(36, 4, nonlinearity="spatial", **kw).double()
    lin = TransformNet(36, 4, nonlinearity="none", **kw).double()
    lin.load_state_dict(spatial.state_dict())
    x = torch.randn(5, 36, dtype=F64)
    t = spatial.transform
    z = t(x.view(5, 1, 6, 6))
    for layer in spatial.layers:
        z = t(torch.relu(t.inverse(layer(z))))
    torch.testing.assert_close(spatial.features(x), z)
    assert not torch.allclose(spatial(x), lin(x))


def test_lowrank_and_shared_multipliers():
    layer = SpectralLayer(2, 3, (5, 4), parts=2, multiplier="lowrank", multiplier_rank=2).double()
    m = layer.multiplier_tensor()
    u = torch.complex(layer.u[0], layer.u[1])
    v = torch.complex(layer.v[0], layer.v[1])
    ref = torch.einsum("crh,crw->chw", u, v)
    torch.testing.assert_close(torch.complex(m[0], m[1]), ref)
    shared = SpectralLayer(2, 3, (5, 4), multiplier="shared")
    assert shared.multiplier_tensor().shape == (1, 1, 5, 4)
    z = torch.randn(2, 1, 2, 5, 4)
    assert shared(z).shape == (2, 1, 3, 5, 4)


# --- the image-domain ProdSum network ---------------------------------------------------------
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("dilation,pool,act_first", [(1, 2, False), (2, 1, False), (1, 2, True)])
def test_prodsum_block_is_a_conv_and_avg_pool(separable, dilation, pool, act_first):
    """The CNN special case: (I ⊗ P ⊗ P)·Σ T_pq ⊗ S_p ⊗ S_q = avg_pool(conv2d(·))."""
    torch.manual_seed(0)
    blk = ProdSumBlock(3, 4, 10, 9, kernel_size=3, dilation=dilation, separable=separable,
                       pool=pool, act_before_pool=act_first).double()
    with torch.no_grad():
        blk.bias.normal_()
    x = torch.randn(2, 3, 10, 9, dtype=F64)
    d = dilation
    if separable:
        h = F.conv2d(x, blk.t1.permute(1, 2, 0)[..., None], padding=(d, 0), dilation=d)
        h = F.conv2d(h, blk.t2.permute(1, 2, 0)[..., None, :], padding=(0, d), dilation=d)
    else:
        h = F.conv2d(x, blk.t.reshape(3, 3, 4, 3).permute(2, 3, 0, 1), padding=d, dilation=d)
    h = h + blk.bias[:, None, None]
    if act_first:
        ref = F.avg_pool2d(torch.relu(h), pool)
    else:
        ref = torch.relu(F.avg_pool2d(h, pool) if pool > 1 else h)
    out = blk(x.reshape(2, -1), torch.nn.ReLU())
    assert out.shape == (2, 4 * (10 // pool) * (9 // pool))
    torch.testing.assert_close(out, ref.reshape(2, -1))
    # the linear map is the product of sums its factors() list (the fast path batches them)
    lin = blk(x.reshape(2, -1)) - blk.bias.repeat_interleave((10 // pool) * (9 // pool))
    torch.testing.assert_close(lin, prodsum_matmul(x.reshape(2, -1), blk.factors()))
    torch.testing.assert_close(lin, x.reshape(2, -1) @ prodsum_dense(blk.factors()).T)


# --- parameter counts ---------------------------------------------------------------------------
def test_presets_span_1k_to_100k_with_the_papers_3554():
    rows = prodsumnet_presets()
    assert [r["name"] for r in rows] == list(PRESETS)
    counts = {r["name"]: r["num_params"] for r in rows}
    assert counts["psn-3.5k"] == 3554
    assert min(counts.values()) <= 1500 and 60_000 <= max(counts.values()) <= 150_000
    for r in rows:
        model = make_model(r["model"], 784, 10, input_shape=(1, 28, 28), **r["kwargs"])
        assert _count(model) == r["num_params"], r["name"]
        assert model(torch.randn(2, 784)).shape == (2, 10)


def test_presets_count_for_other_inputs():
    for r in prodsumnet_presets((3, 32, 32), 100):
        model = make_model(r["model"], 3072, 100, input_shape=(3, 32, 32), **r["kwargs"])
        assert _count(model) == r["num_params"], r["name"]


def test_reference_cnn_has_3274634_parameters():
    net = LeNet(784, 10, input_shape=(1, 28, 28))
    assert _count(net) == 3_274_634
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


TRANSFORM_CONFIGS = [
    dict(),
    dict(transform="dft"),
    dict(transform="dct", keep=8, channels=(4, 4)),
    dict(transform="dft", keep=9, channels=(3, 5), nonlinearity="spatial"),
    dict(transform="dft", channels=(2,), multiplier="lowrank", multiplier_rank=3),
    dict(transform="dct", channels=(2, 3), multiplier="shared", bias=False),
    dict(channels=(4, 4), mixing="toeplitz", classifier="lowrank",
         classifier_kwargs={"rank": 3}),
    dict(channels=()),
]
PSN_CONFIGS = [
    dict(),
    dict(channels=(6,), kernel_size=5, pool=1, dilation=2),
    dict(channels=(4, 8), separable=True, kernel_size=5, bias=False),
    dict(channels=(3, 3, 3), pool=2, classifier="lowrank", classifier_kwargs={"rank": 2},
         act_before_pool=True),
]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("cls,kw", [(TransformNet, kw) for kw in TRANSFORM_CONFIGS]
                         + [(ProdSumNet, kw) for kw in PSN_CONFIGS])
def test_counts_and_shapes(shape, cls, kw):
    n = math.prod(shape)
    net = cls(n, 10, input_shape=shape, **kw)
    assert _count(net) == cls.predicted_num_params(n, 10, input_shape=shape, **kw)
    assert net(torch.randn(2, n)).shape == (2, 10)
    assert net(torch.randn(2, *shape)).shape == (2, 10)
    if cls is TransformNet:
        assert net.config["channels"] == list(kw.get("channels", (4,)))


def test_registered_and_built_from_a_2d_input_shape():
    assert {"prodsumnet", "transform-net", "lenet"} <= set(available("model"))
    for name in ("prodsumnet", "transform-net"):
        model = make_model(name, 64, 10, input_shape=(8, 8))
        assert model.input_shape == (1, 8, 8)
        assert model(torch.randn(3, 64)).shape == (3, 10)


# --- gradients ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model,kw", [
    ("transform-net", dict(transform="dft", keep=3, channels=(2,), nonlinearity="spatial",
                           multiplier="lowrank", multiplier_rank=2, activation="tanh")),
    ("transform-net", dict(transform="dct", channels=(2, 2), activation="tanh")),
    ("prodsumnet", dict(channels=(2, 2), separable=True, activation="tanh")),
    ("prodsumnet", dict(channels=(2,), act_before_pool=True, activation="tanh")),
])
def test_gradcheck_float64(model, kw):
    torch.manual_seed(0)
    net = make_model(model, 25, 3, input_shape=(1, 5, 5), **kw).double()
    x = torch.randn(2, 25, dtype=F64, requires_grad=True)
    names = [n for n, _ in net.named_parameters()]

    def f(x, *ps):
        return torch.func.functional_call(net, dict(zip(names, ps, strict=True)), (x,))

    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params))


# --- bad arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,kw,match", [
    (TransformNet, dict(transform="wavelet"), "transform must be 'dct' or 'dft'"),
    (TransformNet, dict(nonlinearity="sometimes"), "nonlinearity must be one of"),
    (TransformNet, dict(multiplier="diagonal"), "multiplier must be one of"),
    (TransformNet, dict(multiplier="lowrank", multiplier_rank=0), "multiplier_rank must be"),
    (TransformNet, dict(keep=29), r"keep must be None or an int in \[1, 28\]"),
    (TransformNet, dict(keep=0), "keep must be"),
    (TransformNet, dict(channels=(4, 0)), "channels must be positive ints"),
    (TransformNet, dict(channels=4), "channels must be a list"),
    (TransformNet, dict(mixing="nope"), "unknown layer 'nope'"),
    (TransformNet, dict(classifier="nope"), "unknown layer 'nope'"),
    (TransformNet, dict(input_shape=(1, 27, 28)), "does not hold 784 features"),
    (TransformNet, dict(activation="swishy"), "swishy"),
    (ProdSumNet, dict(kernel_size=4), "kernel_size must be odd"),
    (ProdSumNet, dict(kernel_size=0), "kernel_size must be an int >= 1"),
    (ProdSumNet, dict(dilation=0), "dilation must be an int >= 1"),
    (ProdSumNet, dict(channels=()), "channels must hold at least one"),
    (ProdSumNet, dict(channels=(4, 4, 4, 4, 4)), "block 4: pooling by 2 needs a map"),
    (ProdSumNet, dict(pool=0), "pool must be an int >= 1"),
    (ProdSumNet, dict(input_shape=(2, 28, 28)), "does not hold 784 features"),
])
def test_bad_arguments_raise_one_line_value_errors(cls, kw, match):
    with pytest.raises(ValueError, match=match) as err:
        cls(784, 10, **kw)
    assert "\n" not in str(err.value)


def test_wrong_input_shapes_are_refused():
    net = TransformNet(784, 10, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(N, 784\)"):
        net(torch.randn(2, 783))
