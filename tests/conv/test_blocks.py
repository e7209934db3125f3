"""The residual blocks of compactnn.conv.blocks: the adjoint of every registered operator, the
IMEX solve against a dense linear solve, the explicit diffusion against dense matrices,
gradients (float64 gradcheck), shapes, cost counts and argument errors."""

import math

import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from compactnn.conv import BLOCKS, adjoint_conv, available_convs, make_block, make_conv
from compactnn.conv.blocks import (
    adjoint_flops,
    diffusion,
    diffusion_symbol,
    implicit_diffusion,
)

F64 = {"dtype": torch.float64}
OPS = [(name, {}) for name in available_convs()] + [
    ("circulant", {"channel_extent": 3}), ("circulant", {"channel_extent": 2}),
    ("circulant", {"channel_extent": 1, "impl": "conv3d"}), ("lean", {"stencil": "square"})]
OP_IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in OPS]
#: operators whose cost is convolutions only (FlopCounterMode counts all of it)
CONV_ONLY = ("full", "lean", "separable")


pytestmark = pytest.mark.usefixtures("one_thread")



def _params(mod):
    return [(n, p) for n, p in mod.named_parameters() if p.requires_grad]


# ------------------------------------------------------------------ the adjoint

@pytest.mark.parametrize(("name", "kw"), OPS, ids=OP_IDS)
@pytest.mark.parametrize("channels", [4, 5])
@pytest.mark.parametrize("k", [3, 5])
def test_adjoint_is_the_true_adjoint(name, kw, channels, k):
    op = make_conv(name, channels, channels, k, padding=k // 2, **kw, **F64)
    x = torch.randn(2, channels, 6, 5, **F64)
    z = torch.randn(2, channels, 6, 5, **F64)
    kx = op(x) - (0 if op.dense_bias() is None else op.dense_bias()[:, None, None])
    kt_z = adjoint_conv(op, z)
    torch.testing.assert_close((kx * z).sum(), (x * kt_z).sum())  # ⟨K x, z⟩ = ⟨x, Kᵀ z⟩
    torch.testing.assert_close(kt_z, F.conv_transpose2d(z, op.to_dense(), padding=k // 2))


@pytest.mark.parametrize(("name", "kw"), OPS, ids=OP_IDS)
def test_adjoint_flops_match_flop_counter_mode(name, kw, fft_flops):
    op = make_conv(name, 6, 6, 3, padding=1, **kw)
    for batch in (1, 3):
        with FlopCounterMode(display=False, custom_mapping=fft_flops) as mode:
            adjoint_conv(op, torch.randn(batch, 6, 7, 8))
        assert adjoint_flops(op, 7, 8, batch) * 2 == mode.get_total_flops()


def test_adjoint_of_a_structured_operator_costs_what_the_operator_costs():
    c = 64
    full = adjoint_flops(make_conv("full", c, c, 3, padding=1), 16, 16)
    for name in ("lean", "separable", "dc", "circulant"):
        op = make_conv(name, c, c, 3, padding=1)
        assert adjoint_flops(op, 16, 16) < full / 5, name


def test_adjoint_refuses_operators_without_a_square_same_size_adjoint():
    for op in (make_conv("full", 3, 4, 3, padding=1), make_conv("full", 4, 4, 3, padding=0),
               make_conv("full", 4, 4, 3, stride=2, padding=1),
               make_conv("full", 4, 4, 2, padding=1)):
        with pytest.raises(ValueError, match="needs a C → C operator with stride 1"):
            adjoint_conv(op, torch.randn(1, op.in_channels, 5, 5))


# ------------------------------------------------------------------ diffusion

def _dense(fn, shape):
    """The matrix of the linear map ``fn`` on tensors of ``shape`` (columns: unit inputs)."""
    n = math.prod(shape)
    eye = torch.eye(n, **F64).reshape(n, *shape)
    return fn(eye).reshape(n, n).T


def _periodic_l(kernel):
    k = kernel.shape[-1]

    def apply(y):
        yp = F.pad(y, (k // 2,) * 4, mode="circular")
        return F.conv2d(yp, kernel.unsqueeze(1), groups=kernel.shape[0])
    return apply


@pytest.mark.parametrize(("c", "height", "width", "k"),
                         [(3, 5, 4, 3), (2, 6, 6, 3), (2, 4, 3, 5), (1, 7, 8, 5), (2, 2, 3, 3)])
@pytest.mark.parametrize("h", [0.1, 1.0, 25.0])
def test_imex_solve_equals_a_dense_linear_solve(c, height, width, k, h):
    kernel = torch.randn(c, k, k, **F64)
    y = torch.randn(2, c, height, width, **F64)
    lmat = _dense(_periodic_l(kernel), (c, height, width))
    a = torch.eye(lmat.shape[0], **F64) + h * lmat.T @ lmat
    want = torch.linalg.solve(a, y.reshape(2, -1).T).T.reshape(y.shape)
    torch.testing.assert_close(implicit_diffusion(y, kernel, h), want)
    # the symbol is the spectrum of LᵀL (periodic): its eigenvalues
    eig = torch.linalg.eigvalsh(lmat.T @ lmat)
    sym = diffusion_symbol(kernel, height, width)
    full = torch.cat([sym, sym[..., 1:width - width // 2].flip(-1)], -1)  # Hermitian half
    torch.testing.assert_close(full.flatten().sort().values, eig, atol=1e-10, rtol=1e-10)


def test_explicit_diffusion_is_l_transpose_l_with_zero_padding():
    kernel = torch.randn(3, 3, 3, **F64)
    shape = (3, 5, 6)
    lmat = _dense(lambda v: F.conv2d(v, kernel.unsqueeze(1), padding=1, groups=3), shape)
    dmat = _dense(lambda v: diffusion(v, kernel), shape)
    torch.testing.assert_close(dmat, lmat.T @ lmat)
    assert torch.linalg.eigvalsh(dmat).min() > -1e-12  # symmetric positive semi-definite


def test_imex_diffusion_is_a_contraction_at_any_step_size():
    kernel = torch.randn(4, 3, 3)
    y = torch.randn(2, 4, 8, 8)
    for h in (0.5, 10.0, 1e4):
        out = implicit_diffusion(y, kernel, h)
        assert (out.norm(dim=(2, 3)) <= y.norm(dim=(2, 3)) * (1 + 1e-5)).all()
    # the channel means (frequency 0 of a kernel with zero sum) pass unchanged
    zero_sum = kernel - kernel.mean((1, 2), keepdim=True)
    torch.testing.assert_close(implicit_diffusion(y, zero_sum, 100.0).mean((2, 3)),
                               y.mean((2, 3)), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ blocks

@pytest.mark.parametrize("block", list(BLOCKS))
@pytest.mark.parametrize(("name", "kw"), OPS[:5], ids=OP_IDS[:5])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_gradcheck_blocks_in_float64(block, name, kw, norm):
    blk = make_block(block, 3, conv=name, conv_kwargs=kw, norm=norm, h=0.7,
                     activation="tanh").double()
    names = [n for n, _ in _params(blk)]
    x = torch.randn(2, 3, 4, 5, **F64, requires_grad=True)

    def f(x, *ps):
        return torch.func.functional_call(blk, dict(zip(names, ps, strict=True)), (x,))

    inputs = (x, *[p.detach().clone().requires_grad_() for _, p in _params(blk)])
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("block", list(BLOCKS))
@pytest.mark.parametrize(("name", "kw"), OPS, ids=OP_IDS)
def test_shapes_and_flops(block, name, kw, fft_flops):
    blk = make_block(block, 6, conv=name, conv_kwargs=kw).eval()
    for shape in ((2, 6, 7, 9), (1, 6, 1, 1), (3, 6, 4, 4)):
        x = torch.randn(shape)
        with FlopCounterMode(display=False, custom_mapping=fft_flops) as mode:
            y = blk(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        parts = blk.flop_parts(*shape[2:], batch=shape[0])
        assert set(parts) <= {"conv", "fft", "norm"} and blk.flops(*shape[2:], shape[0]) == \
            sum(parts.values())
        counted = parts["conv"] + parts.get("fft", 0)
        assert counted * 2 == mode.get_total_flops()


def test_parameters_of_each_block():
    c, k = 8, 3
    op_params = sum(p.numel() for p in make_conv("lean", c, c, k, padding=1,
                                                 bias=False).parameters())
    norm = 2 * c
    counts = {b: sum(p.numel() for p in make_block(b, c, conv="lean").parameters())
              for b in BLOCKS}
    assert counts["explicit"] == counts["imex"] == op_params + norm + c * 9
    assert counts["symmetric"] == op_params + norm
    assert counts["residual"] == 2 * op_params + norm
    # without normalization the operators carry the bias b
    assert sum(p.numel() for p in make_block("symmetric", c, conv="lean", norm="none")
               .parameters()) == op_params + c


def test_symmetric_block_jacobian_is_symmetric():
    """``Y − h·Kᵀ σ(K Y + b)`` has the Jacobian ``I − h·Kᵀ D K`` (``D = σ'``), symmetric: the
    check that the block's ``Kᵀ`` is ``K``'s adjoint inside the block."""
    for name in ("full", "circulant", "dc", "lean", "separable"):
        blk = make_block("symmetric", 3, conv=name, norm="none", activation="tanh").double()
        x = torch.randn(1, 3, 4, 4, **F64)
        jac = torch.autograd.functional.jacobian(blk, x).reshape(48, 48)
        torch.testing.assert_close(jac, jac.T)
        assert torch.linalg.eigvalsh(jac).max() <= 1 + 1e-10  # tanh' ≥ 0: I − h·KᵀDK ≤ I


def test_block_formulas():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 5, 5)
    for name in BLOCKS:
        blk = make_block(name, 4, conv="separable", norm="none", h=0.3)
        with torch.no_grad():
            if name == "residual":
                want = x + 0.3 * blk.op2(torch.relu(blk.op1(x)))
            elif name == "symmetric":
                want = x - 0.3 * adjoint_conv(blk.op, torch.relu(blk.op(x)))
            else:
                y = x + 0.3 * torch.relu(blk.op(x))
                want = (y - 0.3 * diffusion(y, blk.diffusion_weight) if name == "explicit"
                        else implicit_diffusion(y, blk.diffusion_weight, 0.3))
            torch.testing.assert_close(blk(x), want)
    assert "h=0.3" in repr(blk) and "conv='separable'" in repr(blk)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(h=0.0), "h must be a positive finite number"),
    (dict(h=math.inf), "h must be a positive finite number"),
    (dict(norm="layer"), "norm must be one of"),
    (dict(kernel_size=4), "kernel_size must be odd"),
    (dict(conv="bogus"), "unknown conv operator 'bogus'"),
    (dict(conv="circulant", conv_kwargs={"rank": 2}), "does not take 'rank'"),
    (dict(conv="circulant", conv_kwargs={"padding": 2}), "conv_kwargs may not set padding"),
    (dict(conv="circulant", conv_kwargs={"channel_extent": 99}), "channel_extent must be"),
    (dict(activation="swish"), "unknown activation 'swish'"),
])
def test_bad_block_arguments_raise_one_line_value_errors(kw, match):
    with pytest.raises(ValueError, match=match) as err:
        make_block("explicit", 4, **kw)
    assert "\n" not in str(err.value)


def test_unknown_block_and_bad_diffusion_kernel():
    with pytest.raises(ValueError, match="unknown block 'implicit'; available: explicit"):
        make_block("implicit", 4)
    with pytest.raises(ValueError, match="diffusion_kernel must be odd"):
        make_block("imex", 4, diffusion_kernel=2)
    with pytest.raises(ValueError, match="block 'symmetric' does not take 'diffusion_kernel'"):
        make_block("symmetric", 4, diffusion_kernel=3)
