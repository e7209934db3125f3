"""Small convolutional baselines."""

from __future__ import annotations

import math

from torch import Tensor, nn

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
    Takes flat ``(batch, C·H·W)`` or image ``(batch, C, H, W)`` inputs."""

    def __init__(self, in_features: int, num_classes: int, *,
                 input_shape: tuple[int, int, int] | None = None, hidden: int = 1024) -> None:
        super().__init__()
        shape = tuple(input_shape) if input_shape is not None else infer_image_shape(in_features)
        if len(shape) == 2:  # a grayscale (H, W) image
            shape = (1, *shape)
        if len(shape) != 3 or shape[0] * shape[1] * shape[2] != in_features:
            raise ValueError(f"input_shape {shape} does not hold {in_features} features")
        c, h, w = shape
        self.input_shape = shape
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), hidden=hidden)
        self.features = nn.Sequential(
            nn.Conv2d(c, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.input_shape)
        return self.classifier(self.features(x))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
