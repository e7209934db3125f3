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


# --- activation-aware initialization (our extension of Proposition 4) -------------------------
from compactnn.experiments.init_variance import norm_trace  # noqa: E402
from compactnn.init import activation_gain, aware_variances, check_scheme  # noqa: E402
from compactnn.models import DCNN, make_model  # noqa: E402

#: (activation, slope, every): the schedules of the paper's Fig. 2 and its best setting
SCHEDULES = [("relu", 0.0, 1), ("relu", 0.0, 2), ("relu", 0.0, 3), ("leaky_relu", 0.2, 1),
             ("leaky_relu", 0.5, 1), ("leaky_relu", 0.5, 3), ("identity", 0.0, 1)]


def _stack(activation, slope, every, depth, init):
    variances = aware_variances(depth, activation, slope, every)[:-1]
    schemes = ([f"paper:{v}" for v in variances] if init == "aware" else ["paper"] * depth)
    acts = [activation if i % every == 0 else "identity" for i in range(1, depth + 1)]
    return schemes, acts


def _within(mean: torch.Tensor, samples: torch.Tensor, target: float, k: float = 4.5) -> bool:
    """|mean − target| below k standard errors of the Monte-Carlo mean (and 1e-12)."""
    se = samples.std() / math.sqrt(len(samples))
    return abs(mean.item() - target) <= k * se.item() + 1e-12


def test_gains_and_variances():
    assert activation_gain("relu") == 0.5 and activation_gain("identity") == 1.0
    assert activation_gain("leaky_relu", 0.5) == pytest.approx(0.625)
    assert aware_variances(6, "relu", nonlinearity_every=3) == [1, 1, 2, 1, 1, 2, 1]
    assert aware_variances(2, "leaky_relu", 0.5) == pytest.approx([1.6, 1.6, 1.0])
    with pytest.raises(ValueError, match="no scale-free gain for activation 'tanh'"):
        aware_variances(3, "tanh")
    assert check_scheme("paper:1.5").c_var == 1.5 and check_scheme("paper").c_var == 2.0
    for bad, msg in (("paper:0", "positive number"), ("paper:x", "positive number"),
                     ("uniform:1", "applies to the schemes"), ("aware", "give it to a model")):
        with pytest.raises(ValueError, match=msg):
            check_scheme(bad)


def test_step_1_the_output_covariance_is_sigma2_over_n_norm_h_times_identity():
    """Lemma 2 for any σ²: E[z zᵀ | h] = (σ²/n)·||h||²·I, off-diagonal entries included,
    by Monte-Carlo over 20,000 draws of (c, d) for a fixed h (each entry within 4.5 standard
    errors of its target)."""
    n, draws, var = 16, 20_000, 1.6
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(n, generator=gen, dtype=torch.float64)
    c = torch.randn(draws, n, generator=gen, dtype=torch.float64) * math.sqrt(var / n)
    d = torch.randint(0, 2, (draws, n), generator=gen).double() * 2 - 1
    idx = (torch.arange(n)[:, None] - torch.arange(n)[None, :]) % n
    z = d * torch.einsum("tij,j->ti", c[:, idx], h)  # z_i = d_i Σ_j c_{(i-j) mod n} h_j
    outer = z[:, :, None] * z[:, None, :]
    mean, se = outer.mean(0), outer.std(0) / math.sqrt(draws)
    target = var / n * h.pow(2).sum() * torch.eye(n, dtype=torch.float64)
    assert torch.all((mean - target).abs() <= 4.5 * se), (mean - target).abs().max()
    # and the library's layer draws exactly this distribution: E||z||² = σ² ||h||²
    z2, _, x2 = norm_trace(n, ["paper:1.6"], ["identity"], 4000, x=h, seed=1)
    assert _within(z2[:, 0].mean(), z2[:, 0], var * x2.item())


@pytest.mark.parametrize(("activation", "slope", "every"), SCHEDULES)
def test_aware_init_keeps_the_expected_norm_at_every_depth(activation, slope, every):
    """Steps 1–3 of :mod:`compactnn.init`'s derivation on the library's layers, 400 networks of
    width 64 and depth 12: (1) E[||z_ℓ||² | h] = σ_ℓ²·||h||² per layer, (2) E[||φ(z)||²/||z||²]
    = g per activation, (3) so the product σ_ℓ² g_ℓ is 1 with the aware init and the expected
    ||h_ℓ||² stays at ||x||² (direct Monte-Carlo, at depths 1–12), while the paper's init
    multiplies it by (σ²g)^ℓ."""
    n, depth, trials = 64, 12, 400
    x = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    schemes, acts = _stack(activation, slope, every, depth, "aware")
    z2, h2, x2 = norm_trace(n, schemes, acts, trials, negative_slope=slope, x=x)
    inputs = torch.cat([x2.expand(trials, 1), h2[:, :-1]], dim=1)
    for layer in range(depth):
        var = check_scheme(schemes[layer]).c_var
        step1 = z2[:, layer] / inputs[:, layer]
        assert _within(step1.mean(), step1, var), (layer, step1.mean(), var)
        step2 = h2[:, layer] / z2[:, layer]
        g = activation_gain(acts[layer], slope)
        assert _within(step2.mean(), step2, g) or acts[layer] == "identity", (layer, g)
        assert var * g == pytest.approx(1.0)  # step 3
    direct = h2 / x2
    for layer in range(depth):  # heavy-tailed with depth: within 4.5 SE of 1
        assert _within(direct[:, layer].mean(), direct[:, layer], 1.0), (layer, direct.mean(0))
    # the paper's init drifts by (2·g)^ℓ wherever the activation is not a ReLU after each layer
    schemes, acts = _stack(activation, slope, every, depth, "paper")
    pz2, ph2, _ = norm_trace(n, schemes, acts, trials, negative_slope=slope, x=x)
    expected = math.prod(2 * activation_gain(a, slope) for a in acts)
    ratio = (ph2[:, -1] / x2).mean().item()
    if expected == 1.0:
        assert _within(torch.tensor(ratio), ph2[:, -1] / x2, 1.0)
    else:  # 2^8 for a ReLU every 3, 1.25^12 ≈ 14.6 for leaky 0.5: far from 1
        assert ratio == pytest.approx(expected, rel=0.35), (ratio, expected)


def test_a_model_with_init_aware_gives_each_layer_its_variance():
    model = DCNN(64, 10, depth=6, activation="relu", nonlinearity_every=3, init="aware")
    inits = [m.init for m in model.modules() if hasattr(m, "init")]
    assert inits == ["paper:1", "paper:1", "paper:2", "paper:1", "paper:1", "paper:2",
                     "paper:1"]
    assert model.config["init"] == "aware"
    dense = make_model("dense-mlp", 64, 10, depth=4, nonlinearity_every=2, init="aware")
    assert [m.init for m in dense.modules() if hasattr(m, "init")] == [
        "paper:1", "paper:2", "paper:1", "paper:2", "paper:1"]
    with pytest.raises(ValueError, match="scale-free gain"):
        DCNN(64, 10, activation="gelu", init="aware")
