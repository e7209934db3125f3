"""One training run end to end: a :class:`~compactnn.config.RunConfig` → data → model → ``fit``
→ a run folder.

A run folder holds ``config.toml`` (the *resolved* configuration: ``auto`` replaced by the data
set and task actually used — ``compactnn train --config <folder>/config.toml`` reruns it),
``run.json`` (what the run saw: data source and sizes, notes, parameter count, git hash,
versions), ``metrics.json`` (the history) and ``checkpoint.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import signal
import tempfile
import threading
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
    CHECKPOINT,
    PREVIOUS_CHECKPOINT,
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
from .train.distributed import (
    DistInfo,
    DistributedTask,
    sharded_loaders,
    unwrap_model,
    wrap_model,
)

#: checkpoint every this many optimisation steps (and after every epoch)
DEFAULT_CHECKPOINT_EVERY = 500

__all__ = ["DEFAULT_CHECKPOINT_EVERY", "RunInterrupted", "build_model", "check_device",
           "check_writable", "count_params", "load_data", "load_run_model", "model_args",
           "new_run_dir", "preview_config", "resolve_config", "run"]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run`: says where the run folder and its last checkpoint are and how
    to resume (the first Ctrl-C lets the step finish and writes a checkpoint first)."""

    def __init__(self, run_dir: Path | None, writer: MetricsWriter | None) -> None:
        self.run_dir = run_dir
        self.checkpoint = None if writer is None else writer.last_checkpoint
        self.epoch = None if writer is None else writer.last_epoch
        if run_dir is None:
            msg = "training interrupted (no run folder: nothing was saved)"
        elif self.checkpoint is None:
            msg = f"training interrupted before the first epoch ended: no checkpoint in {run_dir}"
        else:
            msg = (f"training interrupted; last checkpoint: {self.checkpoint} (epoch "
                   f"{self.epoch}, step {writer.last_step}); resume: compactnn train --resume "
                   f"{run_dir}")
        super().__init__(msg)


class _StopOnSignal(Callback):
    """The first SIGINT asks training to stop after the step in progress, with a checkpoint
    (a second one interrupts at once). Under torchrun ``fit`` agrees on the step over the
    ranks (:meth:`Callback.wants_stop`), so all save together and none is left waiting in a
    collective."""

    def __init__(self, writer: MetricsWriter | None) -> None:
        self.writer, self.requested, self.previous = writer, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)  # a second Ctrl-C: at once

    def wants_stop(self) -> bool:
        return self.requested

    def on_step_end(self, state):
        if state.stopping:
            if self.writer is not None:
                self.writer.save(state)
            raise KeyboardInterrupt


def _resume_checkpoint(run_dir: Path, log) -> dict:
    """The latest readable checkpoint of ``run_dir`` (the previous one when the latest is
    truncated or corrupt, saying so)."""
    latest, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS_CHECKPOINT
    try:
        return load_checkpoint(latest)
    except (ValueError, FileNotFoundError) as e:
        if not previous.is_file():
            raise ValueError(f"cannot resume {run_dir}: {e}") from None
        if log:
            log(f"note: {e}; resuming from {previous}")
        return load_checkpoint(previous)


def check_writable(directory: str | Path, what: str) -> Path:
    """Check that a file can be written in ``directory`` (creating it for the test and removing
    again what the test created); a ``ValueError`` naming ``what`` (e.g. ``"--runs-dir"``)
    otherwise."""
    d = Path(directory)
    created = [p for p in (d, *d.parents) if not p.exists()]
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        raise ValueError(f"{what} {d}: cannot write there ({e.strerror or e})") from None
    finally:
        for p in created:  # deepest first; only the empty folders made here
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    return d


def load_data(cfg: RunConfig, *, cache_dir: str | Path | None = None,
              progress: bool = False) -> Dataset:
    """The in-memory data set of ``cfg.data`` (features applied, cached under ``cache_dir``),
    or for a streamed data set (YouTube-8M) its :class:`~compactnn.data.youtube8m.StreamingData`
    (inputs used as stored: ``standardize`` does not apply)."""
    d = cfg.data
    spec, _ = resolve_dataset(d.name, d.data_dir)
    if spec.stream is not None:
        unsupported = [f"{k}={v!r}" for k, v in (("val_fraction", d.val_fraction),
                                                  ("limit_train", d.limit_train),
                                                  ("features", d.features),
                                                  ("augment", d.augment)) if v]
        if unsupported:
            raise ValueError(f"{spec.name} is streamed from its files: data."
                             f"{', data.'.join(unsupported)} do(es) not apply (a --quick run "
                             "sets limit_train; shorten epochs with train.steps_per_epoch)")
        return spec.stream(spec.name, d.data_dir)
    data = load_dataset(d.name, data_dir=d.data_dir, val_fraction=d.val_fraction,
                        standardize=d.standardize, seed=cfg.seed, limit_train=d.limit_train,
                        augment=d.augment)
    if d.features:
        data = apply_features(data, d.features, cache_dir, progress=progress)
    return data


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model of ``cfg.model`` for inputs of shape ``input_shape`` (flattened size
    ``in_features``; the shape itself goes to models that take it unless the config sets
    ``input_shape``) and ``num_classes`` outputs."""
    args = cfg.model.to_dict()
    args.pop("name")
    shape = tuple(args.pop("input_shape", input_shape))
    try:
        return make_model(cfg.model.name, math.prod(input_shape), num_classes,
                          input_shape=shape, **args)
    except TypeError as e:  # a wrong value type deep in a layer constructor
        raise ValueError(f"model {cfg.model.name!r}: {e}") from None


def model_args(model: nn.Module, cfg: RunConfig) -> dict:
    """Every keyword argument the built model used (defaults included), from its ``config``
    attribute when it has one — what ``config.toml`` records so that a later change of a
    default cannot change a rerun."""
    used = getattr(model, "config", None)
    if not isinstance(used, dict):
        return cfg.model.to_dict()
    return {"name": cfg.model.name,
            **{k: v for k, v in used.items() if k not in ("in_features", "num_classes")}}


def check_device(device: str) -> torch.device:
    """``torch.device(device)``, refusing one this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(f"train.device {device!r}: {e}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (
            dev.index is not None and dev.index >= torch.cuda.device_count())):
        raise ValueError(f"train.device is {device!r} but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("train.device is 'mps' but MPS is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"train.device {device!r} is not supported (cpu, cuda, cuda:N, mps)")
    return dev


def resolve_config(cfg: RunConfig, data: Dataset | None = None) -> RunConfig:
    """``cfg`` with ``data.name = "auto"`` and ``task.name = "auto"`` made concrete."""
    if data is None:
        spec, _ = resolve_dataset(cfg.data.name, cfg.data.data_dir)
        name, task = spec.name, spec.task
    else:
        name, task = data.name.split("+")[0], data.task
    return cfg.replace(data={"name": name},
                       task={"name": task if cfg.task.name == "auto" else cfg.task.name})


def preview_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` resolved without loading data or training: data set and task named, the task's
    and (unless a feature transform changes the input size) the model's arguments checked by
    building them at the data set's declared size. What ``compactnn train --dry-run`` prints."""
    check_device(cfg.train.device)
    cfg = resolve_config(cfg)
    make_task(cfg.task.name, **dict(cfg.task.args))
    if cfg.data.features:
        return cfg
    spec, _ = resolve_dataset(cfg.data.name, cfg.data.data_dir)
    model = build_model(cfg, spec.input_shape, spec.num_classes)
    return cfg.replace(model=model_args(model, cfg))


def run_architecture(run_dir: str | Path) -> nn.Module:
    """The untrained model a run folder's ``config.toml`` and ``run.json`` (input size and
    classes) describe."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.toml)")
    cfg = RunConfig.load(run_dir / "config.toml")
    try:
        seen = json.loads((run_dir / "run.json").read_text())["data"]
        shape, classes = tuple(seen["input_shape"]), int(seen["num_classes"])
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{run_dir / 'run.json'}: not a compactnn run record ({e})") from None
    return build_model(cfg, shape, classes)


def load_run_model(run_dir: str | Path) -> nn.Module:
    """Rebuild the trained model of a finished run from its ``config.toml``, ``run.json``
    (input size and classes) and ``checkpoint.pt``."""
    run_dir = Path(run_dir)
    model = run_architecture(run_dir)
    ckpt = run_dir / "checkpoint.pt"
    state = load_checkpoint(ckpt).get("model")
    if not isinstance(state, dict):
        raise ValueError(f"{ckpt}: no model weights in the checkpoint")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # missing/unexpected keys, size mismatches
        problems = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        first = problems[0] if problems else str(e).splitlines()[0]
        raise ValueError(f"{ckpt} does not fit the model its config.toml describes "
                         f"({len(problems) or 1} problem(s), first: {first})") from None
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


def _load_teacher(run_dir: Path, cfg: RunConfig, data: Dataset) -> nn.Module:
    """The teacher's model, after checking that it was trained on the same inputs."""
    model = load_run_model(run_dir)
    teacher_cfg = RunConfig.load(run_dir)
    seen = json.loads((run_dir / "run.json").read_text())["data"]  # checked by load_run_model
    mine = {"data set": data.name, "inputs": data.in_features, "classes": data.num_classes,
            "standardize": cfg.data.standardize, "features": cfg.data.features}
    theirs = {"data set": seen.get("name"), "inputs": seen.get("in_features"),
              "classes": seen["num_classes"], "standardize": teacher_cfg.data.standardize,
              "features": teacher_cfg.data.features}
    diff = [f"{k} {theirs[k]!r} vs {mine[k]!r}" for k in mine if mine[k] != theirs[k]]
    if diff:
        raise ValueError(f"teacher {run_dir} was trained on other inputs: {'; '.join(diff)}")
    return model


def run(
    cfg: RunConfig,
    *,
    run_dir: str | Path | None = None,
    data: Dataset | None = None,
    teacher_root: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    resume: bool = False,
    checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY,
    dist: DistInfo | None = None,
) -> dict:
    """Train the run ``cfg`` describes; with ``run_dir``, record it there (created if needed).

    ``data`` (already loaded for this config) skips loading. ``teacher_root``: where
    ``task.teacher = "run:<name>"`` teachers live (``<root>/<name>/seed<k>``). Returns
    ``{"config": resolved RunConfig, "history", "num_params", "model", "run_dir"}``; the
    resolved config (written to ``config.toml``) names the data set and task actually used,
    every model argument (defaults included) and the teacher's absolute folder. Every check
    (device, data, model, teacher) passes before ``run_dir`` is created.

    Checkpoints (all ``fit`` needs to continue) are written atomically every
    ``checkpoint_every`` steps and after every epoch, keeping the one before. ``resume``:
    continue the interrupted run in ``run_dir`` (same configuration, checked against its
    ``config.toml``) from its latest readable checkpoint, to the same final weights and metrics
    as an uninterrupted run. The first Ctrl-C stops after the step in progress, writes a
    checkpoint and raises :class:`RunInterrupted` saying how to resume.

    ``dist`` (:func:`~compactnn.train.distributed.init_distributed` under torchrun): every rank
    calls ``run`` with the same config; each trains on its share of every global batch of
    ``train.batch_size`` examples through DistributedDataParallel, metrics are reduced over the
    ranks, and only rank 0 logs and writes the run folder. Every rank passes the same
    ``run_dir`` (the others read its checkpoint to resume: on several nodes it must be on a
    shared file system, or copied to each node).
    """
    info = dist if dist is not None else DistInfo(device=cfg.train.device)
    if not info.is_main:
        log, progress = None, False
    requested = cfg.digest()
    check_device(cfg.train.device)
    if data is None:
        data = load_data(cfg, cache_dir=None if run_dir is None else Path(run_dir).parent / "cache",
                         progress=progress)
    for note in data.notes:
        if log:
            log(f"note: {note}")
    cfg = resolve_config(cfg, data)
    task = make_task(cfg.task.name, **dict(cfg.task.args))
    if cfg.task.name != data.task:
        raise ValueError(f"task {cfg.task.name!r} does not fit data set {data.name!r}, whose "
                         f"task is {data.task!r}")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.input_shape, data.num_classes)
    cfg = cfg.replace(model=model_args(model, cfg))
    if cfg.task.teacher is not None:
        root = None if teacher_root is None else Path(teacher_root)
        teacher_dir = _teacher_dir(cfg.task.teacher, root, cfg.seed).resolve()
        teacher = _load_teacher(teacher_dir, cfg, data)
        task = Distillation(teacher.to(cfg.train.device), cfg.task.temperature, cfg.task.alpha,
                            base=task)
        cfg = cfg.replace(task={"teacher": str(teacher_dir)})  # rerunnable from its folder
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cbs, writer = list(callbacks), None
    if log:
        log(f"{cfg.name}: {num_params:,} trainable parameters on {data.summary()}")
        cbs.append(PrintLogger(log, metric=task.primary))
    recorded_task = repr(task)  # the task itself, not its per-rank wrapper
    torch.manual_seed(cfg.seed)
    t = cfg.train  # under torchrun "cuda" is this rank's cuda:LOCAL_RANK (not recorded)
    t = dataclasses.replace(t, device=info.device) if info.distributed else t
    pin = torch.device(t.device).type == "cuda"
    streaming = callable(getattr(data, "loaders", None))  # read from files, by rank
    if streaming:
        loaders = data.loaders(t.batch_size, t.eval_batch_size, cfg.seed, rank=info.rank,
                               world_size=info.world_size, num_workers=cfg.data.workers,
                               pin_memory=pin)
    if info.distributed:  # this rank's shares; gradients and metrics as for the global batch
        if streaming:  # global batch sizes by one all-reduce per step
            task = DistributedTask(task)
        else:
            loaders = sharded_loaders(data, t.batch_size, t.eval_batch_size, cfg.seed, info,
                                      pin_memory=pin)
            task = DistributedTask(task, loaders["train"].sampler)  # global batch sizes from it
        model = wrap_model(model.to(t.device), info)  # broadcasts rank 0's weights
        if info.rank > 0:  # its own dropout masks (rank 0 keeps the single-process stream)
            torch.manual_seed(cfg.seed + 7919 * info.rank)
    elif not streaming:
        loaders = in_memory_loaders(data, t.batch_size, t.eval_batch_size, cfg.seed,
                                    pin_memory=pin)
    ckpt = None
    if resume:
        if run_dir is None or not (Path(run_dir) / "config.toml").is_file():
            raise ValueError(f"cannot resume {run_dir}: not a run folder (no config.toml)")
        run_dir = Path(run_dir)
        if (run_dir / "config.toml").read_text() != cfg.to_toml():
            raise ValueError(f"cannot resume {run_dir}: its config.toml describes another "
                             "configuration than the one given")
        ckpt = _resume_checkpoint(run_dir, log)
    elif run_dir is not None and info.is_main:
        toml = cfg.to_toml()  # every check passes before anything is written
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.toml", toml)
        write_json(run_dir / "run.json", {
            "name": cfg.name, "seed": cfg.seed, "config_digest": cfg.digest(),
            "requested_digest": requested, "num_params": num_params,
            "data": {"name": data.name, "source": data.source, "task": data.task,
                     "in_features": data.in_features, "num_classes": data.num_classes,
                     "input_shape": list(data.input_shape), "notes": data.notes,
                     "augment": data.augment,
                     **(data.sizes() if streaming else {
                         "train": len(data.x_train),
                         "val": 0 if data.x_val is None else len(data.x_val),
                         "test": len(data.x_test)})},
            "task": recorded_task, "git": git_hash(Path(__file__).parent),
            "torch": torch.__version__, "python": platform.python_version()})
    if run_dir is not None:  # on every rank: a checkpoint gathers their states; rank 0 writes
        writer = MetricsWriter(Path(run_dir), checkpoint_every)
        cbs.append(writer)
    stop = _StopOnSignal(writer)
    try:
        with stop:
            history = fit(model, loaders, task, t, [*cbs, stop], progress=progress, resume=ckpt)
    except KeyboardInterrupt:
        raise RunInterrupted(run_dir, writer) from None
    model = unwrap_model(model)
    return {"config": cfg, "history": history, "num_params": history["num_params"],
            "model": model, "run_dir": None if run_dir is None else str(run_dir)}


def count_params(cfg: RunConfig, data: Dataset) -> int:
    """Trainable parameters of the model ``cfg`` builds for ``data`` (no training)."""
    model = build_model(cfg, data.input_shape, data.num_classes)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

