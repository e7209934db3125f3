"""Name → structured-layer class registry, and the ``make_linear`` factory."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_layer(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a structured linear layer under ``name`` (unique)."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(
                f"layer name {name!r} is already registered to {_REGISTRY[name].__name__}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return deco


def available_layers() -> list[str]:
    """Names of every registered layer family, sorted."""
    return sorted(_REGISTRY)


def get_layer_class(name: str) -> type[nn.Module]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown layer {name!r}; available: {', '.join(available_layers())}"
        ) from None


def make_linear(name: str, in_features: int, out_features: int, **kwargs) -> nn.Module:
    """Build a registered layer: ``make_linear("dc", 784, 10)``."""
    return get_layer_class(name)(in_features, out_features, **kwargs)
