"""Training loop: Adam/SGD, LR schedules, clipping, per-epoch evaluation, checkpoints."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint, write_json

__all__ = ["NonFiniteLossError", "TrainConfig", "evaluate", "fit", "lr_at"]

SCHEDULES = ("constant", "piecewise", "paper", "cosine")
OPTIMIZERS = ("adam", "adamw", "sgd")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one run.

    ``schedule``: ``constant``; ``piecewise`` (multiply the LR by ``lr_factors[i]`` from
    fraction ``lr_milestones[i]`` of the total steps on); ``paper`` — Araujo et al.'s
    piecewise-constant schedule, ``lr × (1, 0.5, 0.1, 0.02)`` (5e-4 → 2.5e-4 → 5e-5 → 1e-5 at
    ``lr=5e-4``) with the steps at 40 %, 60 % and 80 % of training (the paper steps at
    40K/60K/80K iterations); ``cosine`` (to zero, no warm-up).
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_factors: tuple[float, ...] = (0.1, 0.01)
    grad_clip: float | None = None
    seed: int = 0
    device: str = "cpu"
    eval_batch_size: int = 2048

    def __post_init__(self):
        def bad(msg):
            raise ValueError(f"TrainConfig: {msg}")

        if not isinstance(self.epochs, int) or self.epochs < 1:
            bad(f"epochs must be a positive int, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.optimizer not in OPTIMIZERS:
            bad(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0:
            bad(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.schedule not in SCHEDULES:
            bad(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if len(self.lr_milestones) != len(self.lr_factors):
            bad("lr_milestones and lr_factors must have the same length")
        if any(not 0 < m < 1 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(
                self.lr_milestones):
            bad("lr_milestones must be increasing fractions of training in (0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            bad(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate at optimisation step ``step`` (0-based) of ``total_steps``."""
    frac = step / max(total_steps, 1)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * frac))
    milestones, factors = ((0.4, 0.6, 0.8), (0.5, 0.1, 0.02)) if cfg.schedule == "paper" else (
        cfg.lr_milestones, cfg.lr_factors)
    factor = 1.0
    for m, f in zip(milestones, factors, strict=True):
        if frac >= m:
            factor = f
    return cfg.lr * factor


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 2048,
             device: str = "cpu") -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    model.train(was_training)
    n = max(len(x), 1)
    return {"loss": loss_sum / n, "acc": correct / n}


LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def fit(
    model: nn.Module,
    data,
    cfg: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    loss_fn: LossFn | None = None,
) -> dict:
    """Train ``model`` on ``data`` (a :class:`compactnn.data.Dataset`) and return the history.

    After every epoch: test (and validation, when present) accuracy, the learning rate and the
    wall time are recorded; with ``run_dir`` the metrics JSON and an atomic checkpoint
    (``checkpoint.pt``: model and optimizer state, epoch) are written there.
    ``loss_fn(logits, targets, inputs)`` replaces cross-entropy (used by distillation).
    Raises :class:`NonFiniteLossError` as soon as the loss is NaN or infinite.
    """
    if len(data.x_train) == 0:
        raise ValueError("the training set is empty")
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    model.to(device)
    opt = _make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(data.x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    run_dir = Path(run_dir) if run_dir is not None else None
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    history: dict = {"num_params": num_params, "epochs": [], "config": cfg.to_dict()}
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=not progress, mininterval=0.5)
        for b in bar:
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            xb, yb = data.x_train[idx].to(device), data.y_train[idx].to(device)
            lr = lr_at(cfg, step, total)
            for group in opt.param_groups:
                group["lr"] = lr
            logits = model(xb)
            loss = F.cross_entropy(logits, yb) if loss_fn is None else loss_fn(logits, yb, xb)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at epoch {epoch}, step {step} (lr={lr:.3g}); "
                    "lower the learning rate, enable --grad-clip, or check the initialization"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            if b % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        train_time = time.perf_counter() - t0
        rec = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / n, "train_acc": correct / n,
               "time_s": train_time}
        test = evaluate(model, data.x_test, data.y_test, cfg.eval_batch_size, cfg.device)
        rec.update(test_loss=test["loss"], test_acc=test["acc"])
        if data.x_val is not None:
            val = evaluate(model, data.x_val, data.y_val, cfg.eval_batch_size, cfg.device)
            rec.update(val_loss=val["loss"], val_acc=val["acc"])
        history["epochs"].append(rec)
        if log is not None:
            val_s = f" val {rec['val_acc']:.4f}" if "val_acc" in rec else ""
            log(f"  epoch {epoch:3d}/{cfg.epochs}  loss {rec['train_loss']:.4f}  "
                f"train {rec['train_acc']:.4f}{val_s}  test {rec['test_acc']:.4f}  "
                f"lr {lr:.2e}  {train_time:.1f}s")
        if run_dir is not None:
            write_json(run_dir / "metrics.json", history)
            save_checkpoint(run_dir / "checkpoint.pt",
                            {"model": model.state_dict(), "optimizer": opt.state_dict(),
                             "epoch": epoch, "train_config": cfg.to_dict()})
    last = history["epochs"][-1]
    history["final"] = {k: last[k] for k in last if k.endswith("acc") or k.endswith("loss")}
    history["time_per_epoch_s"] = sum(e["time_s"] for e in history["epochs"]) / cfg.epochs
    if run_dir is not None:
        write_json(run_dir / "metrics.json", history)
    return history
