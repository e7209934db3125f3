"""Small convolutional baselines."""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..config import check_kwargs
from ..layers.registry import get_layer_class
from ..registry import register


def infer_image_shape(in_features: int) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a square 1- or 3-channel image with that many values."""
    for ch in (1, 3):
        side = math.isqrt(in_features // ch) if in_features % ch == 0 else 0
        if side and ch * side * side == in_features:
            return ch, side, side
    raise ValueError(f"cannot infer a square image shape from {in_features} features; "
                     "pass input_shape=(C, H, W)")


@register("lenet", kind="model")
class LeNet(nn.Module):
    """LeNet-style CNN (the TensorFlow MNIST tutorial's): conv5×5-32 → ReLU → max-pool 2 →
    conv5×5-64 → ReLU → max-pool 2 → FC-1024 → ReLU → FC-classes. 3,274,634 parameters on
    28×28 inputs (the DC paper's Table 3 quotes a 4.26M-parameter LeNet; its exact variant is
    not given; its count is this model's on 32×32 inputs). ``input_shape``: ``(C, H, W)`` or
    ``(H, W)`` (default: a square image with 1 or 3 channels inferred from ``in_features``).
    Takes flat ``(batch, C·H·W)`` or image ``(batch, C, H, W)`` inputs.

    ``fc``: the family of the hidden FC layer (``"dense"``: ``nn.Linear``, the default; any
    registered linear family otherwise — the registry of :func:`~compactnn.layers.make_linear`
    — built with ``fc_kwargs``). E.g. ``fc="circulant_projection"`` is Cheng et al.'s (ICCV
    2015) circulant CNN: the 3,136→1,024 layer becomes ``(circ(r)·(s ⊙ x))[:1024]`` with a
    3,136-long ``r`` (the first 1,024 rows of a 3,136×3,136 circulant; 4,160 parameters with
    the bias instead of 3,212,288). ``classifier``: the family of the final FC layer
    (``"dense"`` by default, as in Cheng et al., whose last layer stays unstructured; a family
    name builds it with ``fc_kwargs`` too). At their defaults the model, its parameter names
    and its ``config`` are exactly those of the plain LeNet (the keys appear in ``config``
    only when set)."""

    def __init__(self, in_features: int, num_classes: int, *,
                 input_shape: tuple[int, int, int] | None = None, hidden: int = 1024,
                 fc: str = "dense", fc_kwargs: dict | None = None,
                 classifier: str = "dense") -> None:
        super().__init__()
        shape = tuple(input_shape) if input_shape is not None else infer_image_shape(in_features)
        if len(shape) == 2:  # a grayscale (H, W) image
            shape = (1, *shape)
        if len(shape) != 3 or shape[0] * shape[1] * shape[2] != in_features:
            raise ValueError(f"input_shape {shape} does not hold {in_features} features")
        c, h, w = shape
        self.input_shape = shape
        for name, family in (("fc", fc), ("classifier", classifier)):
            if not isinstance(family, str):
                raise ValueError(f"lenet {name} must be a linear family name, got {family!r}")
            if family != "dense":
                get_layer_class(family)  # an unknown family is an error naming the choices
        kw = dict(fc_kwargs or {})
        if kw and fc == "dense" and classifier == "dense":
            raise ValueError("lenet fc_kwargs apply to a structured fc or classifier; both are "
                             "'dense' (nn.Linear)")
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), hidden=hidden)
        # only when set: the default's config (and so finished runs' records) stays the same
        if fc != "dense":
            self.config["fc"] = fc
        if kw:
            self.config["fc_kwargs"] = kw
        if classifier != "dense":
            self.config["classifier"] = classifier

        def linear(family: str, n_in: int, n_out: int) -> nn.Module:
            if family == "dense":
                return nn.Linear(n_in, n_out)
            cls = get_layer_class(family)
            return cls(n_in, n_out, **check_kwargs(f"lenet fc family {family!r}", cls, kw))

        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), linear(fc, 64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
            linear(classifier, hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.input_shape)
        return self.classifier(self.features(x))

    def fc_block(self) -> nn.Module:
        """The fully connected part (flatten, FC, ReLU, classifier): what Cheng et al. make
        circulant, and what :mod:`~compactnn.experiments.circulant_cnn` times."""
        return self.classifier

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
