"""Atomic, safe checkpoints and run-directory helpers."""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["get_rng_state", "git_hash", "load_checkpoint", "save_checkpoint", "set_rng_state",
           "write_json", "write_text"]


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (a reader never sees a half-written file)."""
    data = (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()
    _atomic_write(Path(path), lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    data = text.encode()
    _atomic_write(Path(path), lambda f: f.write(data))


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file in the same directory, then an atomic rename."""
    _atomic_write(Path(path), lambda f: torch.save(state, f))


def get_rng_state() -> dict:
    """Every random number generator training draws from — torch (CPU and each CUDA device),
    numpy's global one, Python's ``random`` — as tensors and plain containers (loadable with
    ``weights_only``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": _plain(random.getstate())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(x):
    return [_plain(v) for v in x] if isinstance(x, tuple | list) else x


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code execution)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive: a torn one is not
        raise ValueError(f"cannot load checkpoint {path}: truncated or not a PyTorch checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, pickle refused by weights_only, truncated file...
        text = str(e).strip()
        if "Weights only load failed" in text:
            why = "it holds objects other than tensors and plain containers (refused: unsafe)"
        elif "zip archive" in text or isinstance(e, (EOFError, pickle.UnpicklingError)):
            why = "truncated or not a PyTorch checkpoint"
        else:  # the first sentence of whatever torch said
            why = (text.splitlines()[0].split(". ")[0] if text else "") or type(e).__name__
        raise ValueError(f"cannot load checkpoint {path}: {why[:200]}") from None
    if not isinstance(state, dict):
        raise ValueError(f"cannot load checkpoint {path}: expected a dict, got "
                         f"{type(state).__name__}")
    return state


def git_hash(cwd: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
