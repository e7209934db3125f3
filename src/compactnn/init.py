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

A variance suffix sets the circulant variance of ``paper`` or ``lecun``: ``"paper:1"`` is
``c ~ N(0, 1/n)`` with the paper's diagonal and bias. :func:`aware_variances` chooses it per
layer from the activations that follow (our extension of Proposition 4, below);
``StructuredMLP(init="aware")`` applies it.

Activation-aware initialization (our extension of Proposition 4)
-----------------------------------------------------------------
Let ``h`` be a layer's input and ``z = D C h`` its output (bias 0; ``c ~ N(0, σ²/n)`` i.i.d.,
``d ~ U{±1}``, independent of ``h``). Then

1. ``E[z zᵀ | h] = (σ²/n)·||h||²·I`` (Lemma 2 of the paper, any σ²):
   ``z_i = d_i Σ_j c_{(i−j) mod n} h_j``, so ``E[z_i² | h] = (σ²/n) Σ_j h_j²``, and for
   ``i ≠ k`` the factor ``E[d_i d_k] = 0`` removes every cross term. Hence
   ``E[||z||² | h] = σ²·||h||²``.
2. Given ``h`` (and ``D``), ``z`` is a zero-mean Gaussian vector, so each ``z_i`` is symmetric
   about 0 and, for the activation φ that follows the layer,
   ``E[φ(z_i)²] = g_φ · E[z_i²]`` with ``g_φ = 1/2`` (ReLU: half the mass is zeroed),
   ``(1 + a²)/2`` (leaky ReLU of slope a: the negative half is scaled by a) and 1 (identity,
   i.e. no non-linearity after the layer).
3. By the tower rule, ``E||φ(z_ℓ)||² = σ_ℓ² g_ℓ · E||φ(z_{ℓ−1})||²``: the expected squared norm
   is depth-invariant iff ``σ_ℓ² = 1/g_ℓ`` for every layer ℓ.

So the paper's ``σ² = 2`` is the ReLU-after-every-layer case. In a stack with a ReLU every k
layers it multiplies ``E||z||²`` by 2 at each of the ``k − 1`` identity layers out of ``k`` (a
ReLU every 3 layers: ×4 per block, ×2^20 at depth 30); with a leaky ReLU of slope a it
multiplies it by ``1 + a²`` per layer (a = 0.5: ×1.25, ×800 at depth 30). The aware choice is
``σ² = 1`` before an identity, ``2`` before a ReLU and ``2/(1 + a²)`` before a leaky ReLU. Tanh
and GELU have no scale-free gain (their ratio depends on ``E[z²]``), so ``aware`` refuses them.
The bias (``N(0, 10⁻⁴)``) adds ``10⁻⁴·n`` per layer and is ignored here. Checked by Monte-Carlo
in ``tests/test_init.py`` (steps 1–3 separately and the product, including the off-diagonal
covariances of step 1) and shown by ``compactnn reproduce init-variance``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .registry import get, register

__all__ = ["activation_gain", "aware_variances", "check_scheme", "init_bias_",
           "init_circulant_", "init_diagonal_"]


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
    """The registered scheme ``name``; ``"<scheme>:<σ²>"`` sets the circulant variance
    (``c ~ N(0, σ²/n)``) of a scheme drawing ``c`` from a scaled normal (paper, lecun)."""
    if name == "aware":
        raise ValueError("init 'aware' depends on the activations between layers: give it to a "
                         "model (StructuredMLP/DCNN init='aware'), not to a single layer")
    base, sep, var = name.partition(":") if isinstance(name, str) else (name, "", "")
    scheme = get("init", base)
    if not sep:
        return scheme
    try:
        value = float(var)
    except ValueError:
        value = math.nan
    if scheme.circulant != "normal" or scheme.c_var is None:
        raise ValueError(f"init {name!r}: a variance suffix applies to the schemes drawing "
                         "c ~ N(0, σ²/n): paper, lecun")
    if not 0 < value < math.inf:
        raise ValueError(f"init {name!r}: the variance after ':' must be a positive number")
    return dataclasses.replace(scheme, c_var=value)


def activation_gain(activation: str, negative_slope: float = 0.5) -> float:
    """``E[φ(z)²] / E[z²]`` for ``z`` symmetric about 0: 1/2 for ``relu``, ``(1 + a²)/2`` for
    ``leaky_relu`` of slope a, 1 for ``identity``; a ValueError for activations whose ratio
    depends on the scale of ``z`` (tanh, gelu)."""
    if activation == "relu":
        return 0.5
    if activation == "leaky_relu":
        return (1.0 + negative_slope ** 2) / 2.0
    if activation == "identity":
        return 1.0
    raise ValueError(f"init 'aware' has no scale-free gain for activation {activation!r} "
                     "(relu, leaky_relu, identity)")


def aware_variances(depth: int, activation: str, negative_slope: float = 0.5,
                    nonlinearity_every: int = 1) -> list[float]:
    """The circulant variances ``σ²`` (``c ~ N(0, σ²/n)``) that keep ``E||z||²`` constant
    through ``depth`` hidden layers, the activation after every ``nonlinearity_every``-th
    layer, and a classifier layer with nothing after it: ``1/g`` before the activation
    (:func:`activation_gain`), 1 before an identity (module docstring). ``depth + 1`` values."""
    gain = activation_gain(activation, negative_slope)
    return [1.0 / gain if i % nonlinearity_every == 0 else 1.0
            for i in range(1, depth + 1)] + [1.0]


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
