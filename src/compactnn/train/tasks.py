"""Tasks: what a model's output means — its loss and its metrics (``kind="task"``).

A task supplies ``loss(output, target)`` (mean over the batch) and a fresh :class:`Meter` per
pass over the data. Meters accumulate on the model's device, so training does not wait for the
device at every step, and ``compute()`` turns them into floats once per epoch. Classification
and regression keep sums (what a distributed run would all-reduce); GAP keeps every example's
top-k scores (O(N·k) memory; a distributed run would all-gather them).

* ``classification``: single-label, cross-entropy; metrics ``loss``, ``acc``.
* ``multilabel``: independent sigmoids, binary cross-entropy; metrics ``loss``, ``hit1`` (the
  top prediction is a true label) and ``gap`` — global average precision over the top-``k``
  (20) predictions of every example, YouTube-8M's metric.
* ``regression``: mean squared error; metric ``mse`` (= ``loss``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor
from torch.nn import functional as F

from ..registry import get, register

__all__ = ["Classification", "Meter", "MultiLabel", "Regression", "Task",
           "global_average_precision", "make_task"]


class Meter(ABC):
    """Accumulates one pass over the data; ``update`` never synchronises with the device."""

    def __init__(self) -> None:
        self.n = 0
        self.loss_sum: Tensor | None = None

    def _add_loss(self, loss: Tensor, n: int) -> None:
        term = loss.detach().double() * n
        self.loss_sum = term if self.loss_sum is None else self.loss_sum + term
        self.n += n

    @abstractmethod
    def update(self, output: Tensor, target: Tensor, loss: Tensor) -> None:
        """Add a batch: the model's output, the targets and the batch's mean loss."""

    def state_dict(self) -> dict:
        """The running sums (tensors, lists of tensors, ints): what a checkpoint taken in the
        middle of an epoch must hold for the epoch's metrics to come out the same."""
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)

    def compute(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {"loss": 0.0 if self.loss_sum is None else self.loss_sum.item() / n}


class Task(ABC):
    """Loss and metrics of one kind of prediction problem."""

    #: the metric reports and model selection look at, and whether larger is better
    primary: str = "loss"
    higher_is_better: bool = False

    @abstractmethod
    def loss(self, output: Tensor, target: Tensor) -> Tensor: ...

    def training_loss(self, output: Tensor, target: Tensor, inputs: Tensor) -> Tensor:
        """The loss optimised in training (distillation also looks at the inputs)."""
        return self.loss(output, target)

    @abstractmethod
    def meter(self) -> Meter: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --- classification -----------------------------------------------------------------------
class _ClassificationMeter(Meter):
    def __init__(self) -> None:
        super().__init__()
        self.correct: Tensor | None = None

    def update(self, output, target, loss):
        self._add_loss(loss, len(target))
        hits = (output.detach().argmax(1) == target).sum()
        self.correct = hits if self.correct is None else self.correct + hits

    def compute(self):
        out = super().compute()
        out["acc"] = 0.0 if self.correct is None else self.correct.item() / max(self.n, 1)
        return out


@register("classification", kind="task")
class Classification(Task):
    """Single-label classification: logits ``(N, C)``, integer targets ``(N,)``."""

    primary, higher_is_better = "acc", True

    def loss(self, output, target):
        return F.cross_entropy(output, target)

    def meter(self):
        return _ClassificationMeter()


# --- multi-label ----------------------------------------------------------------------------
def global_average_precision(scores: Tensor, hits: Tensor, num_positives: int | float) -> float:
    """GAP: the average precision of all ``(score, hit)`` pairs pooled over examples and ranked
    by score, normalised by the total number of true labels (``num_positives``), as in the
    YouTube-8M evaluation. ``scores``/``hits``: the top-k predictions of each example."""
    if num_positives <= 0:
        return 0.0
    order = torch.argsort(scores.reshape(-1).double(), descending=True, stable=True)
    h = hits.reshape(-1)[order].double()
    precision = h.cumsum(0) / torch.arange(1, len(h) + 1, dtype=torch.float64, device=h.device)
    return float((precision * h).sum().item() / num_positives)


class _MultiLabelMeter(Meter):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.scores: list[Tensor] = []
        self.hits: list[Tensor] = []
        self.positives: Tensor | None = None

    def update(self, output, target, loss):
        self._add_loss(loss, len(target))
        k = min(self.k, output.shape[1])
        top, idx = output.detach().float().topk(k, dim=1)
        self.scores.append(torch.sigmoid(top))
        self.hits.append(target.gather(1, idx) > 0)
        pos = (target > 0).sum()
        self.positives = pos if self.positives is None else self.positives + pos

    def compute(self):
        out = super().compute()
        if not self.scores:
            return {**out, "gap": 0.0, "hit1": 0.0}
        # a resumed epoch's saved part is on the CPU, the rest on the training device
        dev = self.scores[-1].device
        scores = torch.cat([t.to(dev) for t in self.scores])
        hits = torch.cat([t.to(dev) for t in self.hits])
        out["gap"] = global_average_precision(scores, hits, self.positives.item())
        out["hit1"] = hits[:, 0].double().mean().item()
        return out


@register("multilabel", kind="task")
class MultiLabel(Task):
    """Multi-label classification: logits ``(N, C)``, 0/1 targets ``(N, C)``; binary
    cross-entropy on every class, GAP over the top ``k`` predictions."""

    primary, higher_is_better = "gap", True

    def __init__(self, k: int = 20) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k

    def loss(self, output, target):
        return F.binary_cross_entropy_with_logits(output, target.to(output.dtype))

    def meter(self):
        return _MultiLabelMeter(self.k)


# --- regression -----------------------------------------------------------------------------
class _RegressionMeter(Meter):
    def update(self, output, target, loss):
        self._add_loss(loss, len(target))

    def compute(self):
        out = super().compute()
        out["mse"] = out["loss"]
        return out


@register("regression", kind="task")
class Regression(Task):
    """Regression: outputs and targets ``(N, D)``; mean squared error."""

    primary, higher_is_better = "mse", False

    def loss(self, output, target):
        return F.mse_loss(output, target.to(output.dtype).view_as(output))

    def meter(self):
        return _RegressionMeter()


def make_task(name: str, **kwargs) -> Task:
    return get("task", name)(**kwargs)
