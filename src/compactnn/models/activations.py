"""Activations, registered (``kind="activation"``): ``make_activation(name, slope, inplace)``."""

from __future__ import annotations

from torch import nn

from ..registry import get, register

__all__ = ["make_activation"]


@register("relu", kind="activation")
def relu(negative_slope: float, inplace: bool) -> nn.Module:
    return nn.ReLU(inplace=inplace)


@register("leaky_relu", kind="activation")
def leaky_relu(negative_slope: float, inplace: bool) -> nn.Module:
    if not 0.0 <= negative_slope <= 1.0:
        raise ValueError(f"negative_slope must be in [0, 1], got {negative_slope}")
    return nn.LeakyReLU(negative_slope, inplace=inplace)


@register("identity", kind="activation")
def identity(negative_slope: float, inplace: bool) -> nn.Module:
    return nn.Identity()


@register("tanh", kind="activation")
def tanh(negative_slope: float, inplace: bool) -> nn.Module:
    return nn.Tanh()


@register("gelu", kind="activation")
def gelu(negative_slope: float, inplace: bool) -> nn.Module:
    return nn.GELU()


def make_activation(name: str, negative_slope: float = 0.5, inplace: bool = False) -> nn.Module:
    """Activation module. ``inplace`` (used inside :class:`~compactnn.models.StructuredMLP`,
    after layers whose backward does not need their output) lets the activation's saved tensor
    share storage with the next layer's saved input, halving activation memory."""
    return get("activation", name)(negative_slope, inplace)
