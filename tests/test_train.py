import json

import pytest
import torch
from torch import nn

from compactnn import DCNN
from compactnn.data import find_idx_dir, load_dataset
from compactnn.experiments import train_run
from compactnn.train import (
    NonFiniteLossError,
    TrainConfig,
    fit,
    load_checkpoint,
    lr_at,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_fraction=0.1)


def test_schedules():
    paper = TrainConfig(lr=5e-4, schedule="paper")
    got = [lr_at(paper, s, 100) for s in (0, 39, 40, 60, 80, 99)]
    assert got == pytest.approx([5e-4, 5e-4, 2.5e-4, 5e-5, 1e-5, 1e-5])
    cos = TrainConfig(lr=1.0, schedule="cosine")
    assert lr_at(cos, 0, 10) == 1.0 and lr_at(cos, 5, 10) == pytest.approx(0.5)
    pw = TrainConfig(lr=1.0, schedule="piecewise", lr_milestones=(0.5,), lr_factors=(0.1,))
    assert lr_at(pw, 4, 10) == 1.0 and lr_at(pw, 5, 10) == 0.1
    assert lr_at(TrainConfig(lr=0.3), 7, 10) == 0.3


@pytest.mark.parametrize("kw", [dict(epochs=0), dict(batch_size=0), dict(lr=-1.0),
                                dict(lr=float("nan")), dict(optimizer="lbfgs"),
                                dict(schedule="step"), dict(weight_decay=-1.0),
                                dict(grad_clip=0.0), dict(lr_milestones=(0.5, 1.5),
                                                          lr_factors=(0.1, 0.01)),
                                dict(lr_milestones=(0.5,), lr_factors=(0.1, 0.2))])
def test_invalid_train_config(kw):
    with pytest.raises(ValueError, match="TrainConfig"):
        TrainConfig(**kw)


def test_nan_loss_raises_clear_error(digits):
    model = DCNN(64, 10, depth=2)
    with torch.no_grad():
        model.net[0].c.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 0"):
        fit(model, digits, TrainConfig(epochs=1), progress=False, log=None)


def test_fit_writes_metrics_and_checkpoint(tmp_path, digits):
    model = DCNN(64, 10, depth=2, width=128)
    hist = fit(model, digits, TrainConfig(epochs=2, batch_size=64, lr=3e-3, optimizer="sgd",
                                          grad_clip=1.0, weight_decay=1e-4),
               run_dir=tmp_path, progress=False, log=None)
    assert len(hist["epochs"]) == 2 and "val_acc" in hist["epochs"][0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["final"]["test_acc"] == hist["final"]["test_acc"]
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 2
    fresh = DCNN(64, 10, depth=2, width=128)
    fresh.load_state_dict(ckpt["model"])
    x = digits.x_test[:5]
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries


def test_training_is_reproducible(digits):
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = DCNN(64, 10, depth=1)
        runs.append(fit(model, digits, TrainConfig(epochs=1, seed=5), progress=False, log=None))
    assert runs[0]["final"] == runs[1]["final"]


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
    with pytest.raises(ValueError, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_short_training_on_real_data_is_well_above_chance(tmp_path):
    """Fashion-MNIST when installed (5,000 training images, 2 epochs), digits otherwise."""
    name = "fashion-mnist" if find_idx_dir("fashion-mnist") else "digits"
    res = train_run(model="dcnn", model_kwargs={"width": 1024, "depth": 2, "activation": "relu"},
                    train=TrainConfig(epochs=2 if name == "fashion-mnist" else 8, lr=3e-3),
                    dataset=name, limit_train=5000, runs_dir=tmp_path, progress=False, log=None)
    acc = res["history"]["final"]["test_acc"]
    assert acc > (0.75 if name == "fashion-mnist" else 0.85), acc
    run = next(tmp_path.iterdir())
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["layer"] == "dc" and cfg["seed"] == 0 and cfg["data"]["name"] == name
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.json").is_file()


def test_custom_loss_hook(digits):
    calls = []

    def loss_fn(logits, y, x):
        calls.append(x.shape[0])
        return nn.functional.cross_entropy(logits, y)

    fit(DCNN(64, 10, depth=1), digits, TrainConfig(epochs=1, batch_size=512), progress=False,
        log=None, loss_fn=loss_fn)
    assert sum(calls) == len(digits.x_train)


def test_distillation_from_a_teacher_run(tmp_path, digits):
    from compactnn.experiments import load_run_model
    from compactnn.train import distillation_loss

    teacher_res = train_run(model="dense-mlp", model_kwargs={"width": 64, "depth": 1},
                            train=TrainConfig(epochs=3, lr=3e-3), data=digits,
                            runs_dir=tmp_path / "t", progress=False, log=None)
    teacher = load_run_model(teacher_res["run_dir"])
    x = digits.x_test[:8]
    torch.testing.assert_close(teacher.eval()(x), teacher_res["model"].eval()(x))
    student = train_run(model="dcnn", model_kwargs={"depth": 1, "width": 256},
                        train=TrainConfig(epochs=8, batch_size=32, lr=3e-3), data=digits,
                        runs_dir=tmp_path / "s", progress=False,
                        log=None, teacher=teacher_res["run_dir"], temperature=3.0, alpha=0.7)
    assert student["config"]["distillation"]["temperature"] == 3.0
    assert student["history"]["final"]["test_acc"] > 0.5
    # alpha = 0 is plain cross-entropy; the soft term is a KL divergence (zero for a perfect copy)
    logits = teacher(x)
    y = logits.argmax(1)
    plain = distillation_loss(teacher, 2.0, 0.0)(logits, y, x)
    torch.testing.assert_close(plain, nn.functional.cross_entropy(logits, y))
    torch.testing.assert_close(distillation_loss(teacher, 2.0, 1.0)(logits, y, x),
                               torch.tensor(0.0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(teacher, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(teacher, 2.0, 1.5)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load_run_model(tmp_path)
