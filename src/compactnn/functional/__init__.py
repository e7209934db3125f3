"""Stateless structured-matrix operations; each fast op comes with a ``*_dense`` reference."""

from .circulant import (
    circulant_dense,
    circulant_fft_size,
    circulant_matmul,
    circulant_spectrum,
    diag_circulant_diag,
    diag_circulant_diag_dense,
    fast_fft_size,
    fft_dtype,
    project_circulant,
    weighted_diagonal_means,
)
from .dct import dct, dct_matrix, idct
from .hashing import fmix32, hash_indices, hashed_dense
from .ldr import krylov, ldr_dense, ldr_matmul, shift_op, subdiagonal_op, tridiagonal_op
from .toeplitz import (
    project_toeplitz,
    toeplitz_dense,
    toeplitz_embedding,
    toeplitz_fft_size,
    toeplitz_matmul,
    toeplitz_spectrum,
)

__all__ = [
    "circulant_dense",
    "circulant_fft_size",
    "circulant_matmul",
    "circulant_spectrum",
    "dct",
    "dct_matrix",
    "diag_circulant_diag",
    "diag_circulant_diag_dense",
    "fast_fft_size",
    "fft_dtype",
    "fmix32",
    "hash_indices",
    "hashed_dense",
    "idct",
    "krylov",
    "ldr_dense",
    "ldr_matmul",
    "project_circulant",
    "project_toeplitz",
    "shift_op",
    "subdiagonal_op",
    "toeplitz_dense",
    "toeplitz_embedding",
    "toeplitz_fft_size",
    "toeplitz_matmul",
    "toeplitz_spectrum",
    "tridiagonal_op",
    "weighted_diagonal_means",
]
