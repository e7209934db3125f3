"""compactnn: compact deep networks built from structured matrices."""

from . import functional, init, runtime
from .compress import CompressionPolicy, compress, load_compressed, save_compressed
from .conv import (
    CirculantConv2d,
    DCConv2d,
    ExplicitRDBlock,
    FullConv2d,
    IMEXRDBlock,
    LeanConv2d,
    ResidualBlock,
    SeparableConv2d,
    StructuredConv2d,
    SymmetricBlock,
    available_convs,
    make_block,
    make_conv,
)
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
from .models import DCNN, MLP, LowCostResNet, ProdSumNet, StructuredMLP, TransformNet

__version__ = "0.1.0"

__all__ = [
    "DCNN",
    "MLP",
    "Circulant",
    "CirculantConv2d",
    "CirculantProjection",
    "CompressionPolicy",
    "DCConv2d",
    "Dense",
    "DiagonalCirculant",
    "ExplicitRDBlock",
    "FullConv2d",
    "IMEXRDBlock",
    "Kronecker",
    "LeanConv2d",
    "LowCostResNet",
    "ProdSum",
    "ProdSumNet",
    "ResidualBlock",
    "SeparableConv2d",
    "StructuredConv2d",
    "StructuredLinear",
    "StructuredMLP",
    "SymmetricBlock",
    "TransformNet",
    "available_convs",
    "available_layers",
    "compress",
    "functional",
    "init",
    "load_compressed",
    "make_block",
    "make_conv",
    "make_linear",
    "register_layer",
    "runtime",
    "save_compressed",
]
