"""fit(model, loaders, task, config, callbacks): schedules, NaN guard, callbacks, checkpoints."""

import copy
import itertools
import json

import pytest
import torch
from torch import nn

from compactnn import DCNN
from compactnn.config import TrainConfig
from compactnn.data import in_memory_loaders, load_dataset
from compactnn.train import (
    Callback,
    Classification,
    MetricsWriter,
    NonFiniteLossError,
    evaluate,
    fit,
    load_checkpoint,
    lr_at,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_fraction=0.1)


def _loaders(data, cfg, seed=0):
    return in_memory_loaders(data, cfg.batch_size, cfg.eval_batch_size, seed)


def test_schedules():
    paper = TrainConfig(lr=5e-4, schedule="paper")
    got = [lr_at(paper, s, 100) for s in (0, 39, 40, 60, 80, 99)]
    assert got == pytest.approx([5e-4, 5e-4, 2.5e-4, 5e-5, 1e-5, 1e-5])
    cos = TrainConfig(lr=1.0, schedule="cosine")
    assert lr_at(cos, 0, 10) == 1.0 and lr_at(cos, 5, 10) == pytest.approx(0.5)
    pw = TrainConfig(lr=1.0, schedule="piecewise", lr_milestones=(0.5,), lr_factors=(0.1,))
    assert lr_at(pw, 4, 10) == 1.0 and lr_at(pw, 5, 10) == 0.1
    assert lr_at(TrainConfig(lr=0.3, schedule="constant"), 7, 10) == 0.3
    assert TrainConfig().schedule == "cosine"  # the CLI and the config agree: one default


def test_nan_loss_raises_clear_error(digits):
    model = DCNN(64, 10, depth=2)
    with torch.no_grad():
        model.net[0].c.fill_(float("nan"))
    cfg = TrainConfig(epochs=1)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 0–0"):
        fit(model, _loaders(digits, cfg), Classification(), cfg, progress=False)


def test_nan_check_without_a_sync_every_step(digits, monkeypatch):
    """With ``sync_every`` = 50 (an accelerator's default) the loss is read back once per 50
    steps, not per step, and a NaN is still caught."""
    calls = []
    real = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: calls.append(1) or real(t))
    cfg = TrainConfig(epochs=1, batch_size=8, optimizer="sgd")  # 152 steps; Adam reads .item()
    fit(DCNN(64, 10, depth=1), {"train": _loaders(digits, cfg)["train"]}, Classification(), cfg,
        progress=False, sync_every=50)
    assert len(calls) < 152 // 10, len(calls)  # 3 checks + end-of-epoch metrics, not 152
    model = DCNN(64, 10, depth=1)
    with torch.no_grad():
        model.net[0].c.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 0–49"):
        fit(model, _loaders(digits, cfg), Classification(), cfg, progress=False, sync_every=50)


def test_fit_history_callbacks_and_checkpoint(tmp_path, digits):
    model = DCNN(64, 10, depth=2, width=128)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3, optimizer="sgd", grad_clip=1.0,
                      weight_decay=1e-4)
    seen = []

    class Spy(Callback):
        def on_step_end(self, state):
            seen.append(("step", state.step))

        def on_epoch_end(self, state):
            seen.append(("epoch", state.epoch, state.record["test_acc"]))

        def on_train_end(self, state):
            seen.append(("end", state.step))

    hist = fit(model, _loaders(digits, cfg), Classification(), cfg,
               [MetricsWriter(tmp_path), Spy()], progress=False)
    steps = len(_loaders(digits, cfg)["train"])
    assert [s for s in seen if s[0] != "step"] == [
        ("epoch", 1, hist["epochs"][0]["test_acc"]), ("epoch", 2, hist["final"]["test_acc"]),
        ("end", 2 * steps)]
    assert len(hist["epochs"]) == 2 and {"val_acc", "train_acc", "lr"} <= set(hist["epochs"][0])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["final"]["test_acc"] == hist["final"]["test_acc"]
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 2 * steps and "optimizer" in ckpt
    fresh = DCNN(64, 10, depth=2, width=128)
    fresh.load_state_dict(ckpt["model"])
    x = digits.x_test[:5]
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_training_is_reproducible(digits):
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        cfg = TrainConfig(epochs=1)
        runs.append(fit(DCNN(64, 10, depth=1), _loaders(digits, cfg, seed=5), Classification(),
                        cfg, progress=False))
    assert runs[0]["final"] == runs[1]["final"]


def test_batches_follow_one_seeded_permutation_per_epoch(digits):
    """The training order is ``randperm`` of a generator seeded with the run's seed, one per
    epoch, cut into consecutive batches (the order the loop had before loaders)."""
    loader = in_memory_loaders(digits, 100, 1000, seed=7)["train"]
    gen = torch.Generator().manual_seed(7)
    for _ in range(2):
        perm = torch.randperm(len(digits.x_train), generator=gen)
        batches = list(loader)
        assert torch.equal(torch.cat([y for _, y in batches]), digits.y_train[perm])
        assert [len(x) for x, _ in batches[:-1]] == [100] * (len(batches) - 1)


def test_checkpoints_load_safely(tmp_path):
    p = tmp_path / "c.pt"
    save_checkpoint(p, {"w": torch.ones(3)})
    assert torch.equal(load_checkpoint(p)["w"], torch.ones(3))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt: it holds objects other than tensors"):
        load_checkpoint(tmp_path / "evil.pt")
    data = p.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):  # truncated: one line naming the file
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.pt: truncated or not a PyTorch checkpoint$"):
            load_checkpoint(tmp_path / "cut.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="list.pt: expected a dict, got list"):
        load_checkpoint(tmp_path / "list.pt")


def test_a_task_can_replace_the_training_loss(digits):
    calls = []

    class Logged(Classification):
        def training_loss(self, output, target, inputs):
            calls.append(inputs.shape[0])
            return nn.functional.cross_entropy(output, target)

    cfg = TrainConfig(epochs=1, batch_size=512)
    fit(DCNN(64, 10, depth=1), _loaders(digits, cfg), Logged(), cfg, progress=False)
    assert sum(calls) == len(digits.x_train)


def test_bad_loaders_are_clear_errors(digits):
    cfg = TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="'train' loader"):
        fit(DCNN(64, 10), {"test": []}, Classification(), cfg, progress=False)
    with pytest.raises(ValueError, match="empty"):
        fit(DCNN(64, 10), {"train": []}, Classification(), cfg, progress=False)
    stream = (b for b in [])  # no length: a schedule needs steps_per_epoch
    with pytest.raises(ValueError, match="steps_per_epoch"):
        fit(DCNN(64, 10), {"train": stream}, Classification(), cfg, progress=False)


class _Stream:
    """A re-iterable stream of batches without a length (as an IterableDataset's loader)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def _batches(data, n, size=32):
    return [(data.x_train[i * size:(i + 1) * size], data.y_train[i * size:(i + 1) * size])
            for i in range(n)]


class _LRs(Callback):
    def __init__(self):
        self.lrs = []

    def on_step_end(self, state):
        self.lrs.append(state.optimizer.param_groups[0]["lr"])


def test_steps_per_epoch_is_the_epoch_length_of_a_longer_stream(digits):
    """A stream longer than ``steps_per_epoch`` stops there each epoch, so the cosine schedule
    runs once over ``epochs × steps_per_epoch`` steps and never climbs back."""
    cfg = TrainConfig(epochs=2, lr=1e-2, schedule="cosine", steps_per_epoch=5)
    spy = _LRs()
    hist = fit(DCNN(64, 10, depth=1), {"train": _Stream(_batches(digits, 8))}, Classification(),
               cfg, [spy], progress=False)
    assert spy.lrs == pytest.approx([lr_at(cfg, s, 10) for s in range(10)])
    assert spy.lrs == sorted(spy.lrs, reverse=True) and len(hist["epochs"]) == 2
    # an endless one-shot iterator works: each epoch takes the next steps_per_epoch batches
    seen = []
    endless = ((seen.append(1) or b) for b in itertools.islice(
        itertools.cycle(_batches(digits, 4)), 1000))
    spy = _LRs()
    fit(DCNN(64, 10, depth=1), {"train": endless}, Classification(), cfg, [spy], progress=False)
    assert len(spy.lrs) == 10 and len(seen) == 10


def test_steps_per_epoch_caps_a_map_style_loader(digits):
    loader = _loaders(digits, TrainConfig(batch_size=100))["train"]  # 17 batches
    n = len(loader)
    for spe, per_epoch in ((3, 3), (n + 10, n)):
        cfg = TrainConfig(epochs=2, batch_size=100, schedule="cosine", steps_per_epoch=spe)
        spy = _LRs()
        fit(DCNN(64, 10, depth=1), {"train": loader}, Classification(), cfg, [spy],
            progress=False)
        assert spy.lrs == pytest.approx([lr_at(cfg, s, 2 * per_epoch)
                                         for s in range(2 * per_epoch)])


def test_an_empty_evaluation_loader_is_an_error_not_accuracy_zero(digits):
    cfg = TrainConfig(epochs=1, batch_size=100)
    train = _loaders(digits, cfg)["train"]
    with pytest.raises(ValueError, match="'test' loader is empty"):
        fit(DCNN(64, 10), {"train": train, "test": []}, Classification(), cfg, progress=False)
    with pytest.raises(ValueError, match="'val' loader yielded no samples"):
        fit(DCNN(64, 10), {"train": train, "val": _Stream([])}, Classification(), cfg,
            progress=False)
    with pytest.raises(ValueError, match="yielded no samples"):
        evaluate(DCNN(64, 10), [], Classification())


def test_a_one_shot_generator_over_several_epochs_is_a_clear_error(digits):
    cfg = TrainConfig(epochs=2, schedule="constant")
    gen = (b for b in _batches(digits, 3))
    with pytest.raises(ValueError, match="one-shot iterator.*DataLoader or a re-iterable"):
        fit(DCNN(64, 10), {"train": gen}, Classification(), cfg, progress=False)
    # with steps_per_epoch it may be a stream; one that runs dry says in which epoch
    cfg = TrainConfig(epochs=2, schedule="constant", steps_per_epoch=3)
    gen = (b for b in _batches(digits, 3))
    with pytest.raises(ValueError, match="no batches in epoch 2 .*one-shot iterator"):
        fit(DCNN(64, 10), {"train": gen}, Classification(), cfg, progress=False)
    with pytest.raises(ValueError, match="no batches in epoch 1"):
        fit(DCNN(64, 10), {"train": _Stream([])}, Classification(),
            TrainConfig(epochs=1, schedule="constant"), progress=False)


@pytest.mark.parametrize("every", [7, None])  # mid-epoch checkpoints, and epoch ends only
def test_a_resumed_fit_ends_exactly_where_an_uninterrupted_one_does(digits, tmp_path, every):
    """Model, optimizer, meter, sampler position and every RNG (dropout draws here) are in the
    checkpoint: resuming from each one reproduces the uninterrupted run bit for bit."""
    cfg = TrainConfig(epochs=3, batch_size=100)

    def build():
        torch.manual_seed(0)
        return DCNN(64, 10, depth=2, dropout=0.2), _loaders(digits, cfg)

    class Keep(Callback):  # every checkpoint the writer saves, in memory
        def __init__(self):
            self.saved = []

        def on_step_end(self, state):
            if every and state.step % every == 0 and state.batch:
                self.saved.append(copy.deepcopy(state.checkpoint()))

        def on_epoch_end(self, state):
            self.saved.append(copy.deepcopy(state.checkpoint()))

    model, loaders = build()
    keep = Keep()
    full = fit(model, loaders, Classification(), cfg, [keep, MetricsWriter(tmp_path, every)],
               progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3 * len(loaders["train"])
    assert (tmp_path / "checkpoint.prev.pt").is_file()
    mids = [c for c in keep.saved if c["batch"]]
    assert bool(mids) == bool(every)
    for ckpt in keep.saved[:-1]:
        model2, loaders2 = build()
        torch.manual_seed(123)  # whatever the caller's RNG: the checkpoint's is restored
        again = fit(model2, loaders2, Classification(), cfg, progress=False,
                    resume=_through_disk(ckpt, tmp_path))
        assert again["final"] == full["final"], (ckpt["epoch"], ckpt["batch"])
        assert [e["train_loss"] for e in again["epochs"]] == [e["train_loss"] for e in
                                                               full["epochs"]]
        for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values(),
                             strict=True):
            assert torch.equal(a, b), k


def _through_disk(ckpt, tmp_path):
    save_checkpoint(tmp_path / "c.pt", ckpt)
    return load_checkpoint(tmp_path / "c.pt")


def test_resume_refuses_a_checkpoint_of_another_setup(digits):
    cfg = TrainConfig(epochs=1, batch_size=100)
    model = DCNN(64, 10, depth=1)
    keep = []

    class Grab(Callback):
        def on_epoch_end(self, state):
            keep.append(state.checkpoint())

    fit(model, _loaders(digits, cfg), Classification(), cfg, [Grab()], progress=False)
    with pytest.raises(ValueError, match="1-epoch run, this one has 2"):
        fit(DCNN(64, 10, depth=1), _loaders(digits, cfg), Classification(),
            TrainConfig(epochs=2, batch_size=100), progress=False, resume=keep[0])
    with pytest.raises(ValueError, match="cannot resume from this checkpoint"):
        fit(DCNN(64, 10, depth=2), _loaders(digits, cfg), Classification(), cfg,
            progress=False, resume=keep[0])
