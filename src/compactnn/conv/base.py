"""Common anatomy of every convolution operator (see shared/DESIGN.md): a drop-in for
``nn.Conv2d(in_channels, out_channels, kernel_size, stride=…, padding=…, bias=…)`` with square
kernels, integer stride and padding, no dilation or groups."""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod

import torch
from torch import Tensor, nn

from ..functional.conv_circulant import conv_output_size

__all__ = ["INIT_SCHEMES", "StructuredConv2d", "check_conv_args", "conv_weight_and_bias"]

#: ``paper``: He-normal on the operator's kernel (``E Σ_{i,t} K[o,i,t]² = 2`` per output
#: channel, each factor drawn so that the product has it); ``uniform``: ``nn.Conv2d``'s default
#: (every factor ``U(±1/√fan_in)`` over its own fan-in, bias likewise)
INIT_SCHEMES = ("paper", "uniform")


def _square_int(name: str, v, minimum: int) -> int:
    """``v`` as one int: an int or a pair of equal ints (``nn.Conv2d`` accepts both)."""
    if isinstance(v, (tuple, list)) and len(v) == 2 and v[0] == v[1]:
        v = v[0]
    elif isinstance(v, (tuple, list)):
        raise ValueError(f"{name} must be one int or a pair of equal ints (square kernels, "
                         f"equal strides and paddings only), got {v!r}")
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        kind = "a positive int" if minimum == 1 else "a non-negative int"
        raise ValueError(f"{name} must be {kind}, got {v!r}")
    return v


def check_conv_args(in_channels, out_channels, kernel_size, stride, padding
                    ) -> tuple[int, int, int, int, int]:
    """Validated ``(in_channels, out_channels, kernel_size, stride, padding)`` as ints."""
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return (in_channels, out_channels, _square_int("kernel_size", kernel_size, 1),
            _square_int("stride", stride, 1), _square_int("padding", padding, 0))


def conv_weight_and_bias(w) -> tuple[Tensor, Tensor | None, int | None, int | None]:
    """Accept a ``(C_out, C_in, k, k)`` kernel or an ``nn.Conv2d``; return ``(K, b, stride,
    padding)`` detached (stride and padding ``None`` for a bare kernel); a convolution this
    anatomy cannot express, or non-finite values, are a ``ValueError``."""
    stride = padding = b = None
    if isinstance(w, nn.Conv2d):
        if w.groups != 1 or tuple(w.dilation) != (1, 1) or w.padding_mode != "zeros" \
                or isinstance(w.padding, str):
            raise ValueError("from_dense takes an nn.Conv2d with groups=1, dilation=1, "
                             "padding_mode='zeros' and numeric padding")
        stride, padding = _square_int("stride", tuple(w.stride), 1), \
            _square_int("padding", tuple(w.padding), 0)
        b = None if w.bias is None else w.bias.detach()
        w = w.weight.detach()
    elif not isinstance(w, Tensor) or w.dim() != 4 or not torch.is_floating_point(w):
        raise ValueError("from_dense expects a 4-D floating-point kernel (C_out, C_in, k, k) "
                         "or an nn.Conv2d")
    else:
        w = w.detach()
    if w.shape[-1] != w.shape[-2]:
        raise ValueError(f"from_dense needs a square kernel, got {tuple(w.shape[-2:])}")
    if not torch.isfinite(w).all() or (b is not None and not torch.isfinite(b).all()):
        raise ValueError("from_dense: the dense kernel or bias contain NaN or infinity")
    return w, b, stride, padding


def normal_(t: Tensor | None, var: float) -> None:
    if t is not None:
        with torch.no_grad():
            t.normal_(0.0, math.sqrt(var))


def uniform_(t: Tensor | None, fan_in: float) -> None:
    """``U(±1/√fan_in)``: ``nn.Conv2d``'s ``kaiming_uniform_(a=√5)`` bound, and its bias's."""
    if t is not None:
        bound = 1 / math.sqrt(max(fan_in, 1))
        with torch.no_grad():
            t.uniform_(-bound, bound)


class StructuredConv2d(nn.Module, metaclass=ABCMeta):
    """Base class: ``(N, C_in, H, W) → (N, C_out, H_o, W_o)`` (or unbatched ``(C_in, H, W)``),
    ``H_o = (H + 2·padding - k) // stride + 1``, like ``nn.Conv2d``.

    Subclasses create their parameters, register ``bias`` (``None`` when absent), call
    :meth:`reset_parameters`, and implement :meth:`_conv` as one call into
    :mod:`compactnn.functional.conv_circulant` (or ``torch.nn.functional``), :meth:`to_dense`,
    :meth:`num_params` and :meth:`flops`. ``op(x) == F.conv2d(x, op.to_dense(),
    op.dense_bias(), op.stride, op.padding)``.
    """

    registry_name: str = ""
    #: human-readable parameter-count formula (``k`` kernel size, ``n = max(C_in, C_out)``)
    param_formula: str = ""
    #: keyword arguments that set the parameter budget → a representative value
    budget_kwargs: dict[str, int | float] = {}
    #: ``from_dense`` recovers every kernel of the operator's own structure (to rounding)
    from_dense_exact: bool = True
    #: even kernel sizes are supported (operators built on a centre tap need odd ones)
    even_kernel: bool = True

    @classmethod
    def capabilities(cls) -> dict:
        """What the operator supports, read by tests and the CLI: ``from_dense`` (a projection
        of dense kernels exists), ``from_dense_exact`` (it recovers the operator's own kernels),
        ``budget_kwargs``, ``even_kernel``."""
        has = cls.from_dense.__func__ is not StructuredConv2d.from_dense.__func__
        return {"from_dense": has, "from_dense_exact": has and cls.from_dense_exact,
                "budget_kwargs": dict(cls.budget_kwargs), "even_kernel": cls.even_kernel}

    @classmethod
    def from_dense(cls, w, **kwargs):
        """An operator of this family approximating the dense kernel ``w`` (``(C_out, C_in, k,
        k)`` tensor or ``nn.Conv2d``). Operators without a projection raise
        ``NotImplementedError``."""
        from .registry import available_convs

        raise NotImplementedError(
            f"{cls.__name__} ({cls.registry_name or 'unregistered'}) has no from_dense; "
            f"conv operators with one: {', '.join(available_convs(capability='from_dense'))}")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 init="paper") -> None:
        super().__init__()
        (self.in_channels, self.out_channels, self.kernel_size, self.stride,
         self.padding) = check_conv_args(in_channels, out_channels, kernel_size, stride, padding)
        if not self.even_kernel and self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for {type(self).__name__} (its stencil "
                             f"is centred on a tap), got {self.kernel_size}")
        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {', '.join(map(repr, INIT_SCHEMES))}, "
                             f"got {init!r}")
        self.init = init

    def _fill_(self, t: Tensor, fan_in: float, gain: float) -> None:
        """Draw ``t`` by the operator's scheme: ``uniform`` ``U(±1/√fan_in)`` (``nn.Conv2d``'s
        default), ``paper`` ``N(0, gain/fan_in)`` (gain 2 for a channel coupling followed by a
        ReLU, He's; 1 for a stencil that keeps the variance)."""
        if self.init == "uniform":
            uniform_(t, fan_in)
        else:
            normal_(t, gain / fan_in)

    def _init_bias(self, bias: bool, factory: dict) -> None:
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be True or False, got {bias!r}")
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, **factory))
        else:
            self.register_parameter("bias", None)

    def _reset_bias(self, fan_in: float) -> None:
        """Bias of the schemes: zero (``paper``) or ``U(±1/√fan_in)`` (``uniform``)."""
        if self.bias is None:
            return
        if self.init == "uniform":
            uniform_(self.bias, fan_in)
        else:
            with torch.no_grad():
                self.bias.zero_()

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        k, s, p = self.kernel_size, self.stride, self.padding
        return conv_output_size(height, k, s, p), conv_output_size(width, k, s, p)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear ``ValueError`` for an input the operator cannot take."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
        if not torch.is_floating_point(x):
            raise ValueError(f"{name} expects a floating-point input, got dtype {x.dtype}")
        if x.dim() not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"{name} expects inputs of shape (N, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W), got {tuple(x.shape)}")
        k, p = self.kernel_size, self.padding
        if min(x.shape[-2:]) + 2 * p < k:
            raise ValueError(f"{name}: input of spatial size {tuple(x.shape[-2:])} with padding "
                             f"{p} is smaller than the kernel ({k}×{k})")
        p0 = next((t for t in self.parameters() if torch.is_floating_point(t)), None)
        if p0 is not None and x.dtype != p0.dtype and not torch.is_autocast_enabled(
                x.device.type):
            raise ValueError(f"{name} has {p0.dtype} parameters but got a {x.dtype} input; "
                             f"convert one of them (op.to({x.dtype}) or x.to({p0.dtype}))")

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if x.dim() == 3:
            return self._conv(x.unsqueeze(0)).squeeze(0)
        return self._conv(x)

    @abstractmethod
    def _conv(self, x: Tensor) -> Tensor:
        """The operator on a batched input ``(N, C_in, H, W)``: one functional call."""

    @abstractmethod
    def reset_parameters(self) -> None: ...

    @abstractmethod
    def to_dense(self) -> Tensor:
        """The ``(C_out, C_in, k, k)`` kernel ``K`` with ``self(x) == F.conv2d(x, K,
        self.dense_bias(), self.stride, self.padding)``."""

    def dense_bias(self) -> Tensor | None:
        """The effective output bias (``None``: no bias)."""
        return self.bias

    @staticmethod
    @abstractmethod
    def num_params(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> int:
        """Number of trainable parameters of an operator built with these arguments."""

    @abstractmethod
    def flops(self, height: int, width: int, batch: int = 1) -> int:
        """Multiply-adds of one forward on ``batch`` images of ``height × width`` (per image at
        ``batch=1``): those of the convolutions and matrix products plus the conventional count
        of each FFT (:func:`~compactnn.functional.conv_circulant.rfft_macs`); elementwise
        operations and the bias are not counted (as ``FlopCounterMode`` does not)."""

    def structure_repr(self) -> str:
        """Structure-specific part of :meth:`extra_repr` (override to add kwargs)."""
        return ""

    def extra_repr(self) -> str:
        parts = [f"in_channels={self.in_channels}", f"out_channels={self.out_channels}",
                 f"kernel_size={self.kernel_size}", f"stride={self.stride}",
                 f"padding={self.padding}", f"bias={self.bias is not None}"]
        extra = self.structure_repr()
        if extra:
            parts.append(extra)
        parts.append(f"init={self.init!r}")
        parts.append(f"params={sum(p.numel() for p in self.parameters() if p.requires_grad):,}")
        return ", ".join(parts)
