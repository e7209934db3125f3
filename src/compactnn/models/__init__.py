"""Model builders."""

from .cnn import LeNet
from .mlp import DCNN, MLP, SHL, StructuredMLP, make_activation

MODELS = {"dcnn": DCNN, "mlp": StructuredMLP, "dense-mlp": MLP, "shl": SHL, "lenet": LeNet}

__all__ = ["DCNN", "MLP", "MODELS", "SHL", "LeNet", "StructuredMLP", "make_activation"]
