"""Optional dependencies: the core (layers, functional ops, models, training, IDX/CIFAR readers)
needs only torch and numpy; the experiments, the plots, the scattering features and the
``digits`` data set need the ``experiments`` extra (``pip install 'compactnn[experiments]'``).

- :func:`require` imports an optional module or raises :class:`MissingDependency`, an
  ``ImportError`` whose message is one line naming the package, what needs it and the extra to
  install.
- :func:`progress_bar` is ``tqdm.auto.tqdm`` when tqdm is installed, else a silent stand-in with
  the same methods (progress bars are a nicety, never a reason to fail).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any

__all__ = ["DISTRIBUTIONS", "MissingDependency", "progress_bar", "require"]

#: import name of each optional top-level package → the distribution ``pip`` installs
DISTRIBUTIONS = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "kymatio": "kymatio",
                 "tqdm": "tqdm", "scipy": "scipy"}


class MissingDependency(ImportError):
    """An optional dependency is not installed (or cannot be imported); ``str(e)`` is one line
    that names it, what needs it and the ``pip install`` command that provides it."""

    def __init__(self, message: str, *, package: str, extra: str, what: str | None = None,
                 name: str | None = None) -> None:
        super().__init__(message, name=name)
        self.package = package
        self.extra = extra
        self.what = what


def require(module: str, extra: str = "experiments", what: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"sklearn.datasets"``) and return it, or raise
    :class:`MissingDependency`: "scikit-learn is needed for the digits data set: pip install
    'compactnn[experiments]'". ``what`` says what needs it ("the digits data set")."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        package = DISTRIBUTIONS.get(top, top)
        missing = getattr(e, "name", None)
        if isinstance(e, ModuleNotFoundError) and missing == top:
            problem = "is needed"
        else:  # installed but broken, or one of its own dependencies is missing
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            problem = f"could not be imported ({detail})"
        purpose = f" for {what}" if what else ""
        raise MissingDependency(f"{package} {problem}{purpose}: pip install 'compactnn[{extra}]'",
                                package=package, extra=extra, what=what, name=missing) from e


class _NoBar:
    """What :func:`progress_bar` returns without tqdm (or disabled): iterates, shows nothing."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None,
                 **_: Any) -> None:
        self.iterable = iterable
        self.total = total
        self.n = 0

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            return iter(())
        for item in self.iterable:
            yield item
            self.n += 1

    def __len__(self) -> int:
        if self.total is not None:
            return self.total
        return len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    @staticmethod
    def write(s: str, **kwargs: Any) -> None:
        print(s, **{k: v for k, v in kwargs.items() if k in ("file", "end")})


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any):
    """``tqdm.auto.tqdm(iterable, **kwargs)`` when tqdm is installed and ``disable`` is false;
    otherwise a stand-in that iterates the same items and accepts ``update``, ``set_postfix``,
    ``set_postfix_str``, ``set_description``, ``close`` and ``write`` (printing only the
    latter)."""
    if not disable:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, **kwargs)
    return _NoBar(iterable, **kwargs)
