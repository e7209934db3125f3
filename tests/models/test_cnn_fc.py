"""LeNet's ``fc`` option (issue 14, Cheng et al.'s circulant CNN): the default model is the
plain LeNet bit for bit (names, init, ``config``), a structured FC computes with its
``to_dense``, and the parameter counts follow the families' formulas."""

import pytest
import torch
from torch import nn

from compactnn.config import RunConfig
from compactnn.layers import available_layers, get_layer_class
from compactnn.models import LeNet, make_model
from compactnn.runs import build_model, model_args


class _PlainLeNet(nn.Module):
    """The LeNet of before the ``fc`` option, verbatim: the reference the default must equal."""

    def __init__(self, c=1, h=28, w=28, hidden=1024, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))


#: the default's ``config`` (recorded in every finished lenet run's config.toml and so in the
#: digests the prodsumnet experiment reuses runs by): it must not change
PINNED_CONFIG = {"in_features": 784, "num_classes": 10, "input_shape": [1, 28, 28],
                 "hidden": 1024}


@pytest.mark.parametrize("kwargs", [{}, {"fc": "dense", "classifier": "dense"},
                                    {"fc": "dense", "fc_kwargs": {}}])
def test_default_is_the_plain_lenet_bit_for_bit(kwargs):
    torch.manual_seed(3)
    ref = _PlainLeNet()
    torch.manual_seed(3)
    net = LeNet(784, 10, **kwargs)
    a, b = ref.state_dict(), net.state_dict()
    assert list(a) == list(b)  # same names in the same order
    for k in a:
        assert torch.equal(a[k], b[k]), k  # same init from the same seed
    assert [type(m) for m in net.modules()][1:] == [type(m) for m in ref.modules()][1:]
    assert net.config == PINNED_CONFIG
    x = torch.randn(3, 784)
    torch.testing.assert_close(net(x), ref.classifier(ref.features(x.view(3, 1, 28, 28))),
                               rtol=0, atol=0)


def test_default_run_config_records_no_new_keys():
    cfg = RunConfig.from_dict({"model": {"name": "lenet"}, "data": {"name": "fashion-mnist"}})
    model = build_model(cfg, (28, 28), 10)
    assert model_args(model, cfg) == {"name": "lenet", "input_shape": [1, 28, 28],
                                      "hidden": 1024}
    circ = build_model(RunConfig.from_dict({"model": {"name": "lenet",
                                                      "fc": "circulant_projection"}}),
                       (28, 28), 10)
    assert circ.config["fc"] == "circulant_projection" and "classifier" not in circ.config


def test_circulant_fc_computes_with_its_to_dense():
    torch.manual_seed(0)
    net = LeNet(784, 10, fc="circulant_projection", classifier="circulant").double()
    fc, clf = net.classifier[1], net.classifier[3]
    assert type(fc).__name__ == "CirculantProjection" and type(clf).__name__ == "Circulant"
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    h = net.features(x).flatten(1)
    h = torch.relu(h @ fc.to_dense().T + fc.bias)
    expected = h @ clf.to_dense().T + clf.bias
    torch.testing.assert_close(net(x), expected)
    torch.testing.assert_close(net(x.flatten(1)), expected)


@pytest.mark.parametrize("family", available_layers())
def test_every_family_builds_as_fc_with_its_parameter_count(family):
    torch.manual_seed(0)
    net = LeNet(64, 10, hidden=32, fc=family)  # 8×8 inputs: FC 256 → 32
    convs = (1 * 32 * 25 + 32) + (32 * 64 * 25 + 64)
    cls = get_layer_class(family)
    assert net.num_params() == convs + cls.num_params(256, 32) + 32 * 10 + 10
    fc = net.classifier[1]
    if family == "dense":  # the default: nn.Linear itself, as before the option
        assert type(fc) is nn.Linear
    else:
        assert isinstance(fc, cls) and tuple(fc.to_dense().shape) == (32, 256)
    assert net(torch.randn(2, 64)).shape == (2, 10)


def test_cheng_sizes_on_28x28():
    dense = LeNet(784, 10)
    circ = make_model("lenet", 784, 10, input_shape=(1, 28, 28), fc="circulant_projection",
                      fc_kwargs={"sign_seed": 1})
    # FC 3136→1024: a 3,136-long r + 1,024 biases instead of 3,136·1,024 + 1,024
    assert dense.num_params() - circ.num_params() == 3136 * 1024 + 1024 - (3136 + 1024)
    assert circ.config["fc_kwargs"] == {"sign_seed": 1}
    assert circ.fc_block() is circ.classifier
    again = LeNet(784, 10, fc="circulant_projection", fc_kwargs={"sign_seed": 1})
    assert torch.equal(again.classifier[1].signs, circ.classifier[1].signs)


@pytest.mark.parametrize("kwargs, match", [
    ({"fc": "nope"}, "unknown layer 'nope'"),
    ({"classifier": 3}, "classifier must be a linear family name"),
    ({"fc_kwargs": {"sign_seed": 1}}, "fc_kwargs apply to a structured fc"),
    ({"fc": "circulant_projection", "fc_kwargs": {"rank": 2}}, "does not take 'rank'"),
])
def test_bad_fc_options_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LeNet(784, 10, **kwargs)
