"""Fixed (non-trained) feature transforms applied to a whole data set, cached on disk.

``scattering-j2``: the 2-D scattering transform (Mallat; kymatio's ``Scattering2D`` with
``J = 2``), as in Table 2 of Araujo et al. (2020): each image channel becomes
``1 + 8J + 64·J(J-1)/2 = 81`` maps of a quarter of the side, e.g. 28×28 → 81×7×7 = 3,969
features.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch

from .._optional import progress_bar, require
from .datasets import Dataset

__all__ = ["FEATURES", "apply_features"]

FEATURES = ("scattering-j2",)


def _scattering(x: torch.Tensor, shape: tuple[int, ...], progress: bool) -> torch.Tensor:
    # kymatio 0.3's package __init__ fails to import with current SciPy; the frontend works.
    ScatteringTorch2D = require("kymatio.scattering2d.frontend.torch_frontend",
                                what="the scattering features").ScatteringTorch2D

    if len(shape) == 2:
        shape = (1, *shape)
    c, h, w = shape
    scat = ScatteringTorch2D(J=2, shape=(h, w))
    out = []
    for i in progress_bar(range(0, len(x), 1000), desc="scattering", disable=not progress,
                          leave=False):
        with torch.no_grad():
            out.append(scat(x[i:i + 1000].view(-1, c, h, w)).flatten(1))
    return torch.cat(out)


def apply_features(data: Dataset, name: str, cache_dir: str | Path | None = None,
                   progress: bool = True) -> Dataset:
    """Return ``data`` with every split replaced by its ``name`` features (cached by content)."""
    if name not in FEATURES:
        raise ValueError(f"unknown features {name!r}; choose one of {', '.join(FEATURES)}")
    splits = {k: getattr(data, k) for k in ("x_train", "x_val", "x_test")}
    digest = hashlib.sha1()
    for k, v in splits.items():
        digest.update(k.encode())
        if v is not None:
            digest.update(v.numpy().tobytes())
    path = None if cache_dir is None else Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.pt"
    if path is not None and path.is_file():
        feats = torch.load(path, weights_only=True)
    else:
        feats = {k: None if v is None else _scattering(v, data.input_shape, progress)
                 for k, v in splits.items()}
        if path is not None:
            from ..train.checkpoint import save_checkpoint

            save_checkpoint(path, feats)
    n = feats["x_train"].shape[1]
    return dataclasses.replace(data, **feats, input_shape=(n,),
                               name=f"{data.name}+{name}", notes=[*data.notes])
