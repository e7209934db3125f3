"""Stateless structured-matrix operations; each fast op comes with a ``*_dense`` reference."""

from .circulant import (
    circulant_dense,
    circulant_matmul,
    diag_circulant_diag,
    diag_circulant_diag_dense,
    project_circulant,
)

__all__ = [
    "circulant_dense",
    "circulant_matmul",
    "diag_circulant_diag",
    "diag_circulant_diag_dense",
    "project_circulant",
]
