"""One training run end to end: a :class:`~compactnn.config.RunConfig` → data → model → ``fit``
→ a run folder.

A run folder holds ``config.toml`` (the *resolved* configuration: ``auto`` replaced by the data
set and task actually used — ``compactnn train --config <folder>/config.toml`` reruns it),
``run.json`` (what the run saw: data source and sizes, notes, parameter count, git hash,
versions), ``metrics.json`` (the history) and ``checkpoint.pt``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .config import RunConfig
from .data import Dataset, in_memory_loaders, load_dataset, resolve_dataset
from .data.features import apply_features
from .models import make_model
from .train import (
    Callback,
    Distillation,
    MetricsWriter,
    PrintLogger,
    fit,
    git_hash,
    load_checkpoint,
    make_task,
    write_json,
    write_text,
)

__all__ = ["build_model", "count_params", "load_data", "load_run_model", "new_run_dir",
           "resolve_config", "run"]


def load_data(cfg: RunConfig, *, cache_dir: str | Path | None = None,
              progress: bool = False) -> Dataset:
    """The in-memory data set of ``cfg.data`` (features applied, cached under ``cache_dir``)."""
    d = cfg.data
    data = load_dataset(d.name, data_dir=d.data_dir, val_fraction=d.val_fraction,
                        standardize=d.standardize, seed=cfg.seed, limit_train=d.limit_train)
    if d.features:
        data = apply_features(data, d.features, cache_dir, progress=progress)
    return data


def build_model(cfg: RunConfig, data: Dataset) -> nn.Module:
    """The model of ``cfg.model`` sized for ``data`` (inputs, classes, image shape)."""
    return make_model(cfg.model.name, data.in_features, data.num_classes,
                      input_shape=data.input_shape, **cfg.model.args)


def resolve_config(cfg: RunConfig, data: Dataset | None = None) -> RunConfig:
    """``cfg`` with ``data.name = "auto"`` and ``task.name = "auto"`` made concrete."""
    if data is None:
        spec, _ = resolve_dataset(cfg.data.name, cfg.data.data_dir)
        name, task = spec.name, spec.task
    else:
        name, task = data.name.split("+")[0], data.task
    return cfg.replace(data={"name": name},
                       task={"name": task if cfg.task.name == "auto" else cfg.task.name})


def load_run_model(run_dir: str | Path) -> nn.Module:
    """Rebuild the trained model of a finished run from its ``config.toml``, ``run.json``
    (input size and classes) and ``checkpoint.pt``."""
    import json

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)")
    cfg = RunConfig.load(run_dir / "config.toml")
    try:
        shape = json.loads((run_dir / "run.json").read_text())["data"]
        in_features, classes = shape["in_features"], shape["num_classes"]
        input_shape = tuple(shape["input_shape"])
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{run_dir / 'run.json'}: not a compactnn run record ({e})") from None
    model = make_model(cfg.model.name, in_features, classes, input_shape=input_shape,
                       **cfg.model.args)
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
    return model


def new_run_dir(runs_root: str | Path, name: str) -> Path:
    """A free path ``<runs_root>/<timestamp>-<name>`` (``~1``, ``~2`` … on collision); not
    created — :func:`run` creates it once data and model are built, so a refused run leaves
    nothing behind."""
    run_dir = Path(runs_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name.replace('/', '_')}"
    suffix = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(f"{run_dir.name.rsplit('~', 1)[0]}~{suffix}")
        suffix += 1
    return run_dir


def _teacher_dir(teacher: str, runs_root: Path | None, seed: int) -> Path:
    if teacher.startswith("run:"):  # a run of the same experiment and seed
        if runs_root is None:
            raise ValueError(f"teacher {teacher!r} names a run of an experiment; "
                             "pass a run folder outside experiments")
        return runs_root / teacher[4:].replace("/", "_") / f"seed{seed}"
    return Path(teacher)


def run(
    cfg: RunConfig,
    *,
    run_dir: str | Path | None = None,
    data: Dataset | None = None,
    teacher_root: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Train the run ``cfg`` describes; with ``run_dir``, record it there (created if needed).

    ``data`` (already loaded for this config) skips loading. ``teacher_root``: where
    ``task.teacher = "run:<name>"`` teachers live (``<root>/<name>/seed<k>``). Returns
    ``{"config": resolved RunConfig, "history", "num_params", "model", "run_dir"}``.
    """
    if data is None:
        data = load_data(cfg, cache_dir=None if run_dir is None else Path(run_dir).parent / "cache",
                         progress=progress)
    for note in data.notes:
        if log:
            log(f"note: {note}")
    cfg = resolve_config(cfg, data)
    task = make_task(cfg.task.name)
    if cfg.task.name != data.task:
        raise ValueError(f"task {cfg.task.name!r} does not fit data set {data.name!r}, whose "
                         f"task is {data.task!r}")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data)
    if cfg.task.teacher is not None:
        root = None if teacher_root is None else Path(teacher_root)
        teacher = load_run_model(_teacher_dir(cfg.task.teacher, root, cfg.seed))
        task = Distillation(teacher.to(cfg.train.device), cfg.task.temperature, cfg.task.alpha,
                            base=task)
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cbs = list(callbacks)
    if log:
        log(f"{cfg.name}: {num_params:,} trainable parameters on {data.summary()}")
        cbs.append(PrintLogger(log, metric=task.primary))
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.toml", cfg.to_toml())
        write_json(run_dir / "run.json", {
            "name": cfg.name, "seed": cfg.seed, "config_digest": cfg.digest(),
            "num_params": num_params,
            "data": {"name": data.name, "source": data.source, "task": data.task,
                     "in_features": data.in_features, "num_classes": data.num_classes,
                     "input_shape": list(data.input_shape), "notes": data.notes,
                     "train": len(data.x_train),
                     "val": 0 if data.x_val is None else len(data.x_val),
                     "test": len(data.x_test)},
            "task": repr(task), "git": git_hash(Path(__file__).parent),
            "torch": torch.__version__, "python": platform.python_version()})
        cbs.append(MetricsWriter(run_dir))
    torch.manual_seed(cfg.seed)
    t = cfg.train
    loaders = in_memory_loaders(data, t.batch_size, t.eval_batch_size, cfg.seed,
                                pin_memory=torch.device(t.device).type == "cuda")
    history = fit(model, loaders, task, t, cbs, progress=progress)
    return {"config": cfg, "history": history, "num_params": history["num_params"],
            "model": model, "run_dir": None if run_dir is None else str(run_dir)}


def count_params(cfg: RunConfig, data: Dataset) -> int:
    """Trainable parameters of the model ``cfg`` builds for ``data`` (no training)."""
    return sum(p.numel() for p in build_model(cfg, data).parameters() if p.requires_grad)

