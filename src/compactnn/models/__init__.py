"""Model builders."""

from .mlp import DCNN, MLP, StructuredMLP, make_activation

MODELS = {"dcnn": DCNN, "mlp": StructuredMLP, "dense-mlp": MLP}

__all__ = ["DCNN", "MLP", "MODELS", "StructuredMLP", "make_activation"]
