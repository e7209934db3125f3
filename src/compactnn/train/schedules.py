"""Learning-rate schedules and optimizers, registered (``kind="schedule"`` / ``"optimizer"``).

A schedule maps ``(config, fraction of training done)`` to a multiplier of ``config.lr`` (one
marked ``per_example``, such as ``yt8m``, maps ``(config, examples seen)`` instead); an
optimizer builder maps ``(parameters, config)`` to a ``torch.optim.Optimizer``.
"""

from __future__ import annotations

import math

import torch

from ..registry import get, register

__all__ = ["lr_at", "make_optimizer"]


@register("constant", kind="schedule")
def constant(cfg, frac: float) -> float:
    return 1.0


@register("cosine", kind="schedule")
def cosine(cfg, frac: float) -> float:
    """Cosine decay to zero, no warm-up."""
    return 0.5 * (1 + math.cos(math.pi * frac))


def _steps(milestones, factors, frac: float) -> float:
    factor = 1.0
    for m, f in zip(milestones, factors, strict=True):
        if frac >= m:
            factor = f
    return factor


@register("piecewise", kind="schedule")
def piecewise(cfg, frac: float) -> float:
    """``lr_factors[i]`` from fraction ``lr_milestones[i]`` of training on."""
    return _steps(cfg.lr_milestones, cfg.lr_factors, frac)


@register("paper", kind="schedule")
def paper(cfg, frac: float) -> float:
    """Our reading of Araujo et al.'s piecewise-constant schedule: ×0.5, ×0.1, ×0.02 at 40, 60
    and 80 % of training (see :class:`compactnn.config.TrainConfig`)."""
    return _steps((0.4, 0.6, 0.8), (0.5, 0.1, 0.02), frac)


@register("yt8m", kind="schedule")
def yt8m(cfg, examples: int) -> float:
    """×0.8 every 4,000,000 training examples (staircase), the YouTube-8M starter code's
    ``exponential_decay`` with the DCNN paper's values; keyed on the examples seen
    (``step × batch_size``, the global batch), not on the fraction of training."""
    return 0.8 ** (examples // 4_000_000)


yt8m.per_example = True  # lr_at passes the examples seen


def lr_at(cfg, step: int, total_steps: int) -> float:
    """Learning rate at optimisation step ``step`` (0-based) of ``total_steps``."""
    schedule = get("schedule", cfg.schedule)
    if getattr(schedule, "per_example", False):
        return cfg.lr * schedule(cfg, step * cfg.batch_size)
    return cfg.lr * schedule(cfg, step / max(total_steps, 1))


@register("adam", kind="optimizer")
def adam(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@register("adamw", kind="optimizer")
def adamw(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@register("sgd", kind="optimizer")
def sgd(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    return get("optimizer", cfg.optimizer)([p for p in model.parameters() if p.requires_grad], cfg)
