"""Knowledge distillation (Hinton, Vinyals, Dean, *Distilling the Knowledge in a Neural
Network*, 2015) — the "Dark Knowledge" baseline of Araujo et al. (2020), Table 3."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["distillation_loss"]


def distillation_loss(teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9):
    """Loss ``α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1-α)·CE(s, y)`` for :func:`fit`.

    The teacher runs in eval mode without gradients; the ``T²`` factor keeps the soft-target
    gradients on the scale of the hard-target ones (Hinton et al. §2).
    """
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(logits: Tensor, targets: Tensor, inputs: Tensor) -> Tensor:
        with torch.no_grad():
            soft_targets = F.softmax(teacher(inputs) / temperature, dim=1)
        soft = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft_targets,
                        reduction="batchmean") * temperature**2
        return alpha * soft + (1 - alpha) * F.cross_entropy(logits, targets)

    return loss_fn
