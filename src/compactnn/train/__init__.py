"""Training: ``fit`` on loaders and tasks, schedules, callbacks, atomic checkpoints."""

from ..config import TrainConfig
from .callbacks import (
           CHECKPOINT,
           PREVIOUS_CHECKPOINT,
           Callback,
           MetricsWriter,
           PrintLogger,
           TrainState,
)
from .checkpoint import git_hash, load_checkpoint, save_checkpoint, write_json, write_text
from .distill import Distillation, distillation_loss
from .loop import NonFiniteLossError, evaluate, fit
from .schedules import lr_at, make_optimizer
from .tasks import Classification, MultiLabel, Regression, Task, global_average_precision, make_task

__all__ = ["CHECKPOINT", "PREVIOUS_CHECKPOINT", "Callback", "Classification", "Distillation",
           "MetricsWriter", "MultiLabel", "NonFiniteLossError", "PrintLogger", "Regression", "Task",
           "TrainConfig", "TrainState", "distillation_loss", "evaluate", "fit", "git_hash",
           "global_average_precision", "load_checkpoint", "lr_at", "make_optimizer", "make_task",
           "save_checkpoint", "write_json", "write_text"]
