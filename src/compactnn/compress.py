"""Compress a trained model: swap its dense linear layers for structured ones, fitted to the
trained weights, by policy.

``compress(model, policy)`` deep-copies ``model`` and replaces each selected ``nn.Linear``
(and compactnn ``Dense``; optionally each 1×1 ``nn.Conv2d``) by a layer of the policy's family
built with the family's ``from_dense`` (an exact projection — circulant, Toeplitz, low-rank,
hashed — or a numerical fit — DC, DTNN, AFDF by alternating least squares, ACDC and the LDR
families by L-BFGS). Where the family has a size parameter (``budget_kwargs``: low-rank's
``rank``, hashed's ``compression``), a target compression ratio or a parameter budget chooses
it per layer: the largest size whose parameter count (weights and bias) meets the target.
Families of fixed size (circulant, Toeplitz, DC, DTNN, ACDC, AFDF) have one size: a layer
they cannot shrink enough is skipped, and the report says so.

The report lists each replaced layer (old/new parameters, ``‖W − Ŵ‖_F / ‖W‖_F``, whether the
family's fit is exact on its own structure) and each skipped layer with its reason.
:func:`save_compressed` / :func:`load_compressed` store the state dict with the policy that
rebuilds the structure (on a fresh instance of the original architecture, without fitting).
:func:`finetune` trains a compressed model with :func:`compactnn.train.fit`, optionally
distilling from the original (Hinton et al. 2015).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .layers import Dense, get_layer_class

__all__ = ["CompressionPolicy", "CompressionReport", "PointwiseConv", "apply_structure",
           "compress", "compress_run", "evaluate_model", "finetune", "load_compressed",
           "load_compressed_run", "save_compressed"]

#: the ``format`` tag of a file written by :func:`save_compressed`
FORMAT = "compactnn.compressed"
FORMAT_VERSION = 1

#: modules that use their child ``nn.Linear`` s' ``weight`` directly (not through ``forward``):
#: replacing those children would break them
_READS_WEIGHTS = {
    nn.MultiheadAttention: "nn.MultiheadAttention uses out_proj.weight directly "
                           "(F.multi_head_attention_forward), so a replacement would break it",
    nn.TransformerEncoderLayer: "nn.TransformerEncoderLayer's inference fast path (eval, no "
                                "grad) reads linear1/linear2.weight directly",
}
_FIT_ONLY = {"iters"}  # from_dense arguments that tune the fit, not the structure


def _plain(v):
    """A JSON/TOML- and ``weights_only``-safe copy of a kwarg value."""
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    raise ValueError(f"policy kwargs must be numbers, strings, booleans or lists, got "
                     f"{type(v).__name__} {v!r}")


def _signature_names(fn) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _ctor_kwargs(cls) -> set[str]:
    names, _ = _signature_names(cls.__init__)
    return names - {"self", "in_features", "out_features", "bias", "device", "dtype"}


def _fit_kwargs(cls) -> set[str]:
    names, var = _signature_names(cls.from_dense)
    names -= {"cls", "w", "bias"}
    return names | _ctor_kwargs(cls) if var else names


@dataclass(frozen=True)
class CompressionPolicy:
    """What :func:`compress` replaces, and by what.

    - ``family``: a registered linear family with ``from_dense`` (``compactnn list``), and
      ``kwargs`` for it (structure arguments such as ``init``, ``rank``; fit arguments such
      as ``iters``).
    - ``ratio`` (> 1) **or** ``budget`` (a parameter count): the per-layer target, counting
      weights and bias; the family's size parameter (``budget_kwargs``) is chosen as the
      largest meeting it. Neither: the family's default size (or the one in ``kwargs``).
      Giving a size parameter in ``kwargs`` together with a target is a contradiction.
    - ``min_size``: layers with fewer than this many weights (``in × out``) are kept.
    - ``include`` / ``skip``: ``fnmatch`` patterns on the dotted module names (``"*.mlp.*"``);
      a layer is replaced when some name matches ``include`` (empty: every layer) and none
      matches ``skip``.
    - ``conv1x1``: also replace 1×1 ``nn.Conv2d`` (groups 1, zero padding) by the family
      applied over channels (:class:`PointwiseConv`).
    """

    family: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    budget: int | None = None
    min_size: int = 0
    include: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    conv1x1: bool = False

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise in place once
        if not isinstance(self.family, str):
            raise ValueError(f"policy family must be a string, got {self.family!r}")
        cls = get_layer_class(self.family)  # unknown family: ValueError listing them
        if not cls.capabilities().get("from_dense"):
            from .layers import available_layers
            raise ValueError(f"family {self.family!r} has no from_dense (no fit from trained "
                             f"weights); families with one: "
                             f"{', '.join(available_layers(capability='from_dense'))}")
        if self.family == "dense":
            raise ValueError("family 'dense' does not compress; choose a structured family")
        if not isinstance(self.kwargs, Mapping):
            raise ValueError(f"policy kwargs must be a mapping, got {self.kwargs!r}")
        kw = {str(k): _plain(v) for k, v in self.kwargs.items()}
        allowed = _fit_kwargs(cls)
        bad = sorted(set(kw) - allowed)
        if bad:
            raise ValueError(f"family {self.family!r} does not take {', '.join(bad)} "
                             f"(it takes: {', '.join(sorted(allowed)) or 'nothing'})")
        set_(self, "kwargs", kw)
        if self.ratio is not None and self.budget is not None:
            raise ValueError("give a target ratio or a parameter budget, not both")
        if self.ratio is not None:
            if isinstance(self.ratio, bool) or not isinstance(self.ratio, int | float) or not (
                    math.isfinite(self.ratio) and self.ratio > 1):
                raise ValueError(f"ratio must be a number > 1 (dense params / new params), "
                                 f"got {self.ratio!r}")
            set_(self, "ratio", float(self.ratio))
        if self.budget is not None and (isinstance(self.budget, bool) or not isinstance(
                self.budget, int) or self.budget < 1):
            raise ValueError(f"budget must be a positive int (parameters per layer), got "
                             f"{self.budget!r}")
        sized = sorted(set(kw) & set(cls.budget_kwargs))
        if sized and (self.ratio is not None or self.budget is not None):
            raise ValueError(f"kwargs set {', '.join(sized)} and a target "
                             f"{'ratio' if self.ratio is not None else 'budget'} would choose "
                             "it too: give one of them")
        if isinstance(self.min_size, bool) or not isinstance(self.min_size, int) or \
                self.min_size < 0:
            raise ValueError(f"min_size must be a non-negative int, got {self.min_size!r}")
        for name in ("include", "skip"):
            v = getattr(self, name)
            v = (v,) if isinstance(v, str) else v
            if not all(isinstance(p, str) and p for p in v):
                raise ValueError(f"{name} patterns must be non-empty strings, got {v!r}")
            set_(self, name, tuple(v))
        set_(self, "conv1x1", bool(self.conv1x1))

    def __hash__(self) -> int:  # kwargs is a dict: hash the plain form
        return hash(repr(sorted(self.to_dict().items())))

    def to_dict(self) -> dict:
        return {"family": self.family, "kwargs": dict(self.kwargs), "ratio": self.ratio,
                "budget": self.budget, "min_size": self.min_size, "include": list(self.include),
                "skip": list(self.skip), "conv1x1": self.conv1x1}

    @classmethod
    def from_dict(cls, d: Mapping) -> CompressionPolicy:
        if not isinstance(d, Mapping):
            raise ValueError(f"a compression policy must be a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown compression policy key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(names))})")
        if "family" not in d:
            raise ValueError("a compression policy needs a family")
        return cls(**{k: tuple(v) if k in ("include", "skip") and isinstance(v, list) else v
                      for k, v in d.items()})


class PointwiseConv(nn.Module):
    """A 1×1 convolution as a linear layer over channels: ``(N, C_in, H, W) → (N, C_out, H',
    W')`` with the convolution's stride and zero padding (a padded position gives the bias,
    as ``nn.Conv2d``)."""

    def __init__(self, linear: nn.Module, stride=(1, 1), padding=(0, 0)) -> None:
        super().__init__()
        self.linear = linear
        self.stride, self.padding = tuple(stride), tuple(padding)

    def forward(self, x: Tensor) -> Tensor:
        if any(self.padding):
            ph, pw = self.padding
            x = F.pad(x, (pw, pw, ph, ph))
        if self.stride != (1, 1):
            x = x[..., :: self.stride[0], :: self.stride[1]]
        return self.linear(x.movedim(-3, -1)).movedim(-1, -3)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, padding={self.padding}"


@dataclass
class CompressionReport:
    """Per replaced layer: ``name`` (``aliases``: other names of a shared module), ``kind``
    (``linear``/``conv1x1``), ``in_features``, ``out_features``, ``old_params``,
    ``new_params``, ``ratio``, ``rel_error`` (``‖W − Ŵ‖_F / ‖W‖_F``), ``fit`` (``exact``: the
    family's fit recovers its own structure; ``fitted``: a numerical fit), ``kwargs`` (the size
    chosen). Per skipped layer: ``name`` and ``reason``."""

    family: str
    layers: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def old_params(self) -> int:
        return sum(r["old_params"] for r in self.layers)

    @property
    def new_params(self) -> int:
        return sum(r["new_params"] for r in self.layers)

    def to_dict(self) -> dict:
        return {"family": self.family, "layers": [dict(r) for r in self.layers],
                "skipped": [dict(r) for r in self.skipped], "old_params": self.old_params,
                "new_params": self.new_params}

    def table(self) -> str:
        """The report as a Markdown table (replaced layers, then skipped ones)."""
        lines = ["| layer | shape (out × in) | params before | after | ratio | rel. error | "
                 "fit (on its own structure) | size |", "|---|---|---:|---:|---:|---:|---|---|"]
        for r in self.layers:
            size = ", ".join(f"{k}={_fmt_kw(v)}" for k, v in r["kwargs"].items()) or "fixed"
            name = r["name"] + (f" (= {', '.join(r['aliases'])})" if r.get("aliases") else "")
            lines.append(f"| {name} | {r['out_features']} × {r['in_features']} | "
                         f"{r['old_params']:,} | {r['new_params']:,} | {r['ratio']:.1f}× | "
                         f"{r['rel_error']:.3g} | {r['fit']} | {size} |")
        if self.layers:
            total = self.old_params / max(self.new_params, 1)
            lines.append(f"| **total replaced** | | {self.old_params:,} | "
                         f"{self.new_params:,} | {total:.1f}× | | | |")
        for s in self.skipped:
            lines.append(f"| {s['name']} (kept) | | | | | | | {s['reason'].replace('|', '/')} |")
        return "\n".join(lines)


def _fmt_kw(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# --- planning: which layers, and at what size ---------------------------------------------
@dataclass
class _Target:
    name: str
    aliases: list[str]
    module: nn.Module
    kind: str
    in_features: int
    out_features: int
    bias: bool
    kwargs: dict


def _is_candidate(m: nn.Module, conv1x1: bool) -> str | None:
    """``"linear"``/``"conv1x1"`` when ``m`` is a layer compress may replace; ``None`` for one
    it ignores; a string starting with ``"skip:"`` for one it must keep, with the reason."""
    if type(m) in (nn.Linear, Dense):
        return "linear"
    if isinstance(m, nn.Linear):
        return (f"skip:{type(m).__name__} is a subclass of nn.Linear; its owner may rely on "
                "more than its forward")
    if conv1x1 and isinstance(m, nn.Conv2d):
        if type(m) is not nn.Conv2d or m.kernel_size != (1, 1):
            return None
        if m.groups != 1:
            return f"skip:a grouped 1×1 convolution (groups={m.groups})"
        if m.padding_mode != "zeros":
            return f"skip:padding_mode {m.padding_mode!r} (only zero padding is supported)"
        return "conv1x1"
    return None


def _padding(conv: nn.Conv2d) -> tuple[int, int]:
    return (0, 0) if isinstance(conv.padding, str) else tuple(conv.padding)


def _weight(m: nn.Module, kind: str) -> Tensor:
    return m.weight.detach().reshape(m.weight.shape[0], -1) if kind == "conv1x1" \
        else m.weight.detach()


def _choose_size(cls, in_f: int, out_f: int, bias: bool, kw: dict, target: int | None,
                 old: int) -> tuple[dict | None, str]:
    """The structure kwargs for one layer, or ``(None, reason)``."""
    def count(extra: dict) -> int | None:
        try:
            return cls.num_params(in_f, out_f, bias=bias, **{**kw, **extra})
        except (ValueError, TypeError):
            return None

    limit = old - 1 if target is None else min(target, old - 1)
    what = ("no saving over the dense layer" if target is None or target >= old
            else f"target {target:,} parameters")
    sized = {k: v for k, v in cls.budget_kwargs.items() if k not in kw}
    if target is None or not sized:
        n = count({})
        if n is None:
            return None, f"{cls.registry_name} cannot take a {out_f} × {in_f} layer"
        if n > limit:
            given = {k: kw[k] for k in cls.budget_kwargs if k in kw}
            size = (f"with {', '.join(f'{k}={v}' for k, v in given.items())}" if given
                    else "has a fixed size here")
            return None, (f"{cls.registry_name} {size}: {n:,} parameters vs {old:,} dense "
                          f"({old / n:.1f}×); {what}")
        return {}, ""
    key, default = next(iter(sized.items()))
    if isinstance(default, float):  # a fraction in (0, 1] (hashed's compression)
        lo, hi = 0.0, 1.0
        if (count({key: hi}) or math.inf) <= limit:
            return {key: hi}, ""
        for _ in range(60):
            mid = (lo + hi) / 2
            if mid > 0 and (count({key: mid}) or math.inf) <= limit:
                lo = mid
            else:
                hi = mid
        if lo == 0.0 or (count({key: lo}) or math.inf) > limit:
            return None, f"no {cls.registry_name} {key} reaches the {what}"
        return {key: lo}, ""
    smallest = count({key: 1})
    if smallest is None or smallest > limit:
        ratio = "" if smallest is None else f" ({smallest:,} parameters, {old / smallest:.1f}×)"
        return None, f"{cls.registry_name} {key}=1 already misses the {what}{ratio}"
    lo, hi = 1, 2  # exponential then binary search; num_params grows with the size
    while (c := count({key: hi})) is not None and c <= limit and hi < 1 << 30:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        c = count({key: mid})
        lo, hi = (mid, hi) if c is not None and c <= limit else (lo, mid)
    return {key: lo}, ""


def _children(parent: nn.Module):
    """``(name, child)`` for every child slot, a module held twice included (``named_children``
    lists a module once per parent, so it would miss the second slot)."""
    return [(n, c) for n, c in parent._modules.items() if c is not None]


def _plan(model: nn.Module, policy: CompressionPolicy) -> tuple[list[_Target], list[dict]]:
    cls = get_layer_class(policy.family)
    structure = {k: v for k, v in policy.kwargs.items() if k not in _FIT_ONLY}
    names: dict[int, list[str]] = {}
    modules: dict[int, nn.Module] = {}
    parents: dict[int, list[nn.Module]] = {}
    for pname, parent in model.named_modules(remove_duplicate=False):
        for cname, child in _children(parent):
            full = f"{pname}.{cname}" if pname else cname
            if full not in names.get(id(child), []):
                names.setdefault(id(child), []).append(full)
            modules[id(child)] = child
            parents.setdefault(id(child), []).append(parent)
    if not modules:  # the model itself is one layer
        names[id(model)], modules[id(model)], parents[id(model)] = [""], model, []
    owners: dict[int, dict[int, str]] = {}  # parameter → the modules holding it (tied weights)
    for mname, mod in model.named_modules():
        for p in mod.parameters(recurse=False):
            owners.setdefault(id(p), {})[id(mod)] = mname or "(the model)"
    targets, skipped = [], []
    for key, m in modules.items():
        kind = _is_candidate(m, policy.conv1x1)
        if kind is None:
            continue
        mnames = names[key]
        name = mnames[0] or "(the model)"
        if policy.include and not any(fnmatch.fnmatchcase(n, p) for n in mnames
                                      for p in policy.include):
            continue  # not asked for: not part of the report
        owner = next((why for p in parents[key] for t, why in _READS_WEIGHTS.items()
                      if isinstance(p, t)), None)
        if owner is not None:
            skipped.append({"name": name, "reason": owner})
            continue
        if kind.startswith("skip:"):
            skipped.append({"name": name, "reason": kind[5:]})
            continue
        tied = sorted({o for p in m.parameters(recurse=False)
                       for mid, o in owners[id(p)].items() if mid != key})
        if tied:
            skipped.append({"name": name, "reason": f"its parameters are tied to {tied[0]}'s; "
                                                    "replacing it would untie them"})
            continue
        hit = next((p for n in mnames for p in policy.skip if fnmatch.fnmatchcase(n, p)), None)
        if hit is not None:
            skipped.append({"name": name, "reason": f"matches skip pattern {hit!r}"})
            continue
        w = m.weight
        out_f, in_f = w.shape[0], w[0].numel()
        if in_f * out_f < policy.min_size:
            skipped.append({"name": name, "reason": f"{in_f * out_f:,} weights < min_size "
                                                    f"{policy.min_size:,}"})
            continue
        has_bias = m.bias is not None
        old = in_f * out_f + (out_f if has_bias else 0)
        target = (math.floor(old / policy.ratio) if policy.ratio is not None
                  else policy.budget)
        kw, why = _choose_size(cls, in_f, out_f, has_bias, structure, target, old)
        if kw is None:
            skipped.append({"name": name, "reason": why})
            continue
        targets.append(_Target(name, mnames[1:], m, kind, in_f, out_f, has_bias,
                               {**structure, **kw}))
    return targets, skipped


def _wrap(t: _Target, layer: nn.Module) -> nn.Module:
    if t.kind == "conv1x1":
        layer = PointwiseConv(layer, t.module.stride, _padding(t.module))
    return layer.train(t.module.training)


def _replace(model: nn.Module, new: dict[int, nn.Module]) -> nn.Module:
    """Swap every occurrence (shared modules: every parent) of the keys' modules."""
    if id(model) in new:
        return new[id(model)]
    for parent in list(model.modules()):
        for cname, child in _children(parent):
            if id(child) in new:
                setattr(parent, cname, new[id(child)])
    return model


def _factory(m: nn.Module) -> dict:
    p = m.weight
    return {"device": p.device, "dtype": p.dtype}


def compress(model: nn.Module, policy: CompressionPolicy | Mapping
             ) -> tuple[nn.Module, CompressionReport]:
    """``(new_model, report)``: a deep copy of ``model`` with the layers ``policy`` selects
    replaced by fitted layers of its family (the original is untouched).

    Each new layer is fitted in float64 to the layer's weight and bias (``from_dense``), then
    cast to the layer's device and dtype, and put in its train/eval mode; a module shared by
    several parents (or slots) is replaced once and stays shared; a layer whose parameters are
    tied to another module's (an embedding and its output layer) is kept. Cost: the family's
    ``from_dense`` per layer (ACDC at n = 784: seconds).
    """
    policy = policy if isinstance(policy, CompressionPolicy) else \
        CompressionPolicy.from_dict(policy)
    if not isinstance(model, nn.Module):
        raise ValueError(f"compress expects an nn.Module, got {type(model).__name__}")
    model = copy.deepcopy(model)
    cls = get_layer_class(policy.family)
    fit_kw = {k: v for k, v in policy.kwargs.items() if k in _FIT_ONLY}
    exact = cls.capabilities()["from_dense_exact"]
    targets, skipped = _plan(model, policy)
    report = CompressionReport(policy.family, skipped=skipped)
    new: dict[int, nn.Module] = {}
    for t in targets:
        w = _weight(t.module, t.kind).to(torch.float64)
        if not torch.isfinite(w).all():
            raise ValueError(f"layer {t.name}: its weights contain NaN or infinity")
        dense = nn.Linear(t.in_features, t.out_features, bias=t.bias, dtype=torch.float64,
                          device=w.device)
        with torch.no_grad():
            dense.weight.copy_(w)
            if t.bias:
                dense.bias.copy_(t.module.bias.detach())
        layer = cls.from_dense(dense, **t.kwargs, **fit_kw)
        layer = layer.to(**_factory(t.module))
        with torch.no_grad():
            w_hat = layer.to_dense().detach().to(torch.float64)
        norm = float(w.norm())
        diff = float((w - w_hat).norm())
        new_params = sum(p.numel() for p in layer.parameters())
        old_params = sum(p.numel() for p in t.module.parameters())  # frozen ones too
        report.layers.append({
            "name": t.name, "aliases": t.aliases, "kind": t.kind,
            "in_features": t.in_features, "out_features": t.out_features,
            "old_params": old_params, "new_params": new_params,
            "ratio": old_params / max(new_params, 1),
            "rel_error": diff / norm if norm > 0 else (0.0 if diff == 0 else math.inf),
            "fit": "exact" if exact else "fitted", "kwargs": dict(t.kwargs)})
        new[id(t.module)] = _wrap(t, layer)
    return _replace(model, new), report


def apply_structure(model: nn.Module, policy: CompressionPolicy | Mapping) -> nn.Module:
    """``model`` (in place, returned) with the layers ``policy`` selects replaced by freshly
    initialised layers of its family at the sizes :func:`compress` would choose — the
    architecture of a compressed model, without fitting (to load its state dict, or to train
    the structured model from scratch)."""
    policy = policy if isinstance(policy, CompressionPolicy) else \
        CompressionPolicy.from_dict(policy)
    cls = get_layer_class(policy.family)
    targets, _ = _plan(model, policy)
    new = {id(t.module): _wrap(t, cls(t.in_features, t.out_features, bias=t.bias,
                                      **t.kwargs, **_factory(t.module))) for t in targets}
    return _replace(model, new)


# --- save / load --------------------------------------------------------------------------
def save_compressed(path: str | os.PathLike, model: nn.Module, policy: CompressionPolicy,
                    report: CompressionReport | None = None) -> Path:
    """Write ``model``'s state dict with the policy that rebuilds its structure (and the
    report), atomically; :func:`load_compressed` reads it back."""
    from .train.checkpoint import save_checkpoint

    path = Path(path)
    state = {"format": FORMAT, "version": FORMAT_VERSION, "policy": policy.to_dict(),
             "state_dict": model.state_dict(),
             "report": None if report is None else report.to_dict()}
    save_checkpoint(path, state)
    return path


def load_compressed(path: str | os.PathLike,
                    base: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    """The compressed model saved at ``path``: ``base`` (the original architecture: a module,
    copied, or a function returning a fresh one) with the saved policy's structure applied,
    then the saved state dict loaded. Loads with ``weights_only=True``; a file that is not a
    compressed model, or one that does not fit ``base``, is a one-line ``ValueError``."""
    from .train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") != FORMAT or not isinstance(state.get("state_dict"), dict):
        raise ValueError(f"{path}: not a compactnn compressed model (no {FORMAT!r} format tag)")
    if state.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: compressed-model format version {state.get('version')!r}, "
                         f"this compactnn reads {FORMAT_VERSION}")
    policy = CompressionPolicy.from_dict(state["policy"])
    model = base() if callable(base) and not isinstance(base, nn.Module) else copy.deepcopy(base)
    if not isinstance(model, nn.Module):
        raise ValueError(f"load_compressed: base must be an nn.Module or return one, got "
                         f"{type(model).__name__}")
    model = apply_structure(model, policy)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as e:
        problems = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        first = problems[0] if problems else str(e).splitlines()[0]
        raise ValueError(f"{path} does not fit this architecture ({len(problems) or 1} "
                         f"problem(s), first: {first})") from None
    return model


# --- fine-tuning --------------------------------------------------------------------------
def finetune(model: nn.Module, data, train, *, teacher: nn.Module | None = None,
             temperature: float = 4.0, alpha: float = 0.9, seed: int = 0,
             progress: bool = False) -> dict:
    """Train ``model`` (in place) on the in-memory data set ``data`` with
    :func:`compactnn.train.fit` and the :class:`~compactnn.config.TrainConfig` ``train``;
    with ``teacher`` (e.g. the uncompressed model) by distillation
    (:class:`~compactnn.train.Distillation`). Returns ``fit``'s history."""
    from .data import in_memory_loaders
    from .train import Distillation, fit, make_task

    task = make_task(data.task)
    if teacher is not None:
        task = Distillation(copy.deepcopy(teacher).to(train.device), temperature, alpha,
                            base=task)
    torch.manual_seed(seed)
    loaders = in_memory_loaders(data, train.batch_size, train.eval_batch_size, seed)
    return fit(model, loaders, task, train, progress=progress)


def evaluate_model(model: nn.Module, data, train) -> dict:
    """The task's test metrics of ``model`` on ``data`` (``train``: batch size, device)."""
    from .data import in_memory_loaders
    from .train import evaluate, make_task

    task = make_task(data.task)
    loaders = in_memory_loaders(data, train.batch_size, train.eval_batch_size, 0)
    return evaluate(model.to(train.device), loaders["test"], task, train.device, split="test")



# --- run folders (the CLI) ----------------------------------------------------------------
def load_compressed_run(out_dir: str | os.PathLike) -> nn.Module:
    """The model ``compactnn compress … --out DIR`` wrote to ``DIR`` (its ``model.pt``,
    rebuilt on the architecture of the run's ``config.toml``/``run.json`` copied there)."""
    from .runs import run_architecture

    out_dir = Path(out_dir)
    return load_compressed(out_dir / COMPRESSED_FILE, lambda: run_architecture(out_dir))


#: the compressed model's file name in the folder ``compactnn compress`` writes
COMPRESSED_FILE = "model.pt"


def compress_run(run_dir: str | os.PathLike, policy: CompressionPolicy, out_dir: str | os.PathLike,
                 *, finetune_epochs: int = 0, distill: bool = False, lr: float | None = None,
                 temperature: float = 4.0, alpha: float = 0.9, progress: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """``compactnn compress``: compress the trained model of a run folder, evaluate it before
    and after, optionally fine-tune it (``finetune_epochs`` with the run's optimisation
    settings, ``lr`` if given; ``distill``: from the original model as teacher), and write
    ``out_dir`` with ``model.pt`` (:func:`save_compressed`), ``report.json`` and the run's
    ``config.toml``/``run.json`` (the architecture :func:`load_compressed_run` rebuilds)."""
    from .config import RunConfig
    from .runs import check_writable, load_data, load_run_model
    from .train import write_json, write_text

    if distill and not finetune_epochs:
        raise ValueError("--distill needs --finetune-epochs > 0 (distillation is a way to "
                         "fine-tune)")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or \
            finetune_epochs < 0:
        raise ValueError(f"finetune epochs must be a non-negative int, got {finetune_epochs!r}")
    if distill:  # the teacher comes later; check its settings before any work
        from .train import Distillation
        Distillation(nn.Identity(), temperature, alpha)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if out_dir.resolve() == run_dir.resolve():
        raise ValueError(f"--out {out_dir} is the run folder itself: choose another folder")
    original = load_run_model(run_dir)
    cfg = RunConfig.load(run_dir / "config.toml")
    train = dataclasses.replace(cfg.train, epochs=max(finetune_epochs, 1),
                                **({} if lr is None else {"lr": lr}))  # validated here
    check_writable(out_dir, "--out")
    data = load_data(cfg, progress=progress)
    if callable(getattr(data, "loaders", None)):
        raise ValueError(f"{run_dir} trained on {data.name}, which is streamed from its files: "
                         "compactnn compress evaluates and fine-tunes on in-memory data sets "
                         "only (use compactnn.compress on the model in Python)")
    if data.task != "classification" and distill:
        raise ValueError(f"--distill needs a classification run; {run_dir} is {data.task}")
    original = original.to(train.device)
    acc = {"original": evaluate_model(original, data, train)}
    model, report = compress(original, policy)
    log(report.table())
    if not report.layers:
        why = f" (first: {report.skipped[0]['name']}: {report.skipped[0]['reason']})" \
            if report.skipped else ""
        raise ValueError(f"the policy replaces no layer of {run_dir}{why}; nothing written")
    acc["compressed"] = evaluate_model(model, data, train)
    history = None
    if finetune_epochs:
        history = finetune(model, data, train, teacher=original if distill else None,
                           temperature=temperature, alpha=alpha, seed=cfg.seed,
                           progress=progress)
        acc["finetuned"] = evaluate_model(model, data, train)
    from .train import make_task

    primary = make_task(data.task).primary
    line = "  ".join(f"{k} {v[primary]:.4f}" for k, v in acc.items())
    log(f"test {primary} before/after: {line}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("config.toml", "run.json"):
        write_text(out_dir / name, (run_dir / name).read_text())
    save_compressed(out_dir / COMPRESSED_FILE, model.cpu(), policy, report)
    result = {"run": str(run_dir.resolve()), "policy": policy.to_dict(),
              "report": report.to_dict(), "metric": primary,
              "accuracy": {k: v[primary] for k, v in acc.items()},
              "metrics": acc, "finetune": None if not finetune_epochs else {
                  "epochs": finetune_epochs, "lr": train.lr, "distill": distill,
                  "temperature": temperature if distill else None,
                  "alpha": alpha if distill else None,
                  "history": history["epochs"]}}
    write_json(out_dir / "report.json", result)
    log(f"wrote {out_dir} ({COMPRESSED_FILE}, report.json, config.toml)")
    return result
