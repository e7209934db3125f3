"""One small registry mechanism for every kind of named component.

``@register("dc", kind="linear")`` files a class (or function) under a name; ``get(kind, name)``
returns it, with a one-line error listing the choices for an unknown name; a duplicate name is
an error. A kind's registry fills itself on first use by importing the module that defines its
members, so ``available("experiment")`` works without the caller importing anything.

Capabilities live on the registered object, not in lists elsewhere: a class answers
``capabilities()`` (e.g. a linear layer: ``from_dense`` support, the kwargs that set its
parameter budget) and :meth:`Registry.names` filters by them; :func:`accepted_kwargs` reads the
keyword arguments a builder takes from its signature (the CLI uses it to reject flags a model
does not take).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["KINDS", "Registry", "accepted_kwargs", "available", "capabilities", "get",
           "register", "registry"]

#: kind → the module whose import registers its members
KINDS: dict[str, str | None] = {
    "linear": "compactnn.layers",
    "conv": "compactnn.conv",
    "model": "compactnn.models",
    "activation": "compactnn.models.activations",
    "init": "compactnn.init",
    "dataset": "compactnn.data",
    "task": "compactnn.train.tasks",
    "schedule": "compactnn.train.schedules",
    "optimizer": "compactnn.train.schedules",
    "experiment": "compactnn.experiments",
}


#: how errors name a member of a kind
_LABELS = {"linear": "layer", "conv": "conv operator"}


class Registry:
    """Name → object for one kind. Names keep registration order."""

    def __init__(self, kind: str, module: str | None = None) -> None:
        self.kind, self._module = kind, module
        self.label = _LABELS.get(kind, kind)
        self._items: dict[str, Any] = {}

    def _populate(self) -> None:
        if self._module is not None:
            importlib.import_module(self._module)  # a failed import is retried next time
            self._module = None

    def register(self, name: str, obj: Any = None):
        """Register ``obj`` under ``name``; without ``obj``, a decorator. Sets
        ``obj.registry_name`` where the object allows it."""

        def deco(o):
            if not isinstance(name, str) or not name:
                raise ValueError(f"a {self.label} name must be a non-empty string, got {name!r}")
            if name in self._items:
                raise ValueError(f"{self.label} name {name!r} is already registered to "
                                 f"{getattr(self._items[name], '__name__', self._items[name])}")
            self._items[name] = o
            try:
                o.registry_name = name
            except (AttributeError, TypeError):
                pass
            return o

        return deco if obj is None else deco(obj)

    def get(self, name: str) -> Any:
        self._populate()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.label} {name!r}; available: "
                             f"{', '.join(self.names()) or '(none)'}") from None

    def names(self, *, capability: str | None = None) -> list[str]:
        """Registered names in registration order; with ``capability``, only those whose
        ``capabilities()[capability]`` is truthy."""
        self._populate()
        if capability is None:
            return list(self._items)
        return [n for n, o in self._items.items() if capabilities(o).get(capability)]

    def __contains__(self, name: object) -> bool:
        self._populate()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())



_REGISTRIES = {kind: Registry(kind, module) for kind, module in KINDS.items()}


def registry(kind: str) -> Registry:
    try:
        return _REGISTRIES[kind]
    except KeyError:
        raise ValueError(f"unknown registry kind {kind!r}; kinds: {', '.join(KINDS)}") from None


def register(name: str, *, kind: str) -> Callable[[Any], Any]:
    """Decorator: ``@register("dc", kind="linear")``."""
    return registry(kind).register(name)


def get(kind: str, name: str) -> Any:
    return registry(kind).get(name)


def available(kind: str, *, capability: str | None = None) -> list[str]:
    return registry(kind).names(capability=capability)


def capabilities(obj: Any) -> dict[str, Any]:
    """What a registered object declares it can do (``{}`` when it declares nothing)."""
    caps = getattr(obj, "capabilities", None)
    return dict(caps()) if callable(caps) else {}


def accepted_kwargs(obj: Callable) -> set[str] | None:
    """Keyword arguments ``obj`` (a class or function) accepts, following ``**kwargs`` into a
    class's base classes; ``None`` when it accepts any."""
    targets = [c.__init__ for c in inspect.getmro(obj) if "__init__" in vars(c)] \
        if inspect.isclass(obj) else [obj]
    names: set[str] = set()
    for fn in targets:
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None
