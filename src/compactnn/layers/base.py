"""Common anatomy of every structured linear layer (see shared/DESIGN.md)."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import Tensor, nn


def check_features(in_features: int, out_features: int) -> tuple[int, int]:
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return in_features, out_features


def dense_weight_and_bias(w: Tensor | nn.Linear) -> tuple[Tensor, Tensor | None]:
    """Accept a ``(out, in)`` matrix or an ``nn.Linear``; return ``(W, b)`` detached."""
    if isinstance(w, nn.Linear):
        b = None if w.bias is None else w.bias.detach()
        return w.weight.detach(), b
    if not isinstance(w, Tensor) or w.dim() != 2 or not torch.is_floating_point(w):
        raise ValueError("from_dense expects a 2-D floating-point tensor or an nn.Linear")
    return w.detach(), None


def copy_bias_(layer: nn.Module, b: Tensor | None) -> None:
    """Set ``layer.bias`` (when it has one) to ``b``, or to zeros when ``b`` is ``None``."""
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(b if b is not None else torch.zeros_like(layer.bias))


class StructuredLinear(nn.Module, metaclass=ABCMeta):
    """Base class: ``(..., in_features) → (..., out_features)``, like ``nn.Linear``.

    Subclasses create their parameters, register ``bias`` (``None`` when absent), call
    :meth:`reset_parameters`, and implement :meth:`forward` as one call into
    :mod:`compactnn.functional`, :meth:`to_dense` and :meth:`num_params`.

    No state derived from the parameters is kept between calls: every forward reads the
    parameters as they are now. This departs on purpose from shared/DESIGN.md's "cached kernel
    spectra in eval mode": a cache keyed on a parameter's storage and version counter served
    stale spectra after edits through ``.data`` (``p.data.mul_(2)``, ``p.data = t``), which no
    key can see, and it saves one parameter-sized FFT per call: 1.1–1.8× at batch 1 (≤ 0.1 ms
    per layer), 1.0–1.4× at batch 32 and ≈ 1× at batch 256 (n = 256…4096, CPU, no_grad;
    ``benchmarks/bench_cache.py``, ``results/benchmarks/cache.md``). A caller who can promise
    fixed weights may still pass a precomputed spectrum to the functional ops
    (``c_spectrum=``).
    """

    registry_name: str = ""
    #: human-readable parameter-count formula shown by ``compactnn list``
    param_formula: str = ""
    #: keyword arguments that set the parameter budget → the value the families table uses
    #: (``compactnn families``; a budget-driven ``compress`` tunes these)
    budget_kwargs: dict[str, int | float] = {}

    @classmethod
    def capabilities(cls) -> dict:
        """What the family supports, read by tests, the CLI and the families table:
        ``from_dense`` (a projection of dense weights exists), ``budget_kwargs``."""
        return {"from_dense": callable(getattr(cls, "from_dense", None)),
                "budget_kwargs": dict(cls.budget_kwargs)}

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = check_features(in_features, out_features)

    def _init_bias(self, bias: bool, factory: dict) -> None:
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)

    def check_input(self, x: Tensor) -> None:
        """Raise a clear ``ValueError`` for an input the layer cannot take."""
        if not isinstance(x, Tensor):
            raise ValueError(
                f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}"
            )
        if not torch.is_floating_point(x):
            raise ValueError(
                f"{type(self).__name__} expects a floating-point input, got dtype {x.dtype}"
            )
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape (..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )

    @abstractmethod
    def reset_parameters(self) -> None: ...

    @abstractmethod
    def to_dense(self) -> Tensor:
        """The ``(out_features, in_features)`` matrix ``W`` with
        ``self(x) == x @ W.T + self.dense_bias()``."""

    def dense_bias(self) -> Tensor | None:
        """The effective output bias ``b`` of ``self(x) == x @ W.T + b`` (``None``: no bias).
        Equal to ``self.bias`` except for layers with a bias inside the structure (ACDC)."""
        return self.bias

    @staticmethod
    @abstractmethod
    def num_params(in_features: int, out_features: int, **kwargs) -> int:
        """Number of trainable parameters of a layer built with these arguments."""

    def structure_repr(self) -> str:
        """Structure-specific part of :meth:`extra_repr` (override to add kwargs)."""
        return ""

    def extra_repr(self) -> str:
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}",
                 f"bias={self.bias is not None}"]
        extra = self.structure_repr()
        if extra:
            parts.append(extra)
        parts.append(f"params={sum(p.numel() for p in self.parameters() if p.requires_grad):,}")
        return ", ".join(parts)
