"""The DCNN paper's YouTube-8M models (Araujo et al. 2020, §6.3, Tables 4 and 5), registered.

Inputs (:mod:`compactnn.data.youtube8m`): video level ``(N, 1152)`` = mean rgb (1,024) + mean
audio (128); frame level ``(N, 300, 1153)`` = per frame rgb, audio and a 0/1 frame mask.
3,862 classes (2018 vocabulary). Both models return logits for ``multilabel`` (sigmoid BCE).

**Video level (Table 4)** — ``yt8m-video``, a :class:`~compactnn.models.StructuredMLP` with
BatchNorm before each non-linearity. The paper's counts are reproduced exactly, BatchNorm's
affine parameters (2 per unit) left out, by (our inference):

* original (dense, 5.7M): ``layer="dense", depth=1, classifier="dense"``: 1152→1152→3862,
  ``1152·1153 + 1152·3862 + 3862 = 5,781,142`` (the paper truncates: 5.7M);
* k DC: ``layer="dc", depth=k``: k DC layers 1152→1152 (``3·1152 = 3,456`` each) and a DC
  classifier 1152→3862 (``n = 3862``: ``3862 + 2·3862 = 11,586``): ``3,456·k + 11,586`` =
  25,410 (k = 4), 122,178 (k = 32);
* 4 DC + 1 FC: ``depth=4, classifier="dense"``: ``13,824 + 4,452,886 = 4,466,710`` (4.46M).

**Frame level (Table 5)** — ``yt8m-frame``: the authors' code (github
araujoalexandre/youtube8m-circulant, ``CirulantDiagonalNetwork``; the Table 5 experiment uses
the rgb frames only) in three blocks, each ``"dense"`` or ``"dc"``:

1. DBoF embedding: every valid frame ``Linear(1024 → 8192) → BN → ReLU6``, max-pooled over the
   video's frames (``cluster_size`` 8,192; with ``audio=True`` also ``128 → 4096``);
2. FC: ``Linear(8192 → 512) → BN → ReLU6`` (per modality, concatenated);
3. classifier: Mixture of Experts (4 mixtures and a dummy expert: per class
   ``p = Σᵢ softmax(gates)ᵢ · σ(expertᵢ)``) then Context Gating ``p ⊙ σ(BN(p W))``.

Logits are ``log p − log(1 − p)`` computed in log space (log-softmax/log-sigmoid, no
clamping), so ``sigmoid(logits)`` is the model's probability and BCE-with-logits its loss.
Counts (all trainable parameters, BatchNorm included): original 45,334,632, DBoF with DC
36,962,408, FC with DC 41,149,032, MoE with DC 12,700,732 — the paper's 45M / 36M (80) /
41M (91) / 12M (26) are truncations (its percentages are those of the truncated millions).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers import make_linear
from ..registry import register
from .mlp import StructuredMLP

__all__ = ["ContextGating", "DBoF", "MixtureOfExperts", "YouTube8MFrameModel",
           "YouTube8MVideoModel", "paper_weight_count"]

_BLOCK_KINDS = ("dense", "dc")


def paper_weight_count(model: nn.Module) -> int:
    """Trainable parameters outside BatchNorm layers (what Table 4 counts)."""
    bn = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
          for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in bn)


def _linear(kind: str, in_f: int, out_f: int, *, bias: bool) -> nn.Module:
    if kind not in _BLOCK_KINDS:
        raise ValueError(f"a block is 'dense' or 'dc', got {kind!r}")
    return make_linear(kind, in_f, out_f, bias=bias)


@register("yt8m-video", kind="model")
class YouTube8MVideoModel(StructuredMLP):
    """Video-level model of Table 4: :class:`StructuredMLP` with BatchNorm before every
    non-linearity by default (see the module docstring for the paper's configurations)."""

    def __init__(self, in_features: int, num_classes: int, **kwargs) -> None:
        kwargs.setdefault("batchnorm", True)
        super().__init__(in_features, num_classes, **kwargs)


class DBoF(nn.Module):
    """Deep Bag-of-Frames: each valid frame ``x_t`` → ``ReLU6(BN(W x_t))`` (``W``: ``dense`` or
    ``dc``, no bias: BatchNorm's shift is the bias), max-pooled over the frames of its video.

    ``forward(frames (N, T, F), mask (N, T) bool)`` → ``(N, cluster_size)``; only the valid
    frames are projected (cost ``O(valid frames · F · K)`` dense, ``O(· K log K)`` DC); a video
    without frames gives zeros. BatchNorm's statistics are over the valid frames of the batch."""

    def __init__(self, feature_size: int, cluster_size: int, kind: str = "dense") -> None:
        super().__init__()
        self.proj = _linear(kind, feature_size, cluster_size, bias=False)
        self.bn = nn.BatchNorm1d(cluster_size)

    def forward(self, frames: Tensor, mask: Tensor) -> Tensor:
        n = frames.shape[0]
        valid = frames[mask]  # (V, F)
        h = F.relu6(self.bn(self.proj(valid))) if len(valid) > 1 or not self.training else \
            F.relu6(self.proj(valid))
        owner = torch.arange(n, device=frames.device).unsqueeze(1).expand_as(mask)[mask]
        out = h.new_zeros(n, h.shape[1])  # ReLU6 ≥ 0: max-pooling from 0 is exact
        return out.scatter_reduce(0, owner.unsqueeze(1).expand_as(h), h, reduce="amax",
                                  include_self=True)


class MixtureOfExperts(nn.Module):
    """YouTube-8M's MoE classifier: ``mixtures`` logistic experts and a dummy expert that
    always predicts 0, mixed per class by a softmax gate: ``p_c = Σ_{i<m} softmax(g_c)_i ·
    σ(e_{c,i})`` with ``g = G x`` (no bias, ``C·(m+1)`` outputs) and ``e = E x + b``
    (``C·m``). ``forward`` returns ``(log p, log(1 − p))``, both computed in log space."""

    def __init__(self, in_features: int, num_classes: int, mixtures: int = 4,
                 kind: str = "dense") -> None:
        super().__init__()
        if mixtures < 1:
            raise ValueError(f"mixtures must be >= 1, got {mixtures}")
        self.num_classes, self.mixtures = num_classes, mixtures
        self.gates = _linear(kind, in_features, num_classes * (mixtures + 1), bias=False)
        self.experts = _linear(kind, in_features, num_classes * mixtures, bias=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        m, c = self.mixtures, self.num_classes
        log_gate = F.log_softmax(self.gates(x).view(-1, c, m + 1), dim=-1)
        e = self.experts(x).view(-1, c, m)
        log_p = torch.logsumexp(log_gate[..., :m] + F.logsigmoid(e), dim=-1)
        log_q = torch.logsumexp(torch.cat([log_gate[..., m:], log_gate[..., :m]
                                           + F.logsigmoid(-e)], dim=-1), dim=-1)
        return log_p, log_q


class ContextGating(nn.Module):
    """Context Gating (Miech et al. 2017) on probabilities: ``p' = p ⊙ σ(BN(p W))``; on
    ``(log p, log(1 − p))`` it returns ``(log p', log(1 − p'))`` in log space."""

    def __init__(self, features: int, kind: str = "dense") -> None:
        super().__init__()
        self.proj = _linear(kind, features, features, bias=False)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, log_p: Tensor, log_q: Tensor) -> tuple[Tensor, Tensor]:
        g = self.bn(self.proj(log_p.exp()))
        log_p2 = log_p + F.logsigmoid(g)
        log_q2 = torch.logaddexp(F.logsigmoid(-g), F.logsigmoid(g) + log_q)
        return log_p2, log_q2


@register("yt8m-frame", kind="model")
class YouTube8MFrameModel(nn.Module):
    """The frame-level model of Table 5 (see the module docstring): DBoF embedding → FC →
    MoE + Context Gating, each block ``"dense"`` or ``"dc"`` (``dbof``, ``fc``, ``moe``; the
    ``moe`` block holds the MoE's gates and experts and the Context Gating matrix).

    Inputs ``(N, T, F)``: per frame ``F − 1`` features and a last column marking the frames
    (> 0.5) from padding; of the features the first ``min(1024, F − 1)`` are rgb, the next
    (up to 128) audio — YouTube-8M's ``(N, 300, 1153)``. ``audio=False`` (the paper's
    Table 5) uses the rgb frames only. ``in_features`` must be ``T · F``."""

    def __init__(self, in_features: int, num_classes: int, *,
                 input_shape: tuple[int, ...] | None = None, cluster_size: int = 8192,
                 hidden_size: int = 512, mixtures: int = 4, dbof: str = "dense",
                 fc: str = "dense", moe: str = "dense", audio: bool = False,
                 gating: bool = True) -> None:
        super().__init__()
        from ..data.youtube8m import AUDIO_FEATURES, FRAME_INPUT, RGB_FEATURES

        shape = tuple(input_shape) if input_shape is not None else (
            in_features // FRAME_INPUT, FRAME_INPUT)
        if len(shape) != 2 or shape[1] < 2 or math.prod(shape) != in_features:
            raise ValueError(f"yt8m-frame takes frames: input_shape (frames, features + 1 mask "
                             f"column), e.g. (300, {FRAME_INPUT}); got {shape} for "
                             f"{in_features} inputs")
        rgb = min(RGB_FEATURES, shape[1] - 1)
        n_audio = min(AUDIO_FEATURES, shape[1] - 1 - rgb)
        if audio and n_audio == 0:
            raise ValueError(f"audio=True needs audio features after the {rgb} rgb ones; "
                             f"frames of {shape[1]} columns have none")
        for name, kind in (("dbof", dbof), ("fc", fc), ("moe", moe)):
            if kind not in _BLOCK_KINDS:
                raise ValueError(f"{name} must be 'dense' or 'dc', got {kind!r}")
        self.config = dict(in_features=in_features, num_classes=num_classes,
                           input_shape=list(shape), cluster_size=cluster_size,
                           hidden_size=hidden_size, mixtures=mixtures, dbof=dbof, fc=fc,
                           moe=moe, audio=audio, gating=gating)
        self.frames, self.rgb, self.audio = shape[0], rgb, n_audio
        self.use_audio = audio
        self.dbof_rgb = DBoF(rgb, cluster_size, dbof)
        self.fc_rgb = nn.Sequential(_linear(fc, cluster_size, hidden_size, bias=False),
                                    nn.BatchNorm1d(hidden_size), nn.ReLU6())
        width = hidden_size
        if audio:
            self.dbof_audio = DBoF(n_audio, cluster_size // 2, dbof)
            self.fc_audio = nn.Sequential(_linear(fc, cluster_size // 2, hidden_size,
                                                  bias=False),
                                          nn.BatchNorm1d(hidden_size), nn.ReLU6())
            width += hidden_size
        self.moe = MixtureOfExperts(width, num_classes, mixtures, moe)
        self.gating = ContextGating(num_classes, moe) if gating else None

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(x.shape[0], self.frames, -1)
        mask = x[..., -1] > 0.5
        rgb = x[..., :self.rgb]
        h = self.fc_rgb(self.dbof_rgb(rgb, mask))
        if self.use_audio:
            audio = x[..., self.rgb:self.rgb + self.audio]
            h = torch.cat([h, self.fc_audio(self.dbof_audio(audio, mask))], dim=1)
        log_p, log_q = self.moe(h)
        if self.gating is not None:
            log_p, log_q = self.gating(log_p, log_q)
        return log_p - log_q  # logit(p)
