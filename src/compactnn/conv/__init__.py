"""Convolution operators with structured channel coupling (drop-ins for ``nn.Conv2d``) and
their registry (``kind="conv"``): ``make_conv("circulant", 64, 64, 3, padding=1)``."""

from .base import StructuredConv2d
from .operators import CirculantConv2d, DCConv2d, FullConv2d, LeanConv2d, SeparableConv2d
from .registry import available_convs, get_conv_class, make_conv, register_conv

__all__ = [
    "CirculantConv2d",
    "DCConv2d",
    "FullConv2d",
    "LeanConv2d",
    "SeparableConv2d",
    "StructuredConv2d",
    "available_convs",
    "get_conv_class",
    "make_conv",
    "register_conv",
]
