"""Structured linear layers (one family per module) and their registry."""

from .acdc import ACDC, AFDF
from .base import StructuredLinear
from .circulant import Circulant, CirculantProjection, DiagonalCirculant
from .dense import Dense
from .hashed import HashedLinear
from .ldr import LDRSubdiagonal, LDRTridiagonal, ToeplitzLike
from .lowrank import LowRank
from .prodsum import Kronecker, ProdSum
from .registry import available_layers, get_layer_class, make_linear, register_layer
from .toeplitz import DiagonalToeplitz, Toeplitz

__all__ = [
    "ACDC",
    "AFDF",
    "Circulant",
    "CirculantProjection",
    "Dense",
    "DiagonalCirculant",
    "DiagonalToeplitz",
    "HashedLinear",
    "Kronecker",
    "LDRSubdiagonal",
    "LDRTridiagonal",
    "LowRank",
    "ProdSum",
    "StructuredLinear",
    "Toeplitz",
    "ToeplitzLike",
    "available_layers",
    "get_layer_class",
    "make_linear",
    "register_layer",
]
