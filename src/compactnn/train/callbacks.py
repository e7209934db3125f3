"""Hooks into :func:`compactnn.train.fit`: logging, metrics files, checkpoints.

A callback sees a :class:`TrainState` after every optimisation step, after every epoch and at
the end. The ones here are what a run folder needs (:func:`compactnn.runs.run` attaches them);
step checkpoints are another callback, and a distributed run attaches the writers on rank 0
only (a change to ``run``, which today attaches them unconditionally).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .checkpoint import save_checkpoint, write_json

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

    @property
    def record(self) -> dict:
        """The last epoch's metrics."""
        return self.history["epochs"][-1]


class Callback:
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
    (model, optimizer, epoch, step) after every epoch, each written atomically."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        #: the checkpoint written last and the epoch it holds (``None`` before the first)
        self.last_checkpoint: Path | None = None
        self.last_epoch: int | None = None

    def on_epoch_end(self, state):
        write_json(self.run_dir / "metrics.json", state.history)
        path = self.run_dir / "checkpoint.pt"
        save_checkpoint(path, {"model": state.model.state_dict(),
                               "optimizer": state.optimizer.state_dict(),
                               "epoch": state.epoch, "step": state.step})
        self.last_checkpoint, self.last_epoch = path, state.epoch

    def on_train_end(self, state):
        write_json(self.run_dir / "metrics.json", state.history)
