"""Convolution operators with structured channel coupling (drop-ins for ``nn.Conv2d``), their
registry (``kind="conv"``): ``make_conv("circulant", 64, 64, 3, padding=1)``, and the
reaction-diffusion / symmetric residual blocks built on them: ``make_block("imex", 64,
conv="lean")``."""

from .base import StructuredConv2d
from .blocks import (
    BLOCKS,
    ExplicitRDBlock,
    IMEXRDBlock,
    ResidualBlock,
    SymmetricBlock,
    adjoint_conv,
    make_block,
)
from .operators import CirculantConv2d, DCConv2d, FullConv2d, LeanConv2d, SeparableConv2d
from .registry import available_convs, get_conv_class, make_conv, register_conv

__all__ = [
    "BLOCKS",
    "CirculantConv2d",
    "DCConv2d",
    "ExplicitRDBlock",
    "FullConv2d",
    "IMEXRDBlock",
    "LeanConv2d",
    "ResidualBlock",
    "SeparableConv2d",
    "StructuredConv2d",
    "SymmetricBlock",
    "adjoint_conv",
    "available_convs",
    "get_conv_class",
    "make_block",
    "make_conv",
    "register_conv",
]
