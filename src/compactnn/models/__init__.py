"""Model builders."""

from .mlp import DCNN, MLP, SHL, StructuredMLP, make_activation

MODELS = {"dcnn": DCNN, "mlp": StructuredMLP, "dense-mlp": MLP, "shl": SHL}

__all__ = ["DCNN", "MLP", "MODELS", "SHL", "StructuredMLP", "make_activation"]
