"""compactnn: compact deep networks built from structured matrices."""

from . import functional, init, runtime
from .layers import (
    Circulant,
    CirculantProjection,
    Dense,
    DiagonalCirculant,
    Kronecker,
    ProdSum,
    StructuredLinear,
    available_layers,
    make_linear,
    register_layer,
)
from .models import DCNN, MLP, StructuredMLP

__version__ = "0.1.0"

__all__ = [
    "DCNN",
    "MLP",
    "Circulant",
    "CirculantProjection",
    "Dense",
    "DiagonalCirculant",
    "Kronecker",
    "ProdSum",
    "StructuredLinear",
    "StructuredMLP",
    "available_layers",
    "functional",
    "init",
    "make_linear",
    "register_layer",
    "runtime",
]
