"""Training: loop, schedules, atomic checkpoints."""

from .checkpoint import git_hash, load_checkpoint, save_checkpoint, write_json
from .distill import distillation_loss
from .loop import NonFiniteLossError, TrainConfig, evaluate, fit, lr_at

__all__ = ["NonFiniteLossError", "TrainConfig", "distillation_loss", "evaluate", "fit",
           "git_hash", "load_checkpoint", "lr_at", "save_checkpoint", "write_json"]
