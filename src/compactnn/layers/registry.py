"""Linear-layer families on the generic registry (``kind="linear"``), and ``make_linear``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..registry import registry

__all__ = ["available_layers", "get_layer_class", "make_linear", "register_layer"]

_LINEAR = registry("linear")


def register_layer(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a structured linear layer under ``name`` (unique)."""
    return _LINEAR.register(name)


def available_layers(*, capability: str | None = None) -> list[str]:
    """Names of the registered layer families, sorted; with ``capability`` (e.g.
    ``"from_dense"``) only the families that declare it."""
    return sorted(_LINEAR.names(capability=capability))


def get_layer_class(name: str) -> type[nn.Module]:
    return _LINEAR.get(name)


def make_linear(name: str, in_features: int, out_features: int, **kwargs) -> nn.Module:
    """Build a registered layer: ``make_linear("dc", 784, 10)``."""
    return get_layer_class(name)(in_features, out_features, **kwargs)
