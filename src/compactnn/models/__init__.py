"""Model builders, registered (``kind="model"``): ``make_model(name, in_features, classes)``."""

from torch import nn

from ..registry import accepted_kwargs, available, get
from .activations import make_activation
from .cnn import LeNet
from .mlp import DCNN, MLP, SHL, StructuredMLP
from .prodsumnet import ProdSumNet, TransformNet, prodsumnet_presets
from .resnet import LowCostResNet, measure_cost
from .youtube8m import YouTube8MFrameModel, YouTube8MVideoModel

__all__ = ["DCNN", "MLP", "SHL", "LeNet", "LowCostResNet", "ProdSumNet", "StructuredMLP",
           "TransformNet", "YouTube8MFrameModel", "YouTube8MVideoModel",
           "available_models", "make_activation", "make_model", "measure_cost",
           "prodsumnet_presets"]


def available_models() -> list[str]:
    return available("model")


def make_model(name: str, in_features: int, num_classes: int, *,
               input_shape: tuple[int, ...] | None = None, **kwargs) -> nn.Module:
    """Build a registered model. ``input_shape`` (the data's, e.g. ``(1, 28, 28)``) is passed
    to models that take it (CNNs) unless ``kwargs`` sets it."""
    cls = get("model", name)
    ok = accepted_kwargs(cls)
    if input_shape is not None and "input_shape" not in kwargs and (
            ok is None or "input_shape" in ok):
        kwargs["input_shape"] = tuple(input_shape)
    return cls(in_features, num_classes, **kwargs)
