"""Structured linear layers (one family per module) and their registry."""

from .base import StructuredLinear
from .circulant import Circulant, CirculantProjection, DiagonalCirculant
from .dense import Dense
from .registry import available_layers, get_layer_class, make_linear, register_layer

__all__ = [
    "Circulant",
    "CirculantProjection",
    "Dense",
    "DiagonalCirculant",
    "StructuredLinear",
    "available_layers",
    "get_layer_class",
    "make_linear",
    "register_layer",
]
