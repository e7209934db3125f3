"""Named initialization schemes for circulant/diagonal-structured layers.

``paper`` is the scheme of Araujo et al. (2020, §5): circulant entries ``c ~ N(0, 2/n)``,
diagonal entries ``d ~ U{-1, +1}``, bias ``~ N(0, σ'^2)`` with a small ``σ' = 0.01``. With ReLU
between layers it keeps the output covariance at ``(2/n)·||x||²·I`` at every depth
(Proposition 4, checked by ``tests/test_init.py`` and ``compactnn reproduce init-variance``).

The alternatives exist to compare against it:

=========  =====================  ==============  ======================================
name       circulant ``c``        diagonal ``d``  bias
=========  =====================  ==============  ======================================
paper      N(0, 2/n)              U{±1}           N(0, 0.01²)
lecun      N(0, 1/n)              U{±1}           0     (variance halves per ReLU layer)
normal     N(0, 1)                U{±1}           0     (variance grows n/2× per layer)
uniform    U(±1/√n)               1               U(±1/√n)  (``nn.Linear``'s default)
identity   e₀ + N(0, 1e-4)        1               0     (near-identity, as ACDC)
=========  =====================  ==============  ======================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["INIT_SCHEMES", "check_scheme", "init_bias_", "init_circulant_", "init_diagonal_",
           "variance_trace"]


@dataclass(frozen=True)
class _Scheme:
    circulant: str  # "normal" (with std), "uniform", "delta"
    c_var: float | None  # variance times n (None for uniform/delta)
    diagonal: str  # "sign" or "ones"
    bias: str  # "normal", "zeros", "uniform"


INIT_SCHEMES: dict[str, _Scheme] = {
    "paper": _Scheme("normal", 2.0, "sign", "normal"),
    "lecun": _Scheme("normal", 1.0, "sign", "zeros"),
    "normal": _Scheme("normal", None, "sign", "zeros"),
    "uniform": _Scheme("uniform", None, "ones", "uniform"),
    "identity": _Scheme("delta", None, "ones", "zeros"),
}

PAPER_BIAS_STD = 1e-2


def check_scheme(name: str) -> _Scheme:
    if name not in INIT_SCHEMES:
        raise ValueError(f"unknown init {name!r}; choose one of {', '.join(INIT_SCHEMES)}")
    return INIT_SCHEMES[name]


@torch.no_grad()
def init_circulant_(c: Tensor, scheme: str, generator: torch.Generator | None = None) -> Tensor:
    """Fill the defining vector of an ``n × n`` circulant (n = ``c.numel()``) in place."""
    s, n = check_scheme(scheme), c.numel()
    if s.circulant == "normal":
        std = 1.0 if s.c_var is None else math.sqrt(s.c_var / n)
        c.normal_(0.0, std, generator=generator)
    elif s.circulant == "uniform":
        c.uniform_(-1 / math.sqrt(n), 1 / math.sqrt(n), generator=generator)
    else:
        c.normal_(0.0, 1e-2, generator=generator)
        c.view(-1)[0] += 1.0
    return c


@torch.no_grad()
def init_diagonal_(d: Tensor, scheme: str, generator: torch.Generator | None = None) -> Tensor:
    s = check_scheme(scheme)
    if s.diagonal == "sign":
        d.copy_(torch.randint(0, 2, d.shape, generator=generator).to(d) * 2 - 1)
    else:
        d.fill_(1.0)
    return d


@torch.no_grad()
def init_bias_(
    b: Tensor | None, scheme: str, fan_in: int, generator: torch.Generator | None = None
) -> Tensor | None:
    if b is None:
        return None
    s = check_scheme(scheme)
    if s.bias == "normal":
        b.normal_(0.0, PAPER_BIAS_STD, generator=generator)
    elif s.bias == "uniform":
        bound = 1 / math.sqrt(max(fan_in, 1))
        b.uniform_(-bound, bound, generator=generator)
    else:
        b.zero_()
    return b


@torch.no_grad()
def variance_trace(n: int, depth: int, trials: int, scheme: str = "paper",
                   x: Tensor | None = None, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Monte-Carlo of Proposition 4 (Araujo et al. 2020).

    Runs ``trials`` independently initialized bias-free DC stacks of width ``n`` and depth
    ``depth`` (ReLU between layers) on a fixed input ``x`` and returns ``(z2, h2, target)``:
    ``z2[t, L]`` = ||z_L||² of the pre-activation after layer L+1 (= the output of the
    depth-(L+1) network of the proposition), ``h2[t, L]`` = ||relu(z_L)||², and
    ``target = n · (2/n)·||x||²``, the proposition's expected ||z||² at every depth.
    """
    from .layers.circulant import DiagonalCirculant  # local: layers import this module

    gen = torch.Generator().manual_seed(seed)
    if x is None:
        x = torch.randn(n, generator=gen, dtype=torch.float64)
    layer = DiagonalCirculant(n, n, bias=False, init=scheme, dtype=torch.float64)
    z2 = torch.zeros(trials, depth, dtype=torch.float64)
    h2 = torch.zeros_like(z2)
    for t in range(trials):
        h = x
        for k in range(depth):
            init_circulant_(layer.c, scheme, generator=gen)
            init_diagonal_(layer.d, scheme, generator=gen)
            z = layer(h)
            h = torch.relu(z)
            z2[t, k], h2[t, k] = z.pow(2).sum(), h.pow(2).sum()
    return z2, h2, 2.0 * x.pow(2).sum()
