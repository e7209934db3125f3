"""Tasks: losses and metrics (GAP checked by hand and against scikit-learn), and a multi-label
task trained through fit on a streaming IterableDataset."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from compactnn.config import TrainConfig
from compactnn.models import make_model
from compactnn.train import (
    Classification,
    MultiLabel,
    fit,
    global_average_precision,
    make_task,
)


def _logit(p):
    return math.log(p / (1 - p))


def test_gap_hand_computed_example():
    # video A: top-2 = class 0 (0.9, true), class 1 (0.6, false); 1 true label
    # video B: top-2 = class 0 (0.8, false), class 1 (0.7, true); 2 true labels (class 2 ranks
    # below the top 2). Pooled ranking: hit, miss, hit, miss → AP = (1/1 + 2/3) / 3 = 5/9.
    out = torch.tensor([[_logit(0.9), _logit(0.6), -5.0, -6.0],
                        [_logit(0.8), _logit(0.7), -5.0, -6.0]])
    y = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.float32)
    meter = MultiLabel(k=2).meter()
    meter.update(out[:1], y[:1], torch.tensor(0.0))  # two batches pool into one ranking
    meter.update(out[1:], y[1:], torch.tensor(0.0))
    m = meter.compute()
    assert m["gap"] == pytest.approx(5 / 9) and m["hit1"] == pytest.approx(0.5)


def test_gap_equals_an_independent_computation():
    """GAP = scikit-learn's AP of the pooled top-k list × (true labels in the pool / all true
    labels), since the YouTube-8M metric normalises by every true label, retrieved or not."""
    rng = np.random.default_rng(0)
    scores = rng.random((50, 30))
    labels = (rng.random((50, 30)) < 0.1).astype(np.float32)
    k = 5
    top = np.argsort(-scores, axis=1)[:, :k]
    pool_s = np.take_along_axis(scores, top, 1).ravel()
    pool_y = np.take_along_axis(labels, top, 1).ravel()
    expected = average_precision_score(pool_y, pool_s) * pool_y.sum() / labels.sum()
    got = global_average_precision(torch.from_numpy(pool_s), torch.from_numpy(pool_y),
                                   labels.sum())
    assert got == pytest.approx(expected, rel=1e-12)
    meter = MultiLabel(k=k).meter()
    meter.update(torch.logit(torch.from_numpy(scores)), torch.from_numpy(labels),
                 torch.tensor(0.0))
    assert meter.compute()["gap"] == pytest.approx(expected, rel=1e-9)


def test_classification_and_regression_meters():
    out = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    y = torch.tensor([0, 1, 1])
    task = Classification()
    meter = task.meter()
    meter.update(out, y, task.loss(out, y))
    m = meter.compute()
    assert m["acc"] == pytest.approx(2 / 3)
    assert m["loss"] == pytest.approx(torch.nn.functional.cross_entropy(out, y).item())
    reg = make_task("regression")
    meter = reg.meter()
    t = torch.zeros(3, 2)
    meter.update(out, t, reg.loss(out, t))
    assert meter.compute()["mse"] == pytest.approx(out.pow(2).mean().item())
    assert (reg.primary, reg.higher_is_better) == ("mse", False)
    with pytest.raises(ValueError, match="unknown task"):
        make_task("ranking")
    with pytest.raises(ValueError, match="k must"):
        MultiLabel(k=0)


class ToyTags(IterableDataset):
    """A stream of (features, tags): 8 tags, each on when a fixed random projection of the 16
    features exceeds a threshold (≈ 20 % of tags on). Sharded across DataLoader workers."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        self.w = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))

    def __iter__(self):
        info = get_worker_info()
        shard, shards = (0, 1) if info is None else (info.id, info.num_workers)
        gen = torch.Generator().manual_seed(self.seed)
        for i in range(self.n):
            x = torch.randn(16, generator=gen)
            if i % shards == shard:
                yield x, (x @ self.w > 1.2).float()


def test_multilabel_task_trains_on_a_streaming_dataset():
    train = DataLoader(ToyTags(4096, seed=1), batch_size=64)
    test = DataLoader(ToyTags(1024, seed=2), batch_size=256)
    torch.manual_seed(0)
    model = make_model("mlp", 16, 8, layer="dense", width=64, depth=1, activation="relu")
    task = MultiLabel(k=3)
    before = task.meter()
    with torch.no_grad():
        for x, y in test:
            out = model(x)
            before.update(out, y, task.loss(out, y))
    cfg = TrainConfig(epochs=3, lr=1e-2, schedule="cosine", steps_per_epoch=64)
    hist = fit(model, {"train": train, "test": test}, task, cfg, progress=False)
    first, last = hist["epochs"][0], hist["final"]
    assert hist["primary"] == "gap"
    assert last["test_gap"] > max(0.7, before.compute()["gap"] + 0.4), (before.compute(), last)
    assert last["test_loss"] < first["test_loss"]
    assert hist["epochs"][-1]["lr"] < cfg.lr  # the schedule ran over 3 × 64 steps
