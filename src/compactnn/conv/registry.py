"""Convolution operators on the generic registry (``kind="conv"``), and ``make_conv``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..registry import registry

__all__ = ["available_convs", "get_conv_class", "make_conv", "register_conv"]

_CONV = registry("conv")


def register_conv(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a convolution operator under ``name`` (unique)."""
    return _CONV.register(name)


def _populate() -> None:
    # the operators register themselves when their module is imported
    from . import operators  # noqa: F401


def available_convs(*, capability: str | None = None) -> list[str]:
    """Names of the registered conv operators, sorted; with ``capability`` (e.g.
    ``"from_dense"``) only those that declare it."""
    _populate()
    return sorted(_CONV.names(capability=capability))


def get_conv_class(name: str) -> type[nn.Module]:
    _populate()
    return _CONV.get(name)


def make_conv(name: str, in_channels: int, out_channels: int, kernel_size, **kwargs) -> nn.Module:
    """Build a registered conv operator: ``make_conv("circulant", 64, 64, 3, padding=1)``."""
    return get_conv_class(name)(in_channels, out_channels, kernel_size, **kwargs)
