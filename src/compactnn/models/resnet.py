"""ResNets of the low-cost CNN papers (Treister, Ruthotto, Sharoni, Zafrani, Haber 2018;
Ruthotto & Haber 2018; Ephrath et al., LeanConvNets 2020): any registered conv operator in any
block of :mod:`compactnn.conv.blocks`, with per-image cost accounting and a timing helper."""

from __future__ import annotations

import copy
import math
import statistics
import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..config import check_kwargs
from ..conv.blocks import BLOCKS, NORMS, make_block
from ..conv.registry import get_conv_class, make_conv
from ..layers.registry import get_layer_class
from ..registry import register
from .activations import make_activation
from .cnn import infer_image_shape

__all__ = ["TRANSITIONS", "LowCostResNet", "measure_cost"]

#: how the channel count changes between stages
TRANSITIONS = ("conv1x1", "operator")
_OP_FIXED = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "bias", "device",
             "dtype")


def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


@register("lowcost-resnet", kind="model")
class LowCostResNet(nn.Module):
    r"""ResNet for small images with a chosen conv operator and block type.

    Layout (``S = len(widths)`` stages)::

        opening: full k×k conv C_in → widths[0], N, σ
        stage s: `steps` blocks (``block``) at width widths[s] with the operator ``conv``
        between stages: channel change widths[s] → widths[s+1] (``transition``: a full 1×1
        conv, or the operator itself, k×k), N, σ, then 2×2 average pooling
        global average pooling → classifier ``head`` (a ``make_linear`` family)

    ``block``: ``"explicit"``, ``"imex"`` (reaction-diffusion steps), ``"symmetric"``
    (parabolic step with ``Kᵀ``) or ``"residual"`` (``Y + h·K₂ σ(N(K₁ Y))``); see
    :mod:`compactnn.conv.blocks` for the formulas, ``h`` is their step size,
    ``diffusion_kernel`` the size of ``L`` (reaction-diffusion blocks only; default 3).
    ``conv`` + ``conv_kwargs``: the operator of the blocks (``"full"`` is the fully coupled
    baseline of the same widths). ``norm``: ``"batch"`` or ``"none"`` everywhere.
    Defaults: the group's template (Meganet on CIFAR-10: widths [32, 64, 112, 112], 3 steps per
    stage, h = 1), here with the plain residual block and the full operator.

    Inputs: flat ``(batch, C·H·W)`` or ``(batch, C, H, W)``; ``input_shape`` ``(C, H, W)`` or
    ``(H, W)`` (default: a square 1- or 3-channel image inferred from ``in_features``), e.g.
    Fashion-MNIST ``(1, 28, 28)``, CIFAR-10 ``(3, 32, 32)``. ``H`` and ``W`` must survive
    ``S − 1`` halvings. ``self.config`` records every argument.

    Cost accounting: :meth:`num_params`; :meth:`flops` — multiply-adds per image (batch 1),
    :meth:`flop_parts` by kind: ``conv`` (the operators' ``flops`` — convolutions, matrix
    products and their FFTs — the blocks' adjoints and depthwise diffusion), ``fft`` (the IMEX
    solves), ``norm`` (batch norm in inference form: one multiply-add per element), ``pool``
    (2×2 average pooling and global average pooling: one addition per input element),
    ``linear`` (the head: ``in·out`` for ``dense``; another family's matrix products as
    ``FlopCounterMode`` counts them, FFTs not included). Activations, residual additions and
    biases are not counted. :func:`measure_cost` times a training step and inference.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        input_shape: tuple[int, ...] | None = None,
        conv: str = "full",
        conv_kwargs: dict | None = None,
        block: str = "residual",
        widths: tuple[int, ...] = (32, 64, 112, 112),
        steps: int = 3,
        h: float = 1.0,
        norm: str = "batch",
        kernel_size: int = 3,
        diffusion_kernel: int | None = None,
        transition: str = "conv1x1",
        activation: str = "relu",
        head: str = "dense",
        head_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        _positive_int("in_features", in_features)
        _positive_int("num_classes", num_classes)
        shape = tuple(input_shape) if input_shape is not None else infer_image_shape(in_features)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or math.prod(shape) != in_features:
            raise ValueError(f"input_shape {tuple(shape)} does not hold {in_features} features")
        if isinstance(widths, int) or not widths:
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths!r}")
        widths = tuple(_positive_int("each width", w) for w in widths)
        _positive_int("steps", steps)
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(map(repr, BLOCKS))}, "
                             f"got {block!r}")
        if transition not in TRANSITIONS:
            raise ValueError(f"transition must be one of {', '.join(map(repr, TRANSITIONS))}, "
                             f"got {transition!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {norm!r}")
        rd = block in ("explicit", "imex")
        if diffusion_kernel is not None and not rd:
            raise ValueError(f"diffusion_kernel applies to the explicit and imex blocks only, "
                             f"not {block!r}")
        c, height, width = shape
        if min(height, width) < 2 ** (len(widths) - 1):
            raise ValueError(f"input {height}×{width} is too small for {len(widths)} stages "
                             f"({len(widths) - 1} 2×2 poolings)")
        conv_kwargs = check_kwargs(f"conv {conv!r}", get_conv_class(conv), dict(
            conv_kwargs or {}), section="model", given=_OP_FIXED)
        head_kwargs = check_kwargs(f"head {head!r}", get_layer_class(head), dict(
            head_kwargs or {}))
        self.input_shape = shape
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), conv=conv, conv_kwargs=dict(conv_kwargs),
                           block=block, widths=list(widths), steps=steps, h=float(h), norm=norm,
                           kernel_size=kernel_size, transition=transition,
                           activation=activation, head=head, head_kwargs=dict(head_kwargs))
        if rd:
            diffusion_kernel = 3 if diffusion_kernel is None else diffusion_kernel
            self.config["diffusion_kernel"] = diffusion_kernel
        bias = norm == "none"

        def norm_act(ch: int) -> list[nn.Module]:
            return ([nn.BatchNorm2d(ch)] if norm == "batch" else []) + [
                make_activation(activation)]

        block_kw = dict(conv=conv, conv_kwargs=conv_kwargs, kernel_size=kernel_size, h=h,
                        norm=norm, activation=activation)
        if rd:
            block_kw["diffusion_kernel"] = diffusion_kernel
        self.opening = nn.Sequential(
            make_conv("full", c, widths[0], kernel_size, padding=kernel_size // 2, bias=bias),
            *norm_act(widths[0]))
        self.stages = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for s, w in enumerate(widths):
            self.stages.append(nn.Sequential(*(make_block(block, w, **block_kw)
                                               for _ in range(steps))))
            if s + 1 < len(widths):
                nxt = widths[s + 1]
                op = (make_conv("full", w, nxt, 1, bias=bias) if transition == "conv1x1" else
                      make_conv(conv, w, nxt, kernel_size, padding=kernel_size // 2, bias=bias,
                                **conv_kwargs))
                self.transitions.append(nn.Sequential(op, *norm_act(nxt), nn.AvgPool2d(2)))
        self.head = get_layer_class(head)(widths[-1], num_classes, **head_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.input_shape)
        y = self.opening(x)
        for s, stage in enumerate(self.stages):
            y = stage(y)
            if s < len(self.transitions):
                y = self.transitions[s](y)
        return self.head(y.mean((2, 3)))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flop_parts(self, input_shape: tuple[int, ...] | None = None) -> dict[str, int]:
        """Multiply-adds of one forward of one image, by kind (see the class docstring)."""
        shape = self.input_shape if input_shape is None else tuple(input_shape)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3 or shape[0] != self.input_shape[0]:
            raise ValueError(f"input_shape must be ({self.input_shape[0]}, H, W), got {shape}")
        _, height, width = shape
        parts = dict.fromkeys(("conv", "fft", "norm", "pool", "linear"), 0)

        def add_seq(seq: nn.Sequential, hh: int, ww: int) -> tuple[int, int]:
            for m in seq:
                if hasattr(m, "flop_parts"):  # a block
                    for k, v in m.flop_parts(hh, ww).items():
                        parts[k] += v
                elif hasattr(m, "flops"):  # an operator
                    parts["conv"] += m.flops(hh, ww)
                    hh, ww = m.output_size(hh, ww)
                    ch = m.out_channels
                elif isinstance(m, nn.BatchNorm2d):
                    parts["norm"] += m.num_features * hh * ww
                elif isinstance(m, nn.AvgPool2d):
                    parts["pool"] += ch * hh * ww
                    hh, ww = hh // 2, ww // 2
            return hh, ww

        hh, ww = add_seq(self.opening, height, width)
        for s, stage in enumerate(self.stages):
            hh, ww = add_seq(stage, hh, ww)
            if s < len(self.transitions):
                hh, ww = add_seq(self.transitions[s], hh, ww)
        if min(hh, ww) < 1:
            raise ValueError(f"input {height}×{width} is too small for {len(self.stages)} "
                             "stages")
        widths = self.config["widths"]
        parts["pool"] += widths[-1] * hh * ww  # global average pooling
        if self.config["head"] == "dense":
            parts["linear"] = widths[-1] * self.config["num_classes"]
        else:
            p0 = next(self.head.parameters())
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                self.head(torch.zeros(1, widths[-1], dtype=p0.dtype, device=p0.device))
            parts["linear"] = fc.get_total_flops() // 2
        return parts

    def flops(self, input_shape: tuple[int, ...] | None = None) -> int:
        """Multiply-adds of one forward of one image (``input_shape``: default the model's)."""
        return sum(self.flop_parts(input_shape).values())


def measure_cost(model: nn.Module, input_shape: tuple[int, ...], batch: int = 32, *,
                 repeats: int = 5, warmup: int = 1) -> dict:
    """Median wall time of a training step (forward, cross-entropy on random labels, backward,
    an SGD-with-momentum update) on ``batch`` inputs of ``input_shape`` (``(C, H, W)``), and of
    inference per image (eval mode, no autograd, one batch divided by ``batch``), over
    ``repeats`` timed runs after ``warmup`` untimed ones, with the current thread setting. The
    model is copied (its weights and statistics are left as they were). Returns
    ``{"train_step_ms", "infer_ms_per_image", "batch", "threads"}``."""
    _positive_int("batch", batch)
    _positive_int("repeats", repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    m = copy.deepcopy(model)
    p0 = next(m.parameters())
    x = torch.randn(batch, *input_shape, dtype=p0.dtype, device=p0.device)
    with torch.no_grad():
        classes = m.eval()(x[:1]).shape[-1]
    y = torch.randint(0, classes, (batch,), device=p0.device)
    opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            m(x)

    def timed(fn) -> float:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            if p0.device.type == "cuda":
                torch.cuda.synchronize(p0.device)
            t0 = time.perf_counter()
            fn()
            if p0.device.type == "cuda":
                torch.cuda.synchronize(p0.device)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    m.train()
    train = timed(step)
    m.eval()
    infer_s = timed(infer)
    return {"train_step_ms": train * 1e3, "infer_ms_per_image": infer_s * 1e3 / batch,
            "batch": batch, "threads": torch.get_num_threads()}
