"""One training run end to end: data → model → fit → ``runs/<id>/``."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from ..data import load_dataset
from ..models import MODELS
from ..train import TrainConfig, distillation_loss, fit, git_hash, load_checkpoint, write_json

__all__ = ["build_model", "load_run_model", "train_run"]


def build_model(model: str, in_features: int, num_classes: int, **kwargs) -> torch.nn.Module:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return MODELS[model](in_features, num_classes, **kwargs)


def load_run_model(run_dir: str | Path) -> torch.nn.Module:
    """Rebuild the model of a finished run from its ``config.json`` and ``checkpoint.pt``."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
    try:
        spec = dict(json.loads(cfg_path.read_text())["model"])
        name = spec.pop("name")
        in_features, num_classes = spec.pop("in_features"), spec.pop("num_classes")
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{cfg_path}: not a compactnn run configuration ({e})") from None
    model = build_model(name, in_features, num_classes, **spec)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
    return model


def _run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def train_run(
    *,
    model: str,
    model_kwargs: dict,
    train: TrainConfig,
    dataset: str = "auto",
    data_dir: str | None = None,
    val_fraction: float = 0.0,
    limit_train: int | None = None,
    runs_dir: str | Path | None = "runs",
    name: str | None = None,
    progress: bool = True,
    log=print,
    data=None,
    teacher: str | Path | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    run_dir_exact: str | Path | None = None,
) -> dict:
    """Train one model and record it. Returns ``{"run_dir", "num_params", "history", ...}``.

    With ``runs_dir`` the run writes ``<runs_dir>/<id>/``: ``config.json`` (the resolved
    configuration, seed, git hash, versions), ``metrics.json`` and ``checkpoint.pt``.
    ``data`` (an already loaded :class:`~compactnn.data.Dataset`) skips loading.
    ``teacher`` (a run directory) trains by distillation with ``temperature`` and ``alpha``.
    ``run_dir_exact`` writes into that directory instead of a new ``<runs_dir>/<id>/``.
    """
    if data is None:
        data = load_dataset(dataset, data_dir=data_dir, val_fraction=val_fraction,
                            seed=train.seed, limit_train=limit_train)
    for note in data.notes:
        if log:
            log(f"note: {note}")
    torch.manual_seed(train.seed)
    net = build_model(model, data.in_features, data.num_classes, **model_kwargs)
    loss_fn = None
    if teacher is not None:
        teacher_model = load_run_model(teacher).to(train.device)
        loss_fn = distillation_loss(teacher_model, temperature, alpha)
    run_dir = None
    config = {
        "model": {"name": model, **getattr(net, "config", model_kwargs)},
        "data": {"name": data.name, "source": data.source, "val_fraction": val_fraction,
                 "limit_train": limit_train, "notes": data.notes},
        "train": train.to_dict(),
        "distillation": None if teacher is None else {
            "teacher": str(teacher), "temperature": temperature, "alpha": alpha},
        "seed": train.seed,
        "git": git_hash(Path(__file__).parent),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if run_dir_exact is not None:
        run_dir = Path(run_dir_exact)
        run_dir.mkdir(parents=True, exist_ok=True)
    elif runs_dir is not None:
        run_dir = Path(runs_dir) / _run_id(name or model)
        suffix = 1
        while run_dir.exists():
            run_dir = run_dir.with_name(f"{run_dir.name.rsplit('~', 1)[0]}~{suffix}")
            suffix += 1
        run_dir.mkdir(parents=True)
    if run_dir is not None:
        write_json(run_dir / "config.json", config)
    if log:
        log(f"{name or model}: {net.num_params() if hasattr(net, 'num_params') else '?':,} "
            f"trainable parameters on {data.summary()}")
    history = fit(net, data, train, run_dir=run_dir, progress=progress, log=log, loss_fn=loss_fn)
    return {"run_dir": None if run_dir is None else str(run_dir), "config": config,
            "num_params": history["num_params"], "history": history, "model": net}
