import pytest
import torch
from torch import nn

from compactnn import DCNN, MLP, StructuredMLP
from compactnn.layers import available_layers


@pytest.mark.parametrize("k", [1, 2, 5, 10, 20])
def test_dcnn_parameter_count_matches_paper_formula(k):
    model = DCNN(3072, 10, depth=k)
    assert model.num_params() == 9216 * k + 3092 == sum(p.numel() for p in model.parameters())
    assert StructuredMLP.predicted_num_params(3072, 10, layer="dc", depth=k) == model.num_params()


@pytest.mark.parametrize("layer", available_layers())
@pytest.mark.parametrize("kw", [dict(depth=0), dict(depth=3, width=20, batchnorm=True),
                                dict(depth=4, nonlinearity_every=2, batchnorm=True,
                                     classifier="dense")])
def test_predicted_num_params_for_every_family(layer, kw):
    model = StructuredMLP(16, 5, layer=layer, **kw)
    assert StructuredMLP.predicted_num_params(16, 5, layer=layer, **kw) == model.num_params()
    assert model(torch.randn(3, 16)).shape == (3, 5)


def test_nonlinearity_every_k_layers():
    model = DCNN(32, 10, depth=6, nonlinearity_every=3, activation="relu")
    acts = [i for i, m in enumerate(model.net) if isinstance(m, nn.ReLU)]
    kinds = [type(m).__name__ for m in model.net]
    assert len(acts) == 2
    assert kinds == ["DiagonalCirculant"] * 3 + ["ReLU"] + ["DiagonalCirculant"] * 3 + ["ReLU"] + [
        "DiagonalCirculant"]
    leaky = DCNN(32, 10, depth=2, activation="leaky_relu", negative_slope=0.3)
    slopes = [m.negative_slope for m in leaky.net if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.3, 0.3]
    ident = DCNN(32, 10, depth=2, activation="identity")
    assert sum(isinstance(m, nn.Identity) for m in ident.net) == 2


def test_batchnorm_precedes_activation_and_classifier_choice():
    model = DCNN(32, 10, depth=2, batchnorm=True, classifier="dense")
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["DiagonalCirculant", "BatchNorm1d", "LeakyReLU"] * 2 + ["Dense"]


def test_rectangular_first_layer_and_image_inputs():
    model = DCNN(784, 10, width=2048, depth=2)
    assert model.net[0].in_features == 784 and model.net[0].out_features == 2048
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)


def test_dense_mlp_same_interface():
    mlp = MLP(784, 10, width=1024, depth=2)
    assert mlp.num_params() == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 10 + 10
    assert mlp(torch.randn(2, 784)).shape == (2, 10)


@pytest.mark.parametrize("kw", [dict(depth=-1), dict(width=0), dict(nonlinearity_every=0),
                                dict(activation="swishy"), dict(layer="nope"),
                                dict(negative_slope=2.0), dict(dropout=1.0),
                                dict(classifier="nope"), dict(depth=1.5)])
def test_invalid_model_configs_raise(kw):
    with pytest.raises(ValueError):
        StructuredMLP(16, 4, **kw)


def test_model_wrappers_refuse_other_families():
    with pytest.raises(ValueError, match="DCNN"):
        DCNN(8, 2, layer="dense")
    with pytest.raises(ValueError, match="MLP"):
        MLP(8, 2, layer="dc")
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        DCNN(16, 2)(torch.randn(3, 15))


def test_shl_is_one_structured_layer_relu_dense():
    from compactnn.models import SHL

    model = SHL(64, 10, layer="toeplitz_like", layer_kwargs={"rank": 2})
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["ToeplitzLike", "ReLU", "Dense"]
    assert model.num_params() == (2 * 2 * 64 + 64) + 64 * 10 + 10
    with pytest.raises(ValueError, match="SHL fixes depth"):
        SHL(64, 10, depth=2)


def test_lenet_counts_and_shapes():
    from compactnn.models import LeNet
    from compactnn.models.cnn import infer_image_shape

    net = LeNet(784, 10)
    assert net.num_params() == 3_274_634
    assert net(torch.randn(2, 784)).shape == (2, 10)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert infer_image_shape(3072) == (3, 32, 32) and infer_image_shape(64) == (1, 8, 8)
    with pytest.raises(ValueError, match="square image"):
        LeNet(100 * 3 + 1, 10)


def test_input_batchnorm():
    model = StructuredMLP(50, 10, depth=1, input_batchnorm=True)
    assert isinstance(model.net[0], nn.BatchNorm1d)
    assert model.num_params() == StructuredMLP.predicted_num_params(
        50, 10, depth=1, input_batchnorm=True)
