"""Proposition 4 of Araujo et al. (2020), checked by Monte-Carlo."""

import math

import pytest
import torch

from compactnn.experiments.init_variance import variance_trace
from compactnn.init import init_circulant_
from compactnn.registry import available

N, DEPTH, TRIALS = 256, 32, 200


def _trace(init: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z2, h2, _ = variance_trace(N, DEPTH, TRIALS, init, x=x)
    return z2, h2


def test_paper_init_keeps_output_variance_at_2_over_n_norm_x():
    """Var(N(x)_i) = (2/n)·||x||² at every depth, proven through its two exact steps:
    (a) conditionally on the layer input h, E||D C h||² = n·(2/n)·||h||² (Lemma 2, fixed u);
    (b) the pre-activation is symmetric, so E||relu(z)||² = ½·E||z||² (Lemma 2, ReLU part).
    Chained by the tower rule these give the proposition at any depth. The direct Monte-Carlo
    average is checked too, at depths where it is not dominated by rare large values."""
    torch.manual_seed(0)
    x = torch.randn(N, dtype=torch.float64)
    target = 2.0 / N * x.pow(2).sum()
    z2, h2 = _trace("paper", x)
    gain = z2[:, 1:] / (2.0 * h2[:, :-1])  # (a): conditional mean 1 at each depth
    assert torch.all((gain.mean(0) - 1).abs() < 0.12), gain.mean(0)
    assert abs(gain.mean().item() - 1) < 0.03
    half = h2 / z2  # (b)
    assert torch.all((half.mean(0) - 0.5).abs() < 0.05), half.mean(0)
    direct = z2.mean(0) / N / target  # average over coordinates and networks
    assert torch.all((direct[:4] - 1).abs() < 0.2), direct
    assert direct[0].item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("init", "gain"), [("normal", N / 2), ("lecun", 0.5)])
def test_naive_inits_explode_or_vanish(init, gain):
    """c ~ N(0, 1) multiplies the variance by n/2 per ReLU layer; c ~ N(0, 1/n) halves it."""
    torch.manual_seed(0)
    x = torch.randn(N, dtype=torch.float64)
    z2, _ = _trace(init, x)
    ratio = z2.mean(0) / N / (2.0 / N * x.pow(2).sum())
    slope = (ratio[-1].log() - ratio[0].log()).item() / (DEPTH - 1)
    assert math.isclose(slope, math.log(gain), abs_tol=0.25), (slope, math.log(gain))
    if gain > 1:
        assert ratio[-1] > 1e50
    else:
        assert ratio[-1] < 1e-6


def test_init_schemes_validate_names():
    assert "paper" in available("init")
    with pytest.raises(ValueError, match="unknown init"):
        init_circulant_(torch.empty(4), "xavier-ish")
