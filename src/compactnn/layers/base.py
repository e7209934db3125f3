"""Common anatomy of every structured linear layer (see shared/DESIGN.md)."""

from __future__ import annotations

import copy
import math
from abc import ABCMeta, abstractmethod

import torch
from torch import Tensor, nn


def check_features(in_features: int, out_features: int) -> tuple[int, int]:
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return in_features, out_features


def dense_weight_and_bias(w: Tensor | nn.Linear) -> tuple[Tensor, Tensor | None]:
    """Accept a ``(out, in)`` matrix or an ``nn.Linear``; return ``(W, b)`` detached; non-finite
    values are a ``ValueError``."""
    if isinstance(w, nn.Linear):
        w, b = w.weight.detach(), None if w.bias is None else w.bias.detach()
    elif not isinstance(w, Tensor) or w.dim() != 2 or not torch.is_floating_point(w):
        raise ValueError("from_dense expects a 2-D floating-point tensor or an nn.Linear")
    else:
        w, b = w.detach(), None
    if not torch.isfinite(w).all() or (b is not None and not torch.isfinite(b).all()):
        raise ValueError("from_dense: the dense weights or bias contain NaN or infinity")
    return w, b


def svd(a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Thin SVD, computed in float32 for half-precision inputs (no half SVD kernels)."""
    half = a.dtype in (torch.float16, torch.bfloat16)
    u, s, vh = torch.linalg.svd(a.float() if half else a, full_matrices=False)
    return (u.to(a.dtype), s.to(a.dtype), vh.to(a.dtype)) if half else (u, s, vh)


def copy_bias_(layer: nn.Module, b: Tensor | None) -> None:
    """Set ``layer.bias`` (when it has one) to ``b``, or to zeros when ``b`` is ``None``."""
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(b if b is not None else torch.zeros_like(layer.bias))


def scaled_als(weight: Tensor, m: Tensor, seen: Tensor, iters: int, dense_of, project,
               rows: bool) -> tuple[Tensor, Tensor]:
    """Alternating least squares for ``W ≈ diag(s) · S(v)`` (``rows``) or ``S(v) · diag(s)``:
    ``dense_of(v)`` builds ``S(v)``, ``project(s)`` is the least-squares ``v`` for scales ``s``;
    each half-step is exact in its factor, so the error never increases. Returns ``(v, s)``.

    Start: ``m`` (entries ``seen``) is the rank-one rearrangement ``m_ik = s_i v_k`` of a
    matrix of the structure; its row of largest norm gives ``v``, its unseen entries 0 — or,
    as a second start kept when it ends better, the row's RMS (zeros stall the fit when a row
    of ``W`` meets only them: its scale becomes 0 and stays). A local method with no proof of
    recovery, but from the better of the two starts it recovered every matrix of the
    structure tried (DC, DTNN, AFDF; sizes 1–31, both orientations; and the property tests).
    """
    tiny = torch.finfo(weight.dtype).tiny
    axis = 1 if rows else 0
    row = m.norm(dim=1).argmax()
    starts = [m[row].clone()]
    seen_row = seen[row]
    if not bool(seen_row.all()):
        filled = m[row].clone()
        filled[~seen_row] = filled[seen_row].norm() / max(int(seen_row.sum()), 1) ** 0.5
        starts.append(filled)
    best = None
    for v in starts:
        for _ in range(iters):
            sm = dense_of(v)
            v = project((weight * sm).sum(axis) / (sm * sm).sum(axis).clamp_min(tiny))
        sm = dense_of(v)
        scale = (weight * sm).sum(axis) / (sm * sm).sum(axis).clamp_min(tiny)
        err = float((weight - (scale[:, None] if rows else scale[None, :]) * sm).norm())
        if best is None or err < best[0]:
            best = (err, v, scale)
    return best[1], best[2]


def refine_to_dense_(layer: StructuredLinear, target: Tensor, iters: int,
                     exclude: tuple[str, ...] = ("bias", "a_bias")) -> float:
    """Refine ``layer``'s parameters (all but ``exclude``) in place to reduce
    ``||layer.to_dense() - target||_F / ||target||_F`` by L-BFGS (strong-Wolfe line search), at
    most ``iters`` iterations, in float64. The best iterate is kept, so the error never ends
    above the starting point's. Returns the final relative error.
    Cost: about ``1.25 · iters`` evaluations of ``to_dense`` and its backward."""
    t = target.detach().to(torch.float64)
    work = copy.deepcopy(layer).to(torch.float64)
    names = [n for n, p in work.named_parameters() if p.requires_grad and n not in exclude]
    params = [dict(work.named_parameters())[n] for n in names]
    scale = t.square().sum().clamp_min(torch.finfo(torch.float64).tiny)
    best = [math.inf, [p.detach().clone() for p in params]]

    def loss_now() -> Tensor:
        return (work.to_dense() - t).square().sum() / scale

    with torch.no_grad():
        best[0] = float(loss_now())
    if iters > 0 and params and best[0] > 0:
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(iters), history_size=20,
                                tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_now()
            if not torch.isfinite(loss):  # steer the line search away from overflow
                return torch.tensor(math.inf, dtype=torch.float64)
            loss.backward()
            value = loss.detach().item()
            if value < best[0]:
                best[0], best[1] = value, [p.detach().clone() for p in params]
            return loss

        with torch.enable_grad():
            opt.step(closure)
    with torch.no_grad():
        own = dict(layer.named_parameters())
        for n, v in zip(names, best[1], strict=True):
            own[n].copy_(v)
    return math.sqrt(best[0])


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

    #: ``from_dense`` recovers every matrix of the family's own structure (to rounding); False
    #: for numerical fits that only reduce the error
    from_dense_exact: bool = True

    @classmethod
    def capabilities(cls) -> dict:
        """What the family supports, read by tests, the CLI and the families table:
        ``from_dense`` (the family defines a projection or fit of dense weights),
        ``from_dense_exact`` (it recovers the family's own matrices), ``budget_kwargs``."""
        has = cls.from_dense.__func__ is not StructuredLinear.from_dense.__func__
        return {"from_dense": has, "from_dense_exact": has and cls.from_dense_exact,
                "budget_kwargs": dict(cls.budget_kwargs)}

    @classmethod
    def from_dense(cls, w, **kwargs):
        """A layer of this family approximating the dense matrix ``w`` (``(out, in)`` tensor or
        ``nn.Linear``). Families without a projection raise ``NotImplementedError``."""
        from .registry import available_layers  # here: the registry imports the families

        raise NotImplementedError(
            f"{cls.__name__} ({cls.registry_name or 'unregistered'}) has no from_dense; "
            f"families with one: {', '.join(available_layers(capability='from_dense'))}")

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
        # As nn.Linear, no silent promotion (the FFT ops would otherwise follow whichever dtype
        # won, differently per family); autocast, which mixes dtypes by design, is the exception
        p = next((t for t in self.parameters() if torch.is_floating_point(t)), None)
        if p is not None and x.dtype != p.dtype and not torch.is_autocast_enabled(
                x.device.type):
            raise ValueError(
                f"{type(self).__name__} has {p.dtype} parameters but got a {x.dtype} input; "
                f"convert one of them (layer.to({x.dtype}) or x.to({p.dtype}))"
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
