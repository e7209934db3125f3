"""Knowledge distillation (Hinton, Vinyals, Dean, *Distilling the Knowledge in a Neural
Network*, 2015) — the "Dark Knowledge" baseline of Araujo et al. (2020), Table 3."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .tasks import Classification, Task

__all__ = ["Distillation", "distillation_loss"]


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> Tensor:
    """``α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1-α)·CE(s, y)``; the ``T²`` factor keeps the
    soft-target gradients on the scale of the hard-target ones (Hinton et al. §2)."""
    soft_targets = F.softmax(teacher_logits / temperature, dim=1)
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), soft_targets,
                    reduction="batchmean") * temperature**2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)


class Distillation(Task):
    """A classification task trained on a teacher's softened outputs: the training loss is
    :func:`distillation_loss`; evaluation uses the base task's loss and metrics. The teacher
    runs in eval mode without gradients."""

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9,
                 base: Task | None = None) -> None:
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.base = base if base is not None else Classification()
        if not isinstance(self.base, Classification):
            raise ValueError("distillation needs a classification task")
        self.primary, self.higher_is_better = self.base.primary, self.base.higher_is_better
        self.teacher, self.temperature, self.alpha = teacher.eval(), temperature, alpha
        for p in teacher.parameters():
            p.requires_grad_(False)

    def loss(self, output, target):
        return self.base.loss(output, target)

    def training_loss(self, output, target, inputs):
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        return distillation_loss(output, teacher_logits, target, self.temperature, self.alpha)

    def meter(self):
        return self.base.meter()

    def __repr__(self) -> str:
        return f"Distillation(T={self.temperature}, alpha={self.alpha})"
