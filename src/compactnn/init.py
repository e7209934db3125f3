"""Named initialization schemes for circulant/diagonal-structured layers.

``paper`` is the scheme of Araujo et al. (2020, §5): circulant entries ``c ~ N(0, 2/n)``,
diagonal entries ``d ~ U{-1, +1}``, bias ``~ N(0, σ'^2)`` with a small ``σ' = 0.01``. With ReLU
between layers it keeps the output covariance at ``(2/n)·||x||²·I`` at every depth
(Proposition 4, checked by ``tests/test_init.py`` and ``compactnn reproduce init-variance``).
Schemes are registered (``kind="init"``); ``compactnn list`` shows them.

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

from .registry import get, register

__all__ = ["check_scheme", "init_bias_", "init_circulant_", "init_diagonal_"]


@dataclass(frozen=True)
class _Scheme:
    circulant: str  # "normal" (with std), "uniform", "delta"
    c_var: float | None  # variance times n (None for uniform/delta)
    diagonal: str  # "sign" or "ones"
    bias: str  # "normal", "zeros", "uniform"


for _name, _scheme in (("paper", _Scheme("normal", 2.0, "sign", "normal")),
                       ("lecun", _Scheme("normal", 1.0, "sign", "zeros")),
                       ("normal", _Scheme("normal", None, "sign", "zeros")),
                       ("uniform", _Scheme("uniform", None, "ones", "uniform")),
                       ("identity", _Scheme("delta", None, "ones", "zeros"))):
    register(_name, kind="init")(_scheme)

PAPER_BIAS_STD = 1e-2


def check_scheme(name: str) -> _Scheme:
    return get("init", name)


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
