"""Process-wide CPU settings that speed up training of FFT-based layers (opt-in).

A training step of an FFT-based layer creates several tensors of ``batch × n`` floats (the
spectra, the output, the gradients): 4 MiB each at ``n = 4096``, batch 256. With glibc's
default settings, memory above its (dynamic) thresholds goes back to the kernel when freed, and
the next allocation of the same size page-faults on every 4 KiB page: measured here, 700–3,000
minor faults per DC-layer step and about 15–30 % of its time at ``n = 4096``, batch 256.
:func:`keep_freed_memory` tells glibc to keep freed memory in the process instead, the effect
PyTorch's CPU tuning guide gets by preloading jemalloc or tcmalloc.

It is opt-in because it changes ``malloc`` for the whole process: the peak memory does not
grow, but memory freed after the peak is only returned to the system at exit. The CLI applies
it with ``compactnn --keep-freed-memory ...``; the benchmarks measure both settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        if not hasattr(libc, "gnu_get_libc_version"):  # glibc only (not musl, not macOS)
            return None
    except (OSError, AttributeError):  # no mallopt
        return None
    return libc


def keep_freed_memory(max_block_mib: int = 1024) -> bool:
    """Keep memory freed by this process for reuse instead of returning it to the kernel.

    Sets glibc's ``M_MMAP_THRESHOLD`` (blocks below it come from the heap, not from a fresh
    ``mmap``; glibc caps it, so the largest accepted value ``≤ max_block_mib`` is used) and
    ``M_TRIM_THRESHOLD`` (the heap is never trimmed). Returns ``True`` when applied, ``False``
    on a C library without ``mallopt`` (musl, macOS, Windows), where it does nothing.
    """
    if max_block_mib < 1:
        raise ValueError(f"max_block_mib must be at least 1, got {max_block_mib}")
    libc = _libc()
    if libc is None:
        return False
    mib = max_block_mib
    while mib >= 1 and not libc.mallopt(_M_MMAP_THRESHOLD, mib * 2**20):
        mib //= 2
    if mib < 1:
        return False
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
