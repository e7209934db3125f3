"""Registry-driven checks of the conv operators: every registered operator is tested by
default; ``VARIANTS`` adds structure kwargs worth covering separately."""

import io
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from compactnn.conv import (
    CirculantConv2d,
    FullConv2d,
    StructuredConv2d,
    available_convs,
    get_conv_class,
    make_conv,
    register_conv,
)
from compactnn.functional import conv_circulant as CF
from compactnn.registry import registry

ALL = available_convs()
#: extra constructor kwargs per operator (every operator also runs with none)
VARIANTS = {
    "circulant": [{"impl": "conv3d"}, {"impl": "fft"}, {"channel_extent": 3, "impl": "conv3d"},
                  {"channel_extent": 2, "impl": "fft"}, {"channel_extent": 1}],
    "lean": [{"stencil": "square"}],
}
CASES = [(name, kw) for name in ALL for kw in [{}, *VARIANTS.get(name, [])]]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]
SHAPES = [(4, 4), (3, 5), (5, 3)]  # (C_in, C_out): square, wider, narrower
F64 = {"dtype": torch.float64}


pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(op, x):
    return F.conv2d(x, op.to_dense(), op.dense_bias(), op.stride, op.padding)


def _params(op):
    return [(n, p) for n, p in op.named_parameters() if p.requires_grad]


def test_registry_holds_the_operators_of_issue_12():
    assert {"full", "circulant", "dc", "lean", "separable"} <= set(ALL)
    assert set(ALL) == set(registry("conv").names())
    assert get_conv_class("circulant") is CirculantConv2d
    with pytest.raises(ValueError, match="unknown conv operator 'bogus'; available: .*circulant"):
        make_conv("bogus", 4, 4, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_conv("full")(FullConv2d)
    assert set(available_convs(capability="from_dense")) >= {"full", "circulant", "lean",
                                                               "separable"}
    assert "dc" not in available_convs(capability="from_dense")


@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_equals_conv2d_with_the_dense_kernel(name, kw, shape, stride, padding, bias):
    c_in, c_out = shape
    op = make_conv(name, c_in, c_out, 3, stride=stride, padding=padding, bias=bias, **kw, **F64)
    for batch in (1, 3):
        x = torch.randn(batch, c_in, 7, 9, **F64)
        y = op(x)
        assert y.shape == (batch, c_out, *op.output_size(7, 9))
        torch.testing.assert_close(y, _reference(op, x))
    assert op.to_dense().shape == (c_out, c_in, 3, 3)
    assert (op.dense_bias() is None) == (not bias)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kernel_size", [1, 2, 5])
def test_other_kernel_sizes(name, kw, kernel_size):
    cls = get_conv_class(name)
    if kernel_size % 2 == 0 and not cls.capabilities()["even_kernel"]:
        with pytest.raises(ValueError, match="kernel_size must be odd"):
            make_conv(name, 4, 6, kernel_size, **kw)
        return
    for shape, stride, padding in (((4, 6), 1, 2), ((6, 4), 2, 1), ((5, 5), 2, 0)):
        op = make_conv(name, *shape, kernel_size, stride=stride, padding=padding, **kw, **F64)
        x = torch.randn(2, shape[0], 9, 7, **F64)
        torch.testing.assert_close(op(x), _reference(op, x))


def _circulant_oracle(x, w, c_out, stride, padding):
    """The definition, term by term: Z[c] = Σ_j w[j] ⋆ Y[(c + j - h) mod n], Y = x zero-padded
    to n = max(C_in, C_out) channels."""
    c_in = x.shape[1]
    m, n = w.shape[0], max(c_in, c_out)
    y = torch.cat([x, x.new_zeros(x.shape[0], n - c_in, *x.shape[2:])], 1)
    outs = []
    for c in range(c_out):
        acc = 0
        for j in range(m):
            d = (c + j - (m - 1) // 2) % n
            acc = acc + F.conv2d(y[:, d:d + 1], w[j][None, None], stride=stride,
                                 padding=padding)
        outs.append(acc)
    return torch.cat(outs, 1)


@pytest.mark.parametrize("shape", [(6, 6), (4, 7), (7, 4), (1, 3), (3, 1), (5, 5)])
@pytest.mark.parametrize("extent", [1, 2, 3, None])
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (1, 2)])
def test_circulant_implementations_agree_with_the_definition(shape, extent, stride, padding):
    c_in, c_out = shape
    n = max(shape)
    m = n if extent is None else min(extent, n)
    w = torch.randn(m, 3, 3, **F64)
    b = torch.randn(c_out, **F64)
    x = torch.randn(2, c_in, 8, 7, **F64)
    want = _circulant_oracle(x, w, c_out, stride, padding) + b[:, None, None]
    kw = {"out_channels": c_out, "stride": stride, "padding": padding}
    for impl in ("conv3d", "fft", "auto"):
        torch.testing.assert_close(CF.circulant_conv2d(x, w, b, impl=impl, **kw), want)
    dense = CF.circulant_conv2d_dense(w, c_in, c_out)
    torch.testing.assert_close(F.conv2d(x, dense, b, stride, padding), want)
    # full coupling is the paper's Z[c] = Σ_d K̃[(c - d) mod n] ⋆ Y[d], K̃[s] = w[(h - s) mod n]
    if m == n:
        h = (m - 1) // 2
        c = torch.arange(c_out)[:, None]
        d = torch.arange(c_in)[None, :]
        torch.testing.assert_close(dense, w[(h - (c - d)) % n])


@pytest.mark.parametrize("n", [5, 6])
def test_channel_fft_functions_have_the_adjoint_backward(n):
    # the FFT path's own backward passes: the inverse transform with the bins weighted
    x = torch.randn(2, 3, **F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: CF._RfftLast.apply(t, n), (x,))
    xf = torch.randn(2, n // 2 + 1, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: CF._IrfftLast.apply(t, n), (xf,))


@pytest.mark.parametrize(("layout", "blocked"), [(torch.contiguous_format, True),
                                                 (torch.channels_last, False)])
def test_circulant_fft_layout_paths(monkeypatch, layout, blocked):
    # large maps transpose image by image (_transpose_copy); channels-last inputs not at all
    if blocked:
        monkeypatch.setattr(CF, "_BLOCKED_TRANSPOSE_MIN", 1)
    for c_in, c_out in ((5, 7), (7, 5)):
        w = torch.randn(4, 3, 3, **F64, requires_grad=True)
        b = torch.randn(c_out, **F64)
        x = torch.randn(2, c_in, 4, 3, **F64).contiguous(memory_format=layout)
        x.requires_grad_()
        kw = {"out_channels": c_out, "stride": 2, "padding": 1}
        y = CF.circulant_conv2d_fft(x, w, b, **kw)
        assert y.is_contiguous(memory_format=layout)
        torch.testing.assert_close(y, CF.circulant_conv2d_conv3d(x, w, b, **kw))
        assert torch.autograd.gradcheck(
            lambda x, w, b=b, kw=kw: CF.circulant_conv2d_fft(x, w, b, **kw), (x, w))


def test_circulant_fft_runs_half_precision_in_float32():
    w = torch.randn(8, 3, 3)
    x = torch.randn(2, 8, 6, 6)
    y = CF.circulant_conv2d_fft(x.bfloat16(), w.bfloat16(), out_channels=8, padding=1)
    assert y.dtype == torch.bfloat16
    want = CF.circulant_conv2d_fft(x.bfloat16().float(), w.bfloat16().float(), out_channels=8,
                                   padding=1)
    torch.testing.assert_close(y.float(), want, atol=0.05, rtol=0.02)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", [(3, 4), (5, 3)])  # n even (input zero-padded) and odd
def test_gradcheck_inputs_and_parameters(name, kw, shape):
    op = make_conv(name, *shape, 3, stride=2, padding=1, **kw, **F64)
    names = [n for n, _ in _params(op)]
    x = torch.randn(2, shape[0], 5, 6, **F64, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(op, dict(zip(names, ps, strict=True)), (x,))

    inputs = (x, *[p.detach().clone().requires_grad_() for _, p in _params(op)])
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", SHAPES + [(1, 7), (8, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_num_params_is_the_true_count_and_repr_shows_it(name, kw, shape, bias):
    cls = get_conv_class(name)
    op = cls(*shape, 3, padding=1, bias=bias, **kw)
    actual = sum(p.numel() for _, p in _params(op))
    assert cls.num_params(*shape, 3, bias=bias, **kw) == actual
    text = repr(op)
    assert f"params={actual:,}" in text
    assert f"in_channels={shape[0]}, out_channels={shape[1]}, kernel_size=3" in text
    assert f"bias={bias}" in text and "padding=1" in text
    assert cls.param_formula


def test_parameter_counts_of_the_papers():
    c = 64
    assert FullConv2d.num_params(c, c, 3, bias=False) == 9 * c * c
    assert CirculantConv2d.num_params(c, c, 3, bias=False) == 9 * c  # 9C instead of 9C²
    assert CirculantConv2d.num_params(c, c, 3, bias=False, channel_extent=3) == 27
    lean = get_conv_class("lean")
    assert lean.num_params(c, c, 3, bias=False) == c * c + 5 * c  # C² + 5C (5-point stencil)
    assert get_conv_class("separable").num_params(c, c, 3, bias=False) == 9 * c + c * c
    assert get_conv_class("dc").num_params(c, c, 3, bias=False) == 9 * c + 2 * c


#: structure kwargs the source operator and the fit share
FIT_KWARGS = {"circulant": [{}, {"channel_extent": 3}], "lean": [{}, {"stencil": "square"}]}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 5)])
def test_from_dense_recovers_own_kernel(name, shape):
    cls = get_conv_class(name)
    caps = cls.capabilities()
    if not caps["from_dense"]:
        with pytest.raises(NotImplementedError, match=f"{cls.__name__} \\({name}\\) has no "
                                                      "from_dense; conv operators with one: "):
            cls.from_dense(torch.randn(2, 2, 3, 3))
        return
    assert caps["from_dense_exact"]
    for kw in FIT_KWARGS.get(name, [{}]):
        src = cls(*shape, 3, stride=2, padding=1, **kw, **F64)
        conv = nn.Conv2d(*shape, 3, stride=2, padding=1, **F64)
        with torch.no_grad():
            conv.weight.copy_(src.to_dense())
            conv.bias.copy_(src.bias)
        fitted = cls.from_dense(conv, **kw)
        assert (fitted.stride, fitted.padding) == (2, 1)
        torch.testing.assert_close(fitted.to_dense(), conv.weight, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(fitted.dense_bias(), conv.bias)
        x = torch.randn(2, shape[0], 7, 7, **F64)
        torch.testing.assert_close(fitted(x), conv(x))
        bare = cls.from_dense(src.to_dense(), padding=1, **kw)  # a bare kernel: no bias
        assert bare.bias is None and (bare.stride, bare.padding) == (1, 1)


@pytest.mark.parametrize(("name", "kw"), [("circulant", {}), ("circulant", {"channel_extent": 2}),
                                          ("lean", {}), ("lean", {"stencil": "square"})])
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 5)])
def test_from_dense_of_a_linear_structure_is_the_orthogonal_projection(name, kw, shape):
    # the residual of an orthogonal projection onto a subspace is orthogonal to all of it
    cls = get_conv_class(name)
    kern = torch.randn(shape[1], shape[0], 3, 3, **F64)
    residual = kern - cls.from_dense(kern, **kw).to_dense().detach()
    for _ in range(3):
        other = cls(*shape, 3, **kw, **F64).to_dense().detach()
        assert abs(float((residual * other).sum())) < 1e-10 * float(kern.norm() * other.norm())


def test_separable_from_dense_is_the_best_rank_one_per_input_channel():
    kern = torch.randn(6, 4, 3, 3, **F64)
    fitted = get_conv_class("separable").from_dense(kern).to_dense()
    for i in range(4):
        s = torch.linalg.svdvals(kern[:, i].reshape(6, 9))
        err = (kern[:, i] - fitted[:, i]).norm()
        torch.testing.assert_close(err, s[1:].norm())  # Eckart–Young


def test_from_dense_rejects_what_it_cannot_express():
    cls = get_conv_class("circulant")
    with pytest.raises(ValueError, match="groups=1, dilation=1"):
        cls.from_dense(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="4-D floating-point"):
        cls.from_dense(torch.randn(4, 4, 3))
    with pytest.raises(ValueError, match="square kernel"):
        cls.from_dense(torch.randn(4, 4, 3, 5))
    with pytest.raises(ValueError, match="NaN or infinity"):
        cls.from_dense(torch.full((4, 4, 3, 3), math.nan))



@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (8, 5), (12, 12)])
@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (2, 0)])
def test_flops_match_flop_counter_mode(name, kw, shape, stride, padding, fft_flops):
    op = make_conv(name, *shape, 3, stride=stride, padding=padding, **kw)
    for batch in (1, 3):
        x = torch.randn(batch, shape[0], 9, 8)
        with FlopCounterMode(display=False, custom_mapping=fft_flops) as mode:
            op(x)
        assert op.flops(9, 8, batch) * 2 == mode.get_total_flops()


def test_flops_of_full_coupling_grow_linearly_with_channels_not_quadratically():
    dense = [FullConv2d(c, c, 3, padding=1).flops(32, 32) for c in (64, 256)]
    circ = [CirculantConv2d(c, c, 3, padding=1, impl="fft").flops(32, 32) for c in (64, 256)]
    assert dense[1] == 16 * dense[0]
    assert circ[1] < 6 * circ[0] and circ[1] < dense[1] / 20


@pytest.mark.parametrize("name", ALL)
def test_bad_arguments_raise_one_line_value_errors(name):
    op = make_conv(name, 4, 6, 3, padding=1)

    def raises(match, fn, *args, **kwargs):
        with pytest.raises(ValueError, match=match) as info:
            fn(*args, **kwargs)
        assert "\n" not in str(info.value)

    for bad in (0, -2, 2.5, True, "4"):
        raises("in_channels must be a positive int", make_conv, name, bad, 6, 3)
        raises("out_channels must be a positive int", make_conv, name, 4, bad, 3)
        raises("kernel_size must be a positive int", make_conv, name, 4, 6, bad)
        raises("stride must be a positive int", make_conv, name, 4, 6, 3, stride=bad)
    raises("padding must be a non-negative int", make_conv, name, 4, 6, 3, padding=-1)
    raises("kernel_size must be one int or a pair of equal ints", make_conv, name, 4, 6, (3, 5))
    assert make_conv(name, 4, 6, (3, 3), stride=(2, 2)).kernel_size == 3
    raises("init must be one of", make_conv, name, 4, 6, 3, init="bogus")
    raises("bias must be True or False", make_conv, name, 4, 6, 3, bias="yes")
    raises(r"expects inputs of shape \(N, 4, H, W\) or \(4, H, W\), got \(2, 5, 8, 8\)",
           op, torch.randn(2, 5, 8, 8))
    raises(r"got \(8, 8\)", op, torch.randn(8, 8))
    raises("floating-point", op, torch.ones(2, 4, 8, 8, dtype=torch.long))
    raises("expects a torch.Tensor", op, [[0.0]])
    raises("has torch.float32 parameters but got a torch.float64 input", op,
           torch.randn(2, 4, 8, 8, **F64))
    raises(r"spatial size \(1, 8\) with padding 0 is smaller than the kernel \(3×3\)",
           make_conv(name, 4, 6, 3), torch.randn(2, 4, 1, 8))


def test_structure_kwargs_are_checked():
    for bad in (0, 7, 2.0, True):
        with pytest.raises(ValueError, match=r"channel_extent must be an int in \[1, 6\]"):
            CirculantConv2d(4, 6, 3, channel_extent=bad)
    with pytest.raises(ValueError, match="impl must be one of 'auto', 'conv3d', 'fft'"):
        CirculantConv2d(4, 6, 3, impl="direct")
    with pytest.raises(ValueError, match="impl must be one of"):
        CF.circulant_conv2d(torch.randn(1, 4, 5, 5), torch.randn(2, 3, 3), out_channels=4,
                            impl="direct")
    with pytest.raises(ValueError, match=r"channel extent m=5 must be in \[1, n=4\]"):
        CF.circulant_conv2d(torch.randn(1, 4, 5, 5), torch.randn(5, 3, 3), out_channels=3)
    with pytest.raises(ValueError, match="stencil must be one of 'cross', 'square'"):
        get_conv_class("lean")(4, 6, 3, stencil="plus")
    with pytest.raises(TypeError):  # structure kwargs are keyword-only
        CirculantConv2d(4, 6, 3, 1, 1, True, 2)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=CASE_IDS)
def test_unbatched_empty_batch_layouts_and_state_dict(name, kw):
    op = make_conv(name, 4, 6, 3, padding=1, **kw)
    x = torch.randn(3, 4, 7, 7)
    torch.testing.assert_close(op(x[0]), op(x)[0])
    empty = torch.randn(0, 4, 7, 7, requires_grad=True)
    y = op(empty)
    assert y.shape == (0, 6, 7, 7)
    y.sum().backward()
    assert empty.grad.shape == empty.shape
    assert op(x).is_contiguous()  # as nn.Conv2d: .view works on the output
    last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(op(last), op(x))
    other = make_conv(name, 4, 6, 3, padding=1, **kw)
    buf = io.BytesIO()
    torch.save(op.state_dict(), buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(other(x), op(x))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(64, 64), (32, 64), (64, 32)])
def test_paper_init_is_he_on_the_dense_kernel(name, shape):
    # E Σ_{i,t} K[o,i,t]² = 2 for every output channel o: output variance 2·Var(x) before ReLU
    energies = torch.stack([make_conv(name, *shape, 3, init="paper").to_dense().detach()
                            .square().sum((1, 2, 3)) for _ in range(4)])
    assert abs(energies.mean().item() - 2) < 0.15


def test_full_is_nn_conv2d():
    torch.manual_seed(1)
    ref = nn.Conv2d(5, 7, 3, stride=2, padding=1)
    torch.manual_seed(1)
    op = FullConv2d(5, 7, 3, stride=2, padding=1)
    torch.testing.assert_close(op.weight, ref.weight)
    torch.testing.assert_close(op.bias, ref.bias)
    x = torch.randn(2, 5, 9, 9)
    torch.testing.assert_close(op(x), ref(x))
    assert FullConv2d.num_params(5, 7, 3) == sum(p.numel() for p in ref.parameters())


def test_capabilities_are_declared():
    for name in ALL:
        caps = get_conv_class(name).capabilities()
        assert set(caps) == {"from_dense", "from_dense_exact", "budget_kwargs", "even_kernel"}
    assert get_conv_class("circulant").capabilities()["budget_kwargs"] == {"channel_extent": 3}
    assert get_conv_class("lean").capabilities()["even_kernel"] is False

    class NoFit(StructuredConv2d):  # unregistered: an operator without from_dense
        def _conv(self, x):
            return x

        def reset_parameters(self):
            pass

        def to_dense(self):
            return torch.zeros(1, 1, 1, 1)

        @staticmethod
        def num_params(in_channels, out_channels, kernel_size, **_):
            return 0

        def flops(self, height, width, batch=1):
            return 0

    assert NoFit.capabilities()["from_dense"] is False
    with pytest.raises(NotImplementedError, match=r"NoFit \(unregistered\) has no from_dense"):
        NoFit.from_dense(torch.zeros(1, 1, 1, 1))
