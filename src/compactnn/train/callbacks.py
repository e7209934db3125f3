"""Hooks into :func:`compactnn.train.fit`: logging, metrics files, checkpoints.

A callback sees a :class:`TrainState` after every optimisation step, after every epoch and at
the end. The ones here are what a run folder needs (:func:`compactnn.runs.run` attaches them).
Under torchrun every rank runs the same callbacks at the same points (a checkpoint gathers
every rank's state); only rank 0 writes files.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import get_rng_state, save_checkpoint, write_json
from .distributed import gather_objects, rank_and_world

#: file names in a run folder: the latest checkpoint and the one before it
CHECKPOINT, PREVIOUS_CHECKPOINT = "checkpoint.pt", "checkpoint.prev.pt"

__all__ = ["Callback", "MetricsWriter", "PrintLogger", "TrainState"]


@dataclass
class TrainState:
    """What training has done so far. ``history`` is what ``fit`` returns."""

    model: nn.Module
    optimizer: object
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps done
    total_steps: int = 0
    history: dict = field(default_factory=dict)
    batch: int = 0  # batches done in the epoch in progress (0 between epochs)
    meter: object = None  # the epoch in progress's training meter
    sampler: object = None  # the training sampler when it is resumable (state_dict/resume)
    #: a callback asked to stop (:meth:`Callback.wants_stop`) and, under torchrun, every rank
    #: agreed at this step: callbacks save what they need in ``on_step_end`` and raise
    stopping: bool = False

    @property
    def record(self) -> dict:
        """The last epoch's metrics."""
        return self.history["epochs"][-1]

    def checkpoint(self) -> dict:
        """Everything an interrupted ``fit`` needs to continue as if it had not stopped:
        model, optimizer, counters, history, the epoch's meter, the sampler's position and
        every RNG (:func:`compactnn.train.fit` ``resume=``). As with ``state_dict()``, the
        model's and optimizer's tensors are the live ones: save (or copy) it before training
        goes on.

        What differs per process — the RNGs and, mid-epoch, the meter's sums over the rank's
        shares — is kept for every rank: ``ranks[r]`` is rank ``r``'s ``{"rng", "meter"}`` and
        ``world_size`` their number (``rng`` and ``meter`` are rank 0's). Under torchrun this
        is a collective (every rank calls it at the same step; the model, optimizer, history
        and sampler are the same everywhere) and only rank 0's return value holds ``ranks``
        (the others' is ``None``)."""
        mine = _to_cpu({"rng": get_rng_state(),
                        "meter": None if self.meter is None or not self.batch
                        else copy.deepcopy(self.meter.state_dict())})  # pickled across ranks
        ranks = gather_objects(mine)
        if ranks is None:
            return None
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "step": self.step, "batch": self.batch,
                "history": copy.deepcopy(self.history), **mine, "ranks": ranks,
                "world_size": len(ranks),
                "sampler": None if self.sampler is None else self.sampler.state_dict()}


def _to_cpu(x):
    """``x`` with every tensor in it on the CPU (containers rebuilt)."""
    if isinstance(x, Tensor):
        return x.cpu()
    if isinstance(x, dict):
        return {k: _to_cpu(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_cpu(v) for v in x)
    return x


class Callback:
    def wants_stop(self) -> bool:
        """Asked by ``fit`` before each step's backward (under torchrun at its sync points,
        agreed over the ranks): True sets ``state.stopping`` for this step's ``on_step_end``."""
        return False

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


class PrintLogger(Callback):
    """One line per epoch: loss, the train/val/test primary metric, learning rate, time."""

    def __init__(self, log: Callable[[str], None] = print, metric: str = "acc") -> None:
        self.log, self.metric = log, metric

    def on_epoch_end(self, state):
        r, m = state.record, self.metric
        parts = [f"  epoch {r['epoch']:3d}/{state.history['epochs_planned']}",
                 f"loss {r['train_loss']:.4f}"]
        parts += [f"{split} {r[f'{split}_{m}']:.4f}" for split in ("train", "val", "test")
                  if f"{split}_{m}" in r]
        parts += [f"lr {r['lr']:.2e}", f"{r['time_s']:.1f}s"]
        self.log("  ".join(parts))


class MetricsWriter(Callback):
    """``metrics.json`` (the history) after every epoch and at the end, and ``checkpoint.pt``
    (:meth:`TrainState.checkpoint`: all a resumed run needs) after every epoch and every
    ``every_steps`` steps, each written atomically; the one before is kept as
    ``checkpoint.prev.pt`` (a crash while writing leaves a good one). Under torchrun every rank
    attaches one (the checkpoint gathers every rank's RNG and meter state) and rank 0's writes;
    ``run_dir`` may be ``None`` on the others."""

    def __init__(self, run_dir: str | Path | None, every_steps: int | None = None) -> None:
        self.main = rank_and_world()[0] == 0
        if self.main and run_dir is None:
            raise ValueError("MetricsWriter needs a run folder (on rank 0)")
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.every_steps = every_steps
        #: the checkpoint written last, its epoch and step (``None`` before the first)
        self.last_checkpoint: Path | None = None
        self.last_epoch: int | None = None
        self.last_step: int | None = None

    def save(self, state: TrainState) -> None:
        ckpt = state.checkpoint()  # on every rank: a collective under torchrun
        if self.main:
            path = self.run_dir / CHECKPOINT
            if path.exists():
                os.replace(path, self.run_dir / PREVIOUS_CHECKPOINT)
            save_checkpoint(path, ckpt)
        if rank_and_world()[1] > 1:  # no rank goes on (or exits, after a stop) mid-write
            torch.distributed.barrier()
        self.last_checkpoint = None if self.run_dir is None else self.run_dir / CHECKPOINT
        self.last_epoch, self.last_step = state.epoch, state.step

    def on_step_end(self, state):
        if self.every_steps and state.step % self.every_steps == 0 and state.batch:
            self.save(state)

    def on_epoch_end(self, state):
        if self.main:
            write_json(self.run_dir / "metrics.json", state.history)
        self.save(state)

    def on_train_end(self, state):
        if self.main:
            write_json(self.run_dir / "metrics.json", state.history)
