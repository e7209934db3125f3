"""Atomic, safe checkpoints and run-directory helpers."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["git_hash", "load_checkpoint", "save_checkpoint", "write_json", "write_text"]


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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code execution)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
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
